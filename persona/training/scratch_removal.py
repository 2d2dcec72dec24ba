"""Deleting a cancelled Ray task's scratch dir on a node, from a module that loads in a blink.

The removal runs as a Ray task on every node, and a node may have to start a fresh Ray worker
for it, which imports the task's module first. Kept apart from the training backend (which imports
torch, transformers and peft), a loaded node starts that worker in a second or two instead of the
tens of seconds a fresh torch import can take there, so the removal is done before anyone looks.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import ray

GONE_FOR_S = 1.0
"""A removed scratch dir must stay gone this long: a task killed a moment ago may still be writing."""
REMOVAL_LIMIT_S = 60.0
"""How long one node keeps deleting a dir that comes back before it reports failure."""


def scratch_dir(name: str) -> Path:
    """A task's scratch dir `name` under this node's temp dir."""
    return Path(tempfile.gettempdir()) / name


def remove_until_gone(path: Path, gone_for_s: float = GONE_FOR_S, limit_s: float = REMOVAL_LIMIT_S) -> bool:
    """Delete `path` again until it has stayed gone for `gone_for_s`; whether it did within `limit_s`.

    A task killed by a cancel can still be finishing a checkpoint as the worker learns it was
    cancelled (on a loaded machine): its write recreates the dir, or a file made while rmtree walks
    it leaves the dir in place, and one removal would leave the checkpoint on the node.
    """
    deadline = time.monotonic() + limit_s
    while True:
        shutil.rmtree(path, ignore_errors=True)
        gone_since = time.monotonic()
        while not path.exists():
            if time.monotonic() - gone_since >= gone_for_s:
                return True
            time.sleep(0.05)
        if time.monotonic() > deadline:
            return False


@ray.remote(num_cpus=0, max_retries=0)
def remove_scratch(name: str) -> bool:
    """On the node it is scheduled to: remove_until_gone of scratch dir `name`."""
    return remove_until_gone(scratch_dir(name))
