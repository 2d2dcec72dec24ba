"""Telegram adapter: python-telegram-bot's Application in, neutral events to the command layer, replies out.

It only translates. Commands are registered from the layer's declarations (and shown in Telegram's
menu through setMyCommands); `/cmd options…` text is parsed by the layer. Everything a twin says is
sent with mentions defused, so no twin reply can notify anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from telegram import BotCommand, InputFile, Message, MessageEntity, ReplyParameters, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest

from bot.commands import Attachment, CommandLayer, Event, OutFile, Reply
from twinbot.settings import Settings

log = logging.getLogger(__name__)

MAX_TEXT = 4096
TYPING_EVERY_S = 4.0
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # what the Bot API lets a bot download
ZERO_WIDTH = "\u200b"


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Chunks of at most `limit` characters, cut at a newline or space when there is one."""
    chunks = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        chunks.append(text[:cut])
        text = text[cut:].lstrip()
    return [*chunks, text] if text else chunks


def defuse_mentions(text: str) -> str:
    """`@name` notifies people on Telegram; a zero-width space after @ keeps the text and drops the ping."""
    return text.replace("@", "@" + ZERO_WIDTH)


def render(reply: Reply) -> str:
    if reply.speaker is not None:
        return f"🪞 {reply.speaker.name}'s twin:\n{defuse_mentions(reply.text)}"
    return reply.text


@dataclass
class TelegramMessage:
    outbox: TelegramOutbox
    message: Message | None

    @property
    def message_id(self) -> str | None:
        return str(self.message.message_id) if self.message else None

    async def edit(self, reply: Reply) -> None:
        if self.message is None:
            return
        text = split_text(render(reply))[0] if reply.text else "…"
        await self.outbox.bot.edit_message_text(chat_id=self.outbox.chat_id, message_id=self.message.message_id,
                                                text=text)


class TelegramOutbox:
    def __init__(self, bot, chat_id: int, reply_to: int | None) -> None:  # noqa: ANN001 - telegram.Bot
        self.bot = bot
        self.chat_id = chat_id
        self.reply_to = reply_to

    def _reply_parameters(self) -> ReplyParameters | None:
        if self.reply_to is None:
            return None
        return ReplyParameters(message_id=self.reply_to, allow_sending_without_reply=True)

    async def send(self, reply: Reply) -> TelegramMessage:
        sent: Message | None = None
        for chunk in split_text(render(reply)):
            sent = await self.bot.send_message(self.chat_id, chunk, reply_parameters=self._reply_parameters())
        for image in reply.images:
            sent = await self._send_file(image, as_image=True)
        for file in reply.files:
            sent = await self._send_file(file, as_image=False)
        return TelegramMessage(self, sent)

    async def _send_file(self, item: OutFile, as_image: bool) -> Message:
        upload = InputFile(item.data, filename=item.filename)
        if as_image and item.mime == "image/gif":
            return await self.bot.send_animation(self.chat_id, upload, reply_parameters=self._reply_parameters())
        if as_image:
            return await self.bot.send_photo(self.chat_id, upload, reply_parameters=self._reply_parameters())
        return await self.bot.send_document(self.chat_id, upload, reply_parameters=self._reply_parameters())

    @contextlib.asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        async def keep_typing() -> None:
            while True:
                with contextlib.suppress(TelegramError):
                    await self.bot.send_chat_action(self.chat_id, ChatAction.TYPING)
                await asyncio.sleep(TYPING_EVERY_S)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class TelegramAdapter:
    """Serves the command layer on Telegram by polling (default) or a webhook (TELEGRAM_WEBHOOK_URL)."""

    def __init__(self, settings: Settings, layer: CommandLayer, *, base_url: str | None = None,
                 base_file_url: str | None = None, rate_limit: bool = True) -> None:
        if settings.telegram_token is None:
            raise ValueError("TELEGRAM_TOKEN is not set")
        self.settings = settings
        self.layer = layer
        builder = ApplicationBuilder().token(settings.telegram_token.get_secret_value()).concurrent_updates(True)
        if base_url is not None:
            # A local Bot API (tests, self-hosted servers): proxies from the environment must not apply.
            builder = builder.base_url(base_url).base_file_url(base_file_url or base_url.replace("/bot", "/file/bot"))
            builder = builder.request(HTTPXRequest(httpx_kwargs={"trust_env": False}))
            builder = builder.get_updates_request(HTTPXRequest(httpx_kwargs={"trust_env": False}))
        if rate_limit:
            builder = builder.rate_limiter(AIORateLimiter(overall_max_rate=30, group_max_rate=20, max_retries=2))
        self.app: Application = builder.build()
        self.app.add_handler(MessageHandler(filters.ALL & ~filters.StatusUpdate.ALL, self._on_message))
        self.app.add_error_handler(self._on_error)
        self._stopped = asyncio.Event()
        self.username = ""

    async def run(self) -> None:
        """Initialize, publish the command menu, serve until stop()."""
        app = self.app
        await app.initialize()
        self.username = app.bot.username or ""
        await app.bot.set_my_commands([BotCommand(spec.name, spec.description[:256]) for spec in self.layer.specs])
        await app.start()
        if self.settings.telegram_webhook_url:
            secret = self.settings.telegram_webhook_secret
            await app.updater.start_webhook(
                listen="0.0.0.0", port=self.settings.telegram_webhook_port, webhook_url=self.settings.telegram_webhook_url,
                secret_token=secret.get_secret_value() if secret else None,
            )
        else:
            await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            await self._stopped.wait()
        finally:
            await self._shutdown()

    async def stop(self) -> None:
        self._stopped.set()

    async def _shutdown(self) -> None:
        app = self.app
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    # --- translation --------------------------------------------------------------------------

    def event(self, message: Message) -> Event:
        user = message.from_user
        text = message.text or message.caption or ""
        mentions = message.parse_entities([MessageEntity.MENTION]) if message.text else \
            message.parse_caption_entities([MessageEntity.MENTION])
        handles = [m.removeprefix("@") for m in mentions.values()]
        mentions_bot = self.username.lower() in (h.lower() for h in handles)
        if mentions_bot and not text.startswith("/"):
            text = " ".join(w for w in text.split() if w.lower() != f"@{self.username.lower()}")
        replied = message.reply_to_message
        return Event(
            platform="telegram",
            user_id=str(user.id) if user else "unknown",
            user_name=(user.username or user.first_name) if user else "unknown",
            chat_id=str(message.chat_id),
            is_dm=message.chat.type == ChatType.PRIVATE,
            text=text,
            message_id=str(message.message_id),
            attachments=self.attachments(message),
            reply_to_message_id=str(replied.message_id) if replied and replied.from_user
            and replied.from_user.id == self.app.bot.id else None,
            mentions_bot=mentions_bot,
            mentioned_user_ids=tuple(h for h in handles if h.lower() != self.username.lower()),
            ts=message.date.timestamp() if message.date else None,
        )

    def attachments(self, message: Message) -> tuple[Attachment, ...]:
        document = message.document
        if document is None:
            return ()
        bot = self.app.bot

        async def fetch() -> bytes:
            file = await bot.get_file(document.file_id)
            return bytes(await file.download_as_bytearray())

        return (Attachment(document.file_name or "upload", document.file_size or 0, fetch, document.mime_type),)

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        event = self.event(message)
        out = TelegramOutbox(context.bot, message.chat_id, message.message_id)
        document = event.attachments[0] if event.attachments else None
        if document is not None and document.size > DOWNLOAD_LIMIT:
            await out.send(Reply(f"Telegram lets bots download files up to 20 MB; that one is "
                                 f"{document.size / 1e6:.0f} MB. Import it with the CLI instead.", kind="error"))
            return
        invocation = self.layer.parse_text_command(event)
        if invocation is None and document is not None and (event.is_dm or event.mentions_bot):
            # A document sent to the bot (DM, or with a mention) is an import, its caption the options.
            invocation = self.layer.parse_text_command(replace(event, text=f"/import {event.text}".strip()))
        if invocation is not None:
            await self.layer.dispatch(invocation, out)
        elif event.text:
            await self.layer.on_message(event, out)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update failed", exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            with contextlib.suppress(TelegramError):
                await context.bot.send_message(update.effective_chat.id, "Something went wrong on my side; "
                                               "it has been logged. Please try again.")

