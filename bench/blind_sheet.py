"""Blind tests and sample sheets from `twinbot eval --samples` files.

`python bench/blind_sheet.py sheet SAMPLES.jsonl OUT_DIR [--pairs 40] [--seed 0] [--control]` writes
`OUT_DIR/sheet.md` (for a reader: the chat so far, then messages A and B, one the real next
message, one the twin's, shuffled; a burst shows its messages one under the other),
`OUT_DIR/key.json` (which is real) and `OUT_DIR/side_by_side.md` (the same pairs unshuffled, for
people to read; a burst's messages joined by " / "). Pairs never share a chat, and every speaker
gets its share. With `--control`, each pair's other message is not the twin's but the same person's
real message from another of the samples' chats, one not shown elsewhere on the sheet: how often
readers take the person's own words, out of their thread, for the real next message is the mark a
twin that writes like its owner without following the chat would get (side_by_side.md calls it
"other"). `python bench/blind_sheet.py score OUT_DIR/key.json ANSWERS` prints how often readers
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


def with_control(chosen: list[dict], samples: list[dict], seed: int) -> list[dict]:
    """The chosen pairs with each twin reply replaced by the same speaker's real message from one of
    the samples not chosen, and shown in no chosen pair's chat (a pair whose speaker has none left
    is dropped): a message a reader has not seen elsewhere on the sheet."""
    rng = random.Random(seed)
    on_sheet = {id(item) for item in chosen}
    shown_lines = {line for item in chosen for line in item["context"]}
    unused: dict[str, list[str]] = defaultdict(list)
    for item in samples:
        lines = {f"{item['speaker']}: {real}" for real in item["real"].splitlines()}
        if id(item) not in on_sheet and item["real"].strip() and not lines & shown_lines:
            unused[item["speaker"]].append(item["real"])
    controls = []
    for item in chosen:
        others = unused[item["speaker"]]
        if others:
            controls.append({**item, "twin": others.pop(rng.randrange(len(others)))})
    return controls


def shown(reply: str) -> str:
    """A reply as a reader sees it: a burst's messages one under the other."""
    return reply.replace("\n", "\n   ")


def write_sheet(samples: Path, out: Path, count: int, seed: int, control: bool = False) -> int:
    loaded = [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]
    items = pick_pairs(loaded, count, seed)
    if control:
        items = with_control(items, loaded, seed)
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
                    f"- {'other' if control else 'twin'}: {' / '.join(item['twin'].splitlines())}\n")
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
    make.add_argument("--control", action="store_true",
                      help="pair each real message with the same person's real message from another chat")
    judge = sub.add_parser("score")
    judge.add_argument("key", type=Path)
    judge.add_argument("answers", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.what == "sheet":
            print(f"wrote {write_sheet(args.samples, args.out, args.pairs, args.seed, args.control)} pairs to {args.out}")
        else:
            print(json.dumps(score(args.key, args.answers)))
    except (OSError, ValueError, KeyError) as exc:
        print(f"blind_sheet: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
