"""DiscordChatExporter JSON: `guild`, `channel`, `messages[]` with `author`, `content`, `timestamp`, `reference`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from chat_exports.fields import as_id, as_name, as_text, as_timestamp
from chat_exports.limits import ReadLimits
from chat_exports.records import ParsedMessage
from chat_exports.stream import array_items, chat_header

DM_TYPES = {"DirectTextChat", "DirectGroupTextChat"}


class ChatExporterJson:
    format = "discord-chat-exporter"
    platform = "discord"

    def __init__(self, path: Path, limits: ReadLimits) -> None:
        self.path = path
        self.limits = limits

    def owner_hint(self) -> None:
        return None  # one channel, many authors: the user says who they are

    def _channel(self) -> tuple[str, bool]:
        with self.limits.open(self.path) as fh:
            channel_id, channel_type = chat_header(fh, "channel.id", "channel.type")
        return channel_id or "discord-channel", channel_type in DM_TYPES

    def messages(self) -> Iterator[ParsedMessage | None]:
        channel_id, is_dm = self._channel()
        with self.limits.open(self.path) as fh:
            for raw in array_items(fh, ("messages",)):
                if not isinstance(raw, dict) or raw.get("type", "Default") not in ("Default", "Reply"):
                    yield None
                    continue
                author = raw.get("author") if isinstance(raw.get("author"), dict) else {}
                message_id, author_id = as_id(raw.get("id")), as_id(author.get("id"))
                text, ts = as_text(raw.get("content")), as_timestamp(raw.get("timestamp"))
                if message_id is None or author_id is None or text is None or ts is None:
                    yield None
                    continue
                reference = raw.get("reference") if isinstance(raw.get("reference"), dict) else {}
                name = as_name(author.get("nickname")) or as_name(author.get("name")) or author_id
                yield ParsedMessage(channel_id, message_id, author_id, name, ts, text,
                                    as_id(reference.get("messageId")), is_dm)
