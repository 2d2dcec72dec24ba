"""Blind tests and sample sheets from `twinbot eval --samples` files.

`python bench/blind_sheet.py sheet SAMPLES.jsonl OUT_DIR [--pairs 40] [--seed 0]` writes
`OUT_DIR/sheet.md` (for a reader: the chat so far, then messages A and B, one the real next
message, one the twin's, shuffled; a burst shows its messages one under the other),
`OUT_DIR/key.json` (which is real) and `OUT_DIR/side_by_side.md` (the same pairs unshuffled, for
people to read; a burst's messages joined by " / "). Pairs never share a chat, and every speaker
gets its share. `python bench/blind_sheet.py score OUT_DIR/key.json ANSWERS` prints how often readers
took the twin for the real one; ANSWERS holds one "N: A" or "N: B" per line (the reader's pick).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path


def pick_pairs(samples: list[dict], count: int, seed: int) -> list[dict]:
    """Up to `count` samples with a twin reply, spread over the speakers, that share no line with each
    other: no pair's chat shows another pair's real message, which would give it away."""
    rng = random.Random(seed)
    by_speaker: dict[str, list[dict]] = defaultdict(list)
    for item in samples:
        if item["twin"].strip() and item["context"]:
            by_speaker[item["speaker"]].append(item)
    for items in by_speaker.values():
        rng.shuffle(items)
    chosen, shown = [], set()
    while len(chosen) < count and any(by_speaker.values()):
        for speaker in sorted(by_speaker):
            while by_speaker[speaker]:
                item = by_speaker[speaker].pop()
                lines = {*item["context"], *(f"{item['speaker']}: {real}" for real in item["real"].splitlines())}
                if not lines & shown:
                    shown |= lines
                    chosen.append(item)
                    break
            if len(chosen) == count:
                break
    return chosen


def shown(reply: str) -> str:
    """A reply as a reader sees it: a burst's messages one under the other."""
    return reply.replace("\n", "\n   ")


def write_sheet(samples: Path, out: Path, count: int, seed: int) -> int:
    items = pick_pairs([json.loads(line) for line in samples.read_text().splitlines() if line.strip()], count, seed)
    rng = random.Random(seed + 1)
    out.mkdir(parents=True, exist_ok=True)
    sheet, side, key = [], [], {}
    for n, item in enumerate(items, 1):
        real_first = rng.random() < 0.5
        a, b = (item["real"], item["twin"]) if real_first else (item["twin"], item["real"])
        key[str(n)] = "A" if real_first else "B"
        chat = "\n".join(f"> {line}" for line in item["context"])
        sheet.append(f"## {n}. The next message is from {item['speaker']}\n\n{chat}\n\nA: {shown(a)}\n\nB: {shown(b)}\n")
        side.append(f"## {n}. {item['speaker']}\n\n{chat}\n\n- real: {' / '.join(item['real'].splitlines())}\n"
                    f"- twin: {' / '.join(item['twin'].splitlines())}\n")
    (out / "sheet.md").write_text("\n".join(sheet))
    (out / "side_by_side.md").write_text("\n".join(side))
    (out / "key.json").write_text(json.dumps(key, indent=1) + "\n")
    return len(items)


def score(key_path: Path, answers: Path) -> dict:
    key = json.loads(key_path.read_text())
    picks = dict(re.findall(r"^\s*(\d+)\s*[:.)-]\s*([AB])\b", answers.read_text(), flags=re.M | re.I))
    judged = [n for n in key if n in picks]
    fooled = sum(picks[n].upper() != key[n] for n in judged)
    return {"pairs": len(key), "answered": len(judged), "twin_taken_for_real": fooled,
            "fooled_share": round(fooled / len(judged), 3) if judged else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/blind_sheet.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    make = sub.add_parser("sheet")
    make.add_argument("samples", type=Path)
    make.add_argument("out", type=Path)
    make.add_argument("--pairs", type=int, default=40)
    make.add_argument("--seed", type=int, default=0)
    judge = sub.add_parser("score")
    judge.add_argument("key", type=Path)
    judge.add_argument("answers", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.what == "sheet":
            print(f"wrote {write_sheet(args.samples, args.out, args.pairs, args.seed)} pairs to {args.out}")
        else:
            print(json.dumps(score(args.key, args.answers)))
    except (OSError, ValueError, KeyError) as exc:
        print(f"blind_sheet: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
