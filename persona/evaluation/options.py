"""The eval's command-line options, shared by `twinbot eval` and `python -m persona.evaluation.suite`.

Kept apart from the suite so the `twinbot` command can offer them without importing torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, required=True, help="JSON lines {speaker, text[, chat]}")
    parser.add_argument("--speakers", type=int, default=8)
    parser.add_argument("--train-lines", type=int, default=300)
    parser.add_argument("--test-lines", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--samples", type=Path,
                        help="write each twin reply here, one JSON line {speaker, context, real, twin}")
    parser.add_argument("--threads", type=int, default=2)
