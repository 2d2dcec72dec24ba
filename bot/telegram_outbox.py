"""Replies out to Telegram: what the command layer says, as Telegram messages.

Text is split at Telegram's limit (counted in UTF-16 units, as Telegram counts); images go as
photos (GIF morphs as animations) with the text as caption when it fits; files go as documents;
"typing…" is renewed while a twin thinks; progress messages are edited in place. A twin's words are
sent silently, quote nobody and have every @mention defused, so a twin can never notify anyone.
Telegram has no ephemeral messages, so in a group every answer of a private command (/consent,
/status, /import, /export, /forget: their errors and progress too) goes to the user's private chat
with the bot instead, with a pointer in the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from telegram import Bot, InputFile, Message, ReplyParameters
from telegram.constants import ChatAction, MessageLimit
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.commands import OutFile, Reply

log = logging.getLogger(__name__)

TEXT_LIMIT = MessageLimit.MAX_TEXT_LENGTH
CAPTION_LIMIT = MessageLimit.CAPTION_LENGTH
TYPING_RENEW_S = 4.0  # Telegram shows a chat action for 5 s, so renew a little before it fades
_MENTION = re.compile(r"@(?=\w)")
_WORD_JOINER = "\u2060"  # invisible; after an @ it stops Telegram from reading a mention


def telegram_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` units that join back to `text` exactly.

    Each cut is made after a paragraph break, line break or space when one lies in the second half
    of the piece, so words and lines stay whole; otherwise the piece is cut hard at the limit.
    """
    pieces: list[str] = []
    while telegram_len(text) > limit:
        end = _prefix_within(text, limit)
        cut = end
        for separator in ("\n\n", "\n", " "):
            at = text.rfind(separator, 0, end)
            if at >= end // 2:
                cut = at + len(separator)
                break
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text] if text else pieces


def fit(text: str, limit: int) -> str:
    """`text` shortened with an ellipsis to fit one message (edits cannot be split)."""
    pieces = split_text(text, limit - 1)
    return text if len(pieces) <= 1 else pieces[0].rstrip() + "…"


def defuse_mentions(text: str) -> str:
    """The text with every @mention made inert, so sending it notifies no one."""
    return _MENTION.sub("@" + _WORD_JOINER, text)


def is_twin(reply: Reply) -> bool:
    return reply.kind == "twin" or reply.speaker is not None


def render(reply: Reply) -> str:
    """The message text of a reply; a twin's is labelled with the twin's name and defused."""
    if is_twin(reply):
        name = reply.speaker.name if reply.speaker is not None else "A twin"
        return defuse_mentions(f"🪞 {name}'s twin:\n{reply.text}")
    return reply.text


@dataclass
class TelegramMessage:
    """A sent message the layer may edit (progress) and remember (twin replies)."""

    outbox: TelegramOutbox
    chat_id: int
    message: Message | None
    captioned: bool = False
    """The text rides as a caption on a photo or file, so edits change the caption."""

    @property
    def message_id(self) -> str | None:
        return str(self.message.message_id) if self.message is not None else None

    async def edit(self, reply: Reply) -> None:
        """Replace the text in place; files in the new reply follow as new messages."""
        text = render(reply)
        if self.message is not None and text.strip():
            bot, message_id = self.outbox.bot, self.message.message_id
            try:
                if self.captioned:
                    await bot.edit_message_caption(chat_id=self.chat_id, message_id=message_id,
                                                   caption=fit(text, CAPTION_LIMIT))
                else:
                    await bot.edit_message_text(fit(text, TEXT_LIMIT), chat_id=self.chat_id, message_id=message_id)
            except BadRequest as exc:
                if "not modified" not in exc.message:  # an edit to the same text is not a failure
                    raise
        if reply.images or reply.files:
            await self.outbox.deliver(self.chat_id, Reply(images=reply.images, files=reply.files))


@dataclass
class TelegramOutbox:
    """How the layer answers one incoming Telegram message."""

    bot: Bot
    chat_id: int
    thread_id: int | None = None
    """The forum topic the message came from: answers stay in it."""
    quote: int | None = None
    """The user's message, quoted by answers in groups so it is clear whom they answer."""
    private_user_id: int | None = None
    """In a group: the user, whose private chat receives answers meant for them only."""
    private: bool = False
    """The command is private (`CommandSpec.private`): every answer is for the user only."""
    typing_every_s: float = TYPING_RENEW_S

    async def send(self, reply: Reply) -> TelegramMessage:
        for_user_only = self.private or (reply.ephemeral and reply.kind != "error")
        if for_user_only and self.private_user_id is not None:
            return await self._send_privately(reply, self.private_user_id)
        return await self.deliver(self.chat_id, reply, quote=self.quote, thread_id=self.thread_id)

    async def _send_privately(self, reply: Reply, user_id: int) -> TelegramMessage:
        """A private answer asked for in a group: to the user's private chat, never to the group."""
        here = {"quote": self.quote, "thread_id": self.thread_id}
        try:
            sent = await self.deliver(user_id, reply)
        except Forbidden:
            return await self.deliver(self.chat_id, Reply(self._start_first_text(), kind="error"), **here)
        except BadRequest as exc:
            if "chat not found" not in exc.message.lower():
                raise
            return await self.deliver(self.chat_id, Reply(self._start_first_text(), kind="error"), **here)
        await self.deliver(self.chat_id, Reply("I sent you the answer in our private chat."), **here)
        return sent

    def _start_first_text(self) -> str:
        """Bots may not open a private chat; the user has to, once."""
        return (f"That answer is for you only, but I can't message you yet: open a private chat with "
                f"@{self.bot.username}, press Start, then ask again.")

    async def deliver(self, chat_id: int, reply: Reply, *, quote: int | None = None,
                      thread_id: int | None = None) -> TelegramMessage:
        """Send one reply to `chat_id`: text pieces, then images and files (text as caption if it fits)."""
        text = render(reply)
        twin = is_twin(reply)
        quote = None if twin else quote  # quoting someone notifies them; a twin notifies no one
        options = {"disable_notification": twin, "message_thread_id": thread_id}
        media = [(item, True) for item in reply.images] + [(item, False) for item in reply.files]
        captioned = bool(media) and bool(text.strip()) and telegram_len(text) <= CAPTION_LIMIT
        first: Message | None = None
        if not captioned:
            for piece in split_text(text):
                if piece.strip():  # Telegram refuses blank messages
                    sent = await self.bot.send_message(chat_id, piece, reply_parameters=_quoting(quote), **options)
                    first, quote = first or sent, None
        for index, (item, is_image) in enumerate(media):
            caption = text if captioned and index == 0 else None
            sent = await self._send_file(chat_id, item, is_image, caption, _quoting(quote), options)
            first, quote = first or sent, None
        return TelegramMessage(self, chat_id, first, captioned)

    async def _send_file(self, chat_id: int, item: OutFile, is_image: bool, caption: str | None,
                         reply_parameters: ReplyParameters | None, options: dict) -> Message:
        upload = InputFile(item.data, filename=item.filename)
        common = {"caption": caption, "reply_parameters": reply_parameters, **options}
        if is_image and item.mime == "image/gif":
            return await self.bot.send_animation(chat_id, upload, **common)
        if is_image:
            return await self.bot.send_photo(chat_id, upload, **common)
        return await self.bot.send_document(chat_id, upload, **common)

    @contextlib.asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        """Show "typing…" in the chat, renewed until the block ends."""
        task = asyncio.create_task(self._keep_typing(), name=f"typing-{self.chat_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_typing(self) -> None:
        while True:
            try:
                await self.bot.send_chat_action(self.chat_id, ChatAction.TYPING, message_thread_id=self.thread_id)
            except TelegramError as exc:  # only cosmetic: the reply itself still goes out
                log.debug("typing action failed in chat %s: %s", self.chat_id, exc)
            await asyncio.sleep(self.typing_every_s)


def _quoting(message_id: int | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)
