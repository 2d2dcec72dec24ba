"""Streaming the items of a JSON array inside an export, with a bound on nesting depth.

ijson's own `items()` tracks a dotted prefix per event, which costs quadratic time on hostile
inputs nested 100,000 levels deep; here only container kinds are tracked, and depth is capped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson

from chat_exports.records import ImportFailed

MAX_DEPTH = 64
_OPEN = ("start_map", "start_array")
_CLOSE = ("end_map", "end_array")


def array_items(fh: BinaryIO, keys: tuple[str, ...], max_depth: int = MAX_DEPTH) -> Iterator[Any]:
    """Items of the array found under the object keys `keys` ((): the top-level array)."""
    target = ["map"] * len(keys) + ["array"]
    kinds: list[str] = []
    names: list[str | None] = []
    builder: ijson.ObjectBuilder | None = None
    depth = 0
    for event, value in ijson.basic_parse(fh, use_float=True):
        if builder is None and kinds == target and event != "end_array" and \
                [n for k, n in zip(kinds, names) if k == "map"] == list(keys):
            builder, depth = ijson.ObjectBuilder(), 0
        if builder is not None:
            builder.event(event, value)
            depth += event in _OPEN
            depth -= event in _CLOSE
            if len(kinds) + depth > max_depth:
                raise ImportFailed("That file is nested too deeply to be a chat export.")
            if depth == 0:
                yield builder.value
                builder = None
            continue
        if event in _OPEN:
            kinds.append("map" if event == "start_map" else "array")
            names.append(None)
            if len(kinds) > max_depth:
                raise ImportFailed("That file is nested too deeply to be a chat export.")
        elif event in _CLOSE:
            kinds.pop()
            names.pop()
        elif event == "map_key":
            names[-1] = value
