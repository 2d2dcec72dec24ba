"""Turn The Office transcripts into a persona.evaluation.suite corpus (JSON lines {speaker, text, chat}).

`python bench/office_corpus.py schrute.csv office.jsonl`. The CSV is `data/schrute.csv` in the
sdist of schrutepy 0.1.3 (`pip download --no-deps --no-binary :all: schrutepy==0.1.3`); the text
is not ours to redistribute, so it is never committed. One chat per episode, so lines of one
episode are never context for another.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def convert(source: Path, target: Path) -> int:
    count = 0
    with source.open(newline="", encoding="utf-8") as fh, target.open("w", encoding="utf-8") as out:
        for row in csv.DictReader(fh):
            speaker, text = row["character"].strip(), row["text"].strip()
            if speaker and text:
                chat = f"s{row['season']}e{row['episode']}"
                out.write(json.dumps({"speaker": speaker, "text": text, "chat": chat}) + "\n")
                count += 1
    return count


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[2].strip("`. "))
    print(f"wrote {convert(Path(sys.argv[1]), Path(sys.argv[2]))} lines to {sys.argv[2]}")
