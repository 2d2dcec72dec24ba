"""Reading a Discord data package as a zip or an unpacked folder, safely.

A zip is checked before anything is read: no member may escape the archive (`../`, absolute
paths), and the total uncompressed size is bounded (zip bombs).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from chat_exports.records import ImportFailed

MAX_UNPACKED_FACTOR = 10  # a package may unpack to ten times the upload limit, no more
MAX_MEMBERS = 200_000


class PackageFiles:
    """Names (posix, relative) and readers of the files in a package, zip or folder alike."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.is_zip = path.is_file()
        if self.is_zip:
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ImportFailed(f"That zip file is damaged or not a zip ({exc}).") from None
            self._check_zip(max_bytes * MAX_UNPACKED_FACTOR)
            self.names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
        else:
            root = path.resolve()
            self.names = [p.relative_to(root).as_posix() for p in root.rglob("*")
                          if p.is_file() and p.resolve().is_relative_to(root)]

    def _check_zip(self, max_unpacked: int) -> None:
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ImportFailed(f"That zip has {len(infos)} files; refusing more than {MAX_MEMBERS}.")
        total = 0
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts:
                raise ImportFailed(f"That zip contains a path outside the archive ({info.filename!r}); refusing it.")
            total += info.file_size
        if total > max_unpacked:
            raise ImportFailed(
                f"That zip would unpack to {total / 1e6:.0f} MB; the limit is {max_unpacked / 1e6:.0f} MB. Refusing it."
            )

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        """A member, read through a size guard so a lying zip header cannot unpack more than it said."""
        if self.is_zip:
            info = self._zip.getinfo(name)
            with self._zip.open(info) as fh:
                yield io.BufferedReader(_Bounded(fh, info.file_size))  # type: ignore[misc]
        else:
            with open(self.path / name, "rb") as fh:
                yield fh

    def close(self) -> None:
        if self.is_zip:
            self._zip.close()


class _Bounded(io.RawIOBase):
    """A raw reader that fails once more than `limit` bytes come out."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        super().__init__()
        self.raw = raw
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - io protocol
        data = self.raw.read(len(buffer))
        self.left -= len(data)
        if self.left < 0:
            raise ImportFailed("A file in that zip is larger than the zip says; refusing it.")
        buffer[: len(data)] = data
        return len(data)
