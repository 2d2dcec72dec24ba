"""Plain JSON lines `{"speaker": ..., "text": ...}` in conversation order (the eval corpus format)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

from chat_exports.fields import as_name, as_text
from chat_exports.limits import ReadLimits
from chat_exports.records import ImportFailed, ParsedMessage


class JsonLines:
    format = "jsonl"
    platform = "jsonl"

    def __init__(self, path: Path, limits: ReadLimits) -> None:
        self.path = path
        self.limits = limits

    def owner_hint(self) -> None:
        return None

    def chat_id(self) -> str:
        """Stable per file content, so re-importing the same file adds nothing."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return f"jsonl-{digest.hexdigest()[:16]}"

    def messages(self) -> Iterator[ParsedMessage | None]:
        chat = self.chat_id()
        with io.TextIOWrapper(self.limits.open(self.path), encoding="utf-8") as fh:
            try:
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        raw = json.loads(line)
                    except (json.JSONDecodeError, RecursionError):
                        yield None
                        continue
                    if not isinstance(raw, dict):
                        yield None
                        continue
                    speaker, text = as_name(raw.get("speaker")), as_text(raw.get("text"))
                    if not speaker or text is None:
                        yield None
                        continue
                    yield ParsedMessage(chat, str(number), speaker, speaker, float(number), text)
            except UnicodeDecodeError:
                raise ImportFailed("That file is not UTF-8 text, so it can't be a JSONL export.") from None
