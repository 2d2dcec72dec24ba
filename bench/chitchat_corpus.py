"""Turn the chitchat dataset into a persona.evaluation.suite corpus (JSON lines {speaker, text, chat}).

`python bench/chitchat_corpus.py dataset.json OUT.jsonl [--only eval|shippable]`. The file is
`chitchat_dataset/dataset.json` inside the wheel of `chitchat-dataset==0.9.0` (MIT, BYU PCC lab;
`pip download --no-deps chitchat-dataset==0.9.0`, then unzip); its text is never committed.
One chat per conversation; each message of a sender's burst stays its own line, in order.

Senders ranked 1-50 by message count are reserved for evaluation: nothing that ships may be
trained on a conversation in which one of them writes. `--only shippable` keeps only the
conversations without them (for training anything that ships); `--only eval` keeps the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

RESERVED_TOP = 50


def messages(conversation: dict) -> Iterator[dict]:
    """The conversation's messages in order; the dataset groups them into bursts of one sender."""
    for burst in conversation.get("messages", []):
        yield from burst


def reserved_senders(data: dict[str, dict], top: int = RESERVED_TOP) -> set[str]:
    """The `top` senders by message count (ties broken by id, so the set is the same every time)."""
    counts = Counter(m["sender"] for conversation in data.values() for m in messages(conversation))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {sender for sender, _ in ranked[:top]}


def speaker_names(data: dict[str, dict]) -> dict[str, str]:
    """A readable name per sender id ("Person 1" is the busiest), stable across runs."""
    counts = Counter(m["sender"] for conversation in data.values() for m in messages(conversation))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {sender: f"Person {rank}" for rank, (sender, _) in enumerate(ranked, 1)}


def corpus_lines(data: dict[str, dict], only: str | None = None) -> Iterator[dict]:
    """The eval corpus's lines; `only` = "shippable" drops every conversation with a reserved sender,
    "eval" keeps only those."""
    reserved = reserved_senders(data)
    names = speaker_names(data)
    for chat, conversation in data.items():
        lines = [m for m in messages(conversation) if str(m.get("text", "")).strip()]
        has_reserved = any(m["sender"] in reserved for m in lines)
        if (only == "shippable" and has_reserved) or (only == "eval" and not has_reserved):
            continue
        for m in lines:
            yield {"speaker": names[m["sender"]], "text": str(m["text"]).strip(), "chat": chat}


def convert(source: Path, target: Path, only: str | None = None) -> int:
    data = json.loads(source.read_text(encoding="utf-8"))
    count = 0
    with target.open("w", encoding="utf-8") as out:
        for line in corpus_lines(data, only):
            out.write(json.dumps(line) + "\n")
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/chitchat_corpus.py", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="chitchat_dataset/dataset.json")
    parser.add_argument("target", type=Path, help="the JSONL corpus to write")
    parser.add_argument("--only", choices=("eval", "shippable"), help="keep only these conversations")
    args = parser.parse_args(argv)
    try:
        count = convert(args.source, args.target, args.only)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"chitchat_corpus: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {count} lines to {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
