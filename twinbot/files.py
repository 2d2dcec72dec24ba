"""Deleting a user's folder of files, off the event loop: /forget and the upload clean-up share it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path


async def delete_tree(folder: Path) -> int:
    """Remove `folder` and everything in it (nothing when it does not exist); returns how many files it held."""

    def remove() -> int:
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return count

    return await asyncio.to_thread(remove)
