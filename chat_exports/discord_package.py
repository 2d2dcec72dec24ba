"""Discord data packages ("Request my data"): Account/user.json and Messages/<channel>/messages.(json|csv).

A package holds only its owner's messages. Folder names changed case between versions
(`Messages` / `messages`, `c123` / `123`), so paths are matched case-insensitively.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from chat_exports.archive import PackageFiles
from chat_exports.fields import as_id, as_name, as_text, as_timestamp
from chat_exports.limits import ReadLimits
from chat_exports.records import ImportFailed, ParsedMessage
from chat_exports.stream import TOO_DEEP, array_items

_CHANNEL_FILE = re.compile(r"^(?:.*/)?messages/([^/]+)/(messages\.json|messages\.csv|channel\.json)$", re.IGNORECASE)
DM_TYPES = {"1", "3", "DM", "GROUP_DM"}
MAX_META_BYTES = 1024 * 1024  # user.json and channel.json are read whole: they hold a few fields


def looks_like_package(names: list[str]) -> bool:
    return any(_CHANNEL_FILE.match(name) for name in names)


class DiscordPackage:
    format = "discord-package"
    platform = "discord"

    def __init__(self, path: Path, limits: ReadLimits) -> None:
        self.files = PackageFiles(path, limits)
        if not looks_like_package(self.files.names):
            self.files.close()
            raise ImportFailed("That archive has no Messages/ folder: it doesn't look like a Discord data package.")
        self._user = self._read_user()

    def _member(self, pattern: str) -> str | None:
        regex = re.compile(pattern, re.IGNORECASE)
        return next((name for name in self.files.names if regex.match(name)), None)

    def _read_json(self, name: str) -> object:
        """A small member (account or channel details) read whole, refused past MAX_META_BYTES."""
        if self.files.size(name) > MAX_META_BYTES:
            raise ImportFailed(f"{name} in the package is over {MAX_META_BYTES // 1024 // 1024} MB; refusing it.")
        with self.files.open(name) as fh:
            try:
                return json.loads(fh.read().decode("utf-8"))
            except RecursionError:
                raise ImportFailed(TOO_DEEP) from None
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ImportFailed(f"{name} in the package is not valid JSON ({type(exc).__name__}).") from None

    def _read_user(self) -> tuple[str, str]:
        name = self._member(r"^(?:.*/)?account/user\.json$")
        data = self._read_json(name) if name else {}
        data = data if isinstance(data, dict) else {}
        user_id = as_id(data.get("id")) or "me"
        return user_id, as_name(data.get("global_name")) or as_name(data.get("username")) or user_id

    def owner_hint(self) -> str:
        return self._user[0]

    def channels(self) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for name in self.files.names:
            match = _CHANNEL_FILE.match(name)
            if match:
                found.setdefault(match[1], {})[match[2].lower()] = name
        return found

    def messages(self) -> Iterator[ParsedMessage | None]:
        user_id, user_name = self._user
        for folder, files in sorted(self.channels().items()):
            meta = self._read_json(files["channel.json"]) if "channel.json" in files else {}
            meta = meta if isinstance(meta, dict) else {}
            channel_id = as_id(meta.get("id")) or folder.lstrip("cC")
            is_dm = str(meta.get("type", "")).upper() in DM_TYPES
            rows = self._json_rows(files["messages.json"]) if "messages.json" in files else (
                self._csv_rows(files["messages.csv"]) if "messages.csv" in files else iter(()))
            for row in rows:
                if not isinstance(row, dict):
                    yield None
                    continue
                message_id = as_id(row.get("ID", row.get("id")))
                text = as_text(row.get("Contents", row.get("contents")))
                ts = as_timestamp(row.get("Timestamp", row.get("timestamp")))
                if message_id is None or text is None or ts is None:
                    yield None
                    continue
                yield ParsedMessage(channel_id, message_id, user_id, user_name, ts, text, None, is_dm)

    def _json_rows(self, name: str) -> Iterator[object]:
        with self.files.open(name) as fh:
            yield from array_items(fh, ())

    def _csv_rows(self, name: str) -> Iterator[object]:
        with self.files.open(name) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
            yield from csv.DictReader(text)

    def close(self) -> None:
        self.files.close()
