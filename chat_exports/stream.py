"""Streaming JSON inside an export (array items, header fields), with a bound on nesting depth.

ijson's own `items()` and `parse()` track a dotted prefix per event, which costs quadratic time
and memory on hostile inputs nested 100,000 levels deep; here depth is capped before it grows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson

from chat_exports.fields import as_id
from chat_exports.records import ImportFailed

MAX_DEPTH = 64
TOO_DEEP = "That file is nested too deeply to be a chat export."
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
                raise ImportFailed(TOO_DEEP)
            if depth == 0:
                yield builder.value
                builder = None
            continue
        if event in _OPEN:
            kinds.append("map" if event == "start_map" else "array")
            names.append(None)
            if len(kinds) > max_depth:
                raise ImportFailed(TOO_DEEP)
        elif event in _CLOSE:
            kinds.pop()
            names.pop()
        elif event == "map_key":
            names[-1] = value


def bounded_parse(fh: BinaryIO, max_depth: int = MAX_DEPTH) -> Iterator[tuple[str, str, Any]]:
    """ijson's `parse` events (prefix, event, value), refusing nesting deeper than `max_depth`."""
    path: list[str] = []
    for event, value in ijson.basic_parse(fh, use_float=True):
        if event == "map_key":
            prefix = ".".join(path[:-1])
            path[-1] = value
        elif event in _OPEN:
            prefix = ".".join(path)
            path.append("" if event == "start_map" else "item")
            if len(path) > max_depth:
                raise ImportFailed(TOO_DEEP)
        elif event in _CLOSE:
            path.pop()
            prefix = ".".join(path)
        else:
            prefix = ".".join(path)
        yield prefix, event, value


def chat_header(fh: BinaryIO, id_key: str, type_key: str) -> tuple[str | None, str | None]:
    """The chat's id and type from the keys before its `messages` array (None when absent)."""
    chat_id, chat_type = None, None
    for prefix, event, value in bounded_parse(fh):
        if prefix == id_key and event in ("string", "number"):
            chat_id = as_id(value)
        elif prefix == type_key and event == "string":
            chat_type = value
        elif prefix == "messages":
            break
    return chat_id, chat_type
