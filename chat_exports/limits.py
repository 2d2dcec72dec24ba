"""Bounds on reading an export: bytes per file, length of one JSON string, and time.

Every file an importer reads goes through `ReadLimits.open` (or `wrap` for a zip member), so a
small hostile upload is refused as it is read instead of taking the bot's memory or minutes.
"""

from __future__ import annotations

import io
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from chat_exports.records import ImportFailed
from twinbot.settings import Settings

# Outside a string: runs of non-quotes and whole strings; stops at a quote whose string is still open.
_OUTSIDE = re.compile(rb'(?:[^"]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+')
# Inside a string: stops at its closing quote, a backslash with nothing after it, or the end.
_INSIDE = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+')
_QUOTE = ord('"')


@dataclass
class ReadLimits:
    """What reading one export may cost; the clock starts when the limits are made."""

    max_file_bytes: int
    max_string_bytes: int
    seconds: float
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadLimits:
        return cls(settings.import_max_bytes, settings.import_max_string_bytes, settings.import_max_seconds)

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise ImportFailed(f"That export took more than {self.seconds:g} s to read; refusing it.")

    def stop_clock(self) -> None:
        """The file has been read and checked in full: storing it is not held to the reading budget."""
        self.deadline = math.inf

    def open(self, path: Path, *, json: bool = True) -> BinaryIO:
        """`path` opened for reading through the limits; `json` also bounds each string in it."""
        too_big = f"A file in that export is over {self.max_file_bytes / 1e6:.0f} MB; refusing it."
        return self.wrap(open(path, "rb"), self.max_file_bytes, too_big, json=json)

    def wrap(self, raw: BinaryIO, max_bytes: int, too_big: str, *, json: bool) -> BinaryIO:
        """`raw` read through the limits: more than `max_bytes` fails with `too_big`."""
        watch = _StringWatch(self.max_string_bytes) if json else None
        return io.BufferedReader(_LimitedRaw(raw, max_bytes, too_big, self, watch))  # type: ignore[arg-type]


class _StringWatch:
    """Follows JSON strings across the chunks of a file and refuses one longer than `cap` bytes.

    Only the string still open at the end of a chunk can outgrow the cap, because chunks are
    never longer than the cap; so each chunk costs two regex matches, not a parse.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open_run: int | None = None  # bytes of the string open at the end of the last chunk
        self.escaped = False  # the last chunk ended on a backslash inside a string

    def feed(self, data: bytes) -> None:
        pos = 0
        if self.open_run is not None:
            pos = int(self.escaped)
            end = _INSIDE.match(data, pos).end()  # type: ignore[union-attr]
            if end == len(data) or data[end] != _QUOTE:
                self._still_open(self.open_run + len(data), escaped=end < len(data))
                return
            self.open_run, pos = None, end + 1
        start = _OUTSIDE.match(data, pos).end()  # type: ignore[union-attr]
        if start < len(data):
            end = _INSIDE.match(data, start + 1).end()  # type: ignore[union-attr]
            self._still_open(len(data) - start - 1, escaped=end < len(data))

    def _still_open(self, run: int, *, escaped: bool) -> None:
        self.open_run, self.escaped = run, escaped
        if run > self.cap:
            raise ImportFailed(
                f"That export has a field longer than {self.cap:,} bytes (a message is a few KB); refusing it."
            )


class _LimitedRaw(io.RawIOBase):
    """A raw reader that fails past `left` bytes or the deadline, feeding what it reads to a string watch."""

    def __init__(self, raw: BinaryIO, left: int, too_big: str, limits: ReadLimits, watch: _StringWatch | None) -> None:
        super().__init__()
        self.raw, self.left, self.too_big, self.limits, self.watch = raw, left, too_big, limits, watch
        self.chunk = min(64 * 1024, limits.max_string_bytes)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - io protocol
        self.limits.check_time()
        data = self.raw.read(min(len(buffer), self.chunk))
        self.left -= len(data)
        if self.left < 0:
            raise ImportFailed(self.too_big)
        if self.watch is not None and data:
            self.watch.feed(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()
