"""A multi-speaker corpus of chat lines (JSON lines {speaker, text[, chat]}), as the eval and the chat
voice read it: lines of different chats are never each other's context."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Line:
    index: int
    chat: str
    speaker: str
    text: str


def read_corpus(path: Path) -> list[Line]:
    """The corpus lines; a malformed line stops the run with its line number."""
    lines: list[Line] = []
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
                speaker, text = str(item["speaker"]).strip(), str(item["text"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: expected {{\"speaker\": ..., \"text\": ...}} ({exc})") from None
            if speaker:
                lines.append(Line(len(lines), str(item.get("chat", "")), speaker, text))
    return lines
