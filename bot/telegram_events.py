"""Telegram messages in, as the command layer's neutral `Event`s.

Who wrote (their @username, else their name, is how others name their twin), where (a private
chat is a DM), which message it answers, whether it mentions the bot, whom else it mentions
(`@ana`, or a text mention of someone without a username), and any document or photo (its
largest size), downloaded into memory only when the layer asks for it. In a command, a text
mention becomes `@<user id>`, so `/twin` names that person by id rather than by a name anyone
can take.
"""

from __future__ import annotations

import re

from telegram import Bot, Message, MessageEntity
from telegram.constants import ChatType, FileSizeLimit

from bot.commands import Attachment, Event

DOWNLOAD_LIMIT = FileSizeLimit.FILESIZE_DOWNLOAD
"""The largest file the Bot API lets a bot download (20 MB)."""
_MENTION_KINDS = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]


def message_event(message: Message, bot: Bot) -> Event:
    """The neutral event for a message from a person (the caller skips bots and channels)."""
    user = message.from_user
    if user is None:
        raise ValueError("only messages with a sender can be translated")
    text = message.text or message.caption or ""
    entities = message.parse_entities(_MENTION_KINDS) if message.text else \
        message.parse_caption_entities(_MENTION_KINDS)
    own_handle = f"@{bot.username}".lower()
    mentions_bot = False
    others: list[str] = []
    for entity, shown in entities.items():
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None:
            mentions_bot |= entity.user.id == bot.id
            if entity.user.id != bot.id:
                others.append(str(entity.user.id))
        elif shown.lower() == own_handle:
            mentions_bot = True
        else:
            others.append(shown.removeprefix("@"))
    if text.startswith("/"):
        people = [e for e in entities if e.type == MessageEntity.TEXT_MENTION and e.user and e.user.id != bot.id]
        text = with_mention_ids(text, people)
    elif mentions_bot:
        # "@twinbot how are you" says "how are you" to a twin; the handle is addressing, not content.
        text = re.sub(rf"\s*@{re.escape(bot.username)}\b", "", text, flags=re.IGNORECASE).strip()
    replied = message.reply_to_message
    return Event(
        platform="telegram",
        user_id=str(user.id),
        user_name=user.username or user.full_name,
        chat_id=str(message.chat_id),
        is_dm=message.chat.type == ChatType.PRIVATE,
        text=text,
        message_id=str(message.message_id),
        attachments=attachments(message, bot),
        reply_to_message_id=str(replied.message_id) if replied is not None else None,
        mentions_bot=mentions_bot,
        mentioned_user_ids=tuple(others),
        ts=message.date.timestamp() if message.date else None,
    )


def with_mention_ids(text: str, mentions: list[MessageEntity]) -> str:
    """`text` with each text mention's span replaced by `@<user id>` (entity offsets count UTF-16 units)."""
    units = text.encode("utf-16-le")
    for entity in sorted(mentions, key=lambda e: e.offset, reverse=True):
        start, end = 2 * entity.offset, 2 * (entity.offset + entity.length)
        units = units[:start] + f"@{entity.user.id}".encode("utf-16-le") + units[end:]
    return units.decode("utf-16-le")


def attachments(message: Message, bot: Bot) -> tuple[Attachment, ...]:
    """The message's document, or its photo at the largest size Telegram made of it."""
    if message.document:
        document = message.document
        return (file_attachment(bot, document.file_id, document.file_name or "upload", document.file_size,
                                document.mime_type),)
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return (file_attachment(bot, largest.file_id, f"photo-{largest.file_unique_id}.jpg", largest.file_size,
                                "image/jpeg"),)  # Telegram re-encodes every photo as JPEG
    return ()


def file_attachment(bot: Bot, file_id: str, name: str, size: int | None, mime: str | None) -> Attachment:
    """A file the user sent, fetched through getFile into memory only when the layer reads it."""

    async def fetch() -> bytes:
        file = await bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())

    return Attachment(name, size or 0, fetch, mime)


def too_big_to_download(event: Event) -> bool:
    """Whether an attachment is over the Bot API's download limit (getFile would refuse it)."""
    return any(attachment.size > DOWNLOAD_LIMIT for attachment in event.attachments)
