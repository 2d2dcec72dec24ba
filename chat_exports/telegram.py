"""Telegram Desktop exports (`result.json`): one chat, or the whole account with `chats.list`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from chat_exports.fields import as_id, as_name, as_text, as_timestamp
from chat_exports.limits import ReadLimits
from chat_exports.records import ParsedMessage
from chat_exports.stream import array_items, bounded_parse, chat_header

DM_TYPES = {"personal_chat", "bot_chat", "saved_messages"}


def _chat_messages(chat_id: str, is_dm: bool, messages: Any) -> Iterator[ParsedMessage | None]:
    if not isinstance(messages, list):
        return
    for raw in messages:
        yield _message(chat_id, is_dm, raw)


def _message(chat_id: str, is_dm: bool, raw: Any) -> ParsedMessage | None:
    """One message, or None for service messages and entries that are not usable messages."""
    if not isinstance(raw, dict) or raw.get("type", "message") != "message":
        return None
    message_id, author_id = as_id(raw.get("id")), as_id(raw.get("from_id"))
    text = as_text(raw.get("text"))
    ts = as_timestamp(raw.get("date_unixtime")) or as_timestamp(raw.get("date"))
    if message_id is None or author_id is None or text is None or ts is None:
        return None
    reply = as_id(raw.get("reply_to_message_id"))
    return ParsedMessage(chat_id, message_id, author_id, as_name(raw.get("from")) or author_id, ts, text, reply, is_dm)


class TelegramExport:
    format = "telegram"
    platform = "telegram"

    def __init__(self, path: Path, head: dict, limits: ReadLimits) -> None:
        self.path = path
        self.limits = limits
        self.account = "chats" in head or "personal_information" in head

    def _open(self) -> BinaryIO:
        return self.limits.open(self.path)

    def owner_hint(self) -> str | None:
        """The account owner's `user…` id, which a whole-account export states."""
        if not self.account:
            return None
        with self._open() as fh:
            for prefix, event, value in bounded_parse(fh):
                if prefix == "personal_information.user_id" and event in ("number", "string"):
                    return f"user{as_id(value)}"
                if prefix == "chats":
                    break
        return None

    def messages(self) -> Iterator[ParsedMessage | None]:
        with self._open() as fh:
            if self.account:
                for chat in array_items(fh, ("chats", "list")):
                    if isinstance(chat, dict) and (chat_id := as_id(chat.get("id"))) is not None:
                        yield from _chat_messages(chat_id, chat.get("type") in DM_TYPES, chat.get("messages"))
                return
            meta = self._single_chat_meta()
            for raw in array_items(fh, ("messages",)):
                yield _message(meta[0], meta[1], raw)

    def _single_chat_meta(self) -> tuple[str, bool]:
        with self._open() as fh:
            chat_id, chat_type = chat_header(fh, "id", "type")
        return chat_id or "telegram-chat", chat_type in DM_TYPES
