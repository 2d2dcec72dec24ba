"""Files that are either complete or absent: written beside their target, fsynced, then renamed.

Model weights, adapters and checkpoints are read by other processes (the bot, a restarted
trainer) while they may be rewritten; a crash mid-write must never leave half a file in place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch


def write_file_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Let `write` fill path.tmp, fsync it, rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_torch_atomically(obj: object, path: Path) -> None:
    """torch.save to path.tmp, fsync, rename."""
    write_file_atomically(path, lambda fh: torch.save(obj, fh))


def write_dir_atomically(target: Path, fill: Callable[[Path], object]) -> Path:
    """Let `fill` write a temp dir beside `target`, fsync its files, then rename it into place.

    A complete `target` left by an earlier attempt (written just before a crash) is replaced.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(staging)
        for file in staging.rglob("*"):
            if file.is_file():
                with open(file, "rb") as fh:
                    os.fsync(fh.fileno())
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
