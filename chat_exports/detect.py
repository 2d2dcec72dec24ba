"""Which kind of export a file is, from its content (never its name)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import ijson

from chat_exports.chat_exporter import ChatExporterJson
from chat_exports.discord_package import DiscordPackage
from chat_exports.jsonl import JsonLines
from chat_exports.limits import ReadLimits
from chat_exports.records import ImportFailed, ParsedMessage
from chat_exports.stream import bounded_parse
from chat_exports.telegram import TelegramExport
from twinbot.settings import Settings

HEAD_BYTES = 64 * 1024
FIRST_LINE_BYTES = 4 * 1024 * 1024  # a JSONL line may hold a very long message
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM")
KNOWN = "Telegram result.json, a Discord data package, DiscordChatExporter JSON or JSONL"
NOT_AN_EXPORT = f"That file isn't a chat export I know ({KNOWN})."


class ExportReader(Protocol):
    format: str
    platform: str

    def owner_hint(self) -> str | None: ...

    def messages(self) -> Iterator[ParsedMessage | None]: ...


def top_level_keys(path: Path, limits: ReadLimits, limit: int = 64) -> set[str]:
    """The first keys of a JSON object, read as a stream (the file may be huge, or nested without end)."""
    keys: set[str] = set()
    with limits.open(path) as fh:
        for prefix, event, value in bounded_parse(fh):
            if prefix == "" and event == "map_key":
                keys.add(value)
                if len(keys) >= limit or value in ("messages", "chats"):
                    break
    return keys


def open_reader(path: Path, limits: ReadLimits) -> ExportReader:
    """A reader for the export at `path`, or ImportFailed saying why it isn't one."""
    if path.is_dir():
        return DiscordPackage(path, limits)
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head.strip():
        raise ImportFailed("That file is empty.")
    if head.startswith(b"PK\x03\x04"):
        return DiscordPackage(path, limits)
    if head.startswith(IMAGE_MAGIC):
        raise ImportFailed(f"That's an image, not a chat export (I import {KNOWN}).")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"{"):
        raise ImportFailed(NOT_AN_EXPORT)
    with open(path, "rb") as fh:
        first_line = fh.readline(FIRST_LINE_BYTES).lstrip(b"\xef\xbb\xbf \t\r")
    try:
        first = json.loads(first_line)
        if isinstance(first, dict) and "speaker" in first and "text" in first:
            return JsonLines(path, limits)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        pass
    try:
        keys = top_level_keys(path, limits)
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"That file is not valid JSON ({str(exc).splitlines()[0][:80]}).") from None
    if {"guild", "channel", "messages"} <= keys or {"guild", "channel"} <= keys:
        return ChatExporterJson(path, limits)
    if "personal_information" in keys or "chats" in keys or "messages" in keys:
        return TelegramExport(path, dict.fromkeys(keys), limits)
    raise ImportFailed(NOT_AN_EXPORT)


def detect_format(path: Path, limits: ReadLimits | None = None) -> str:
    """The format name of the export at `path` (default limits: those of the default settings)."""
    reader = open_reader(path, limits or ReadLimits.from_settings(Settings.model_construct()))
    close = getattr(reader, "close", None)
    if close:
        close()
    return reader.format
