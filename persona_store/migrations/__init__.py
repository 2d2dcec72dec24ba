"""Numbered schema migrations, applied in order; `PRAGMA user_version` records the last one applied.

Each module `vNN_name.py` holds `SQL`, a script that moves the schema from version NN-1 to NN.
Never edit a released migration: add the next number.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def all_migrations() -> list[Migration]:
    """Every migration in this package, ordered by number, checked to be 1..N without gaps."""
    found: list[Migration] = []
    for info in pkgutil.iter_modules(__path__):
        match = re.fullmatch(r"v(\d+)_(\w+)", info.name)
        if match:
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append(Migration(int(match[1]), match[2], module.SQL))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must run 1..N without gaps: {[m.version for m in found]}")
    return found
