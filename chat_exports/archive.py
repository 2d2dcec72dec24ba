"""Reading a Discord data package as a zip or an unpacked folder, safely.

A zip is checked before anything is read: no member may escape the archive (`../`, absolute
paths) or be a symbolic link, no member may unpack to more than the upload limit, and the
total uncompressed size is bounded (zip bombs). A folder may hold no symbolic link.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from chat_exports.limits import ReadLimits
from chat_exports.records import ImportFailed

MAX_UNPACKED_FACTOR = 10  # a package may unpack to ten times the upload limit, no more
MAX_MEMBERS = 200_000


class PackageFiles:
    """Names (posix, relative) and readers of the files in a package, zip or folder alike."""

    def __init__(self, path: Path, limits: ReadLimits) -> None:
        self.path = path
        self.limits = limits
        self.is_zip = path.is_file()
        if self.is_zip:
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ImportFailed(f"That zip file is damaged or not a zip ({exc}).") from None
            self._check_zip()
            self.names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
        else:
            root = path.resolve()
            links = [p for p in root.rglob("*") if p.is_symlink()]
            if links:
                raise ImportFailed(f"That folder contains a symbolic link ({links[0].name!r}); refusing it.")
            self.names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]

    def _check_zip(self) -> None:
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ImportFailed(f"That zip has {len(infos)} files; refusing more than {MAX_MEMBERS}.")
        per_file = self.limits.max_file_bytes
        total = 0
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts:
                raise ImportFailed(f"That zip contains a path outside the archive ({info.filename!r}); refusing it.")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ImportFailed(f"That zip contains a symbolic link ({info.filename!r}); refusing it.")
            if info.file_size > per_file:
                raise ImportFailed(f"{info.filename} in that zip unpacks to {info.file_size / 1e6:.0f} MB; "
                                   f"the limit per file is {per_file / 1e6:.0f} MB. Refusing it.")
            total += info.file_size
        max_unpacked = per_file * MAX_UNPACKED_FACTOR
        if total > max_unpacked:
            raise ImportFailed(
                f"That zip would unpack to {total / 1e6:.0f} MB; the limit is {max_unpacked / 1e6:.0f} MB. Refusing it."
            )

    def size(self, name: str) -> int:
        """Bytes of a member once unpacked (as the zip states it; reading holds it to that)."""
        return self._zip.getinfo(name).file_size if self.is_zip else (self.path / name).stat().st_size

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        """A member, read through the limits; a lying zip header cannot unpack more than it said."""
        json = not name.lower().endswith(".csv")
        if self.is_zip:
            info = self._zip.getinfo(name)
            lying = "A file in that zip is larger than the zip says; refusing it."
            with self.limits.wrap(self._zip.open(info), info.file_size, lying, json=json) as fh:
                yield fh
        else:
            with self.limits.open(self.path / name, json=json) as fh:
                yield fh

    def close(self) -> None:
        if self.is_zip:
            self._zip.close()
