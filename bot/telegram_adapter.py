"""Serves the command layer on Telegram with python-telegram-bot 22.

It only translates: one `CommandHandler` per declared command (and the same declarations fill
Telegram's command menu through setMyCommands), plain messages to `layer.on_message`, a document
sent to the bot to `/import`, a photo or file captioned with another command that takes one
(`/avatar like`) to that command. What a message means, who may talk to which twin and what is kept
is decided by the layer. Polling by default; a webhook when TELEGRAM_WEBHOOK_URL is set.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from urllib.parse import urlsplit

from telegram import BotCommand, Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.commands import CommandLayer, CommandSpec, Invocation, Reply, split_command
from bot.commands.layer import UNEXPECTED
from bot.telegram_events import DOWNLOAD_LIMIT, message_event, too_big_to_download
from bot.telegram_outbox import TelegramOutbox
from bot.telegram_pacing import ChatOrderedUpdates, ChatRateLimiter
from twinbot.settings import Settings, webhook_secret_problem

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 30
ALLOWED_UPDATES = [Update.MESSAGE]
"""Only new messages: edits, channel posts, reactions and the rest are not for twins."""
START_COMMAND = "start"
"""Every Telegram user's first message to a bot; it gets the help text."""
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class _FromPerson(filters.MessageFilter):
    """New messages written by a person (not by a bot, not on a channel's behalf)."""

    def filter(self, message: Message) -> bool:
        user = message.from_user
        return user is not None and not user.is_bot and message.sender_chat is None and message.via_bot is None


FROM_PERSON = filters.UpdateType.MESSAGE & _FromPerson()
IMPORT_DOCUMENT = filters.Document.ALL & (filters.ChatType.PRIVATE | filters.CaptionRegex(r"^/import(@\w+)?\b"))
"""A document is an import when sent in a private chat; with the caption /import in a group it is refused."""
TOO_BIG_TO_DOWNLOAD = (f"Telegram lets bots download files up to {DOWNLOAD_LIMIT // 1_000_000} MB, "
                       "and that one is bigger.")
EXPORT_IN_GROUP = (
    "I don't read exports posted in a group, where everyone can see them, and I didn't read this one. "
    "Send the file to me here, in our private chat (and you may want to delete it from the group)."
)


def captioned_command(specs: tuple[CommandSpec, ...]) -> filters.BaseFilter | None:
    """A photo or file whose caption is one of our commands that takes an attachment, other than
    /import (which has its own handler); None when no such command is declared.

    Telegram's command handlers read only a text message's command, never a caption.
    """
    names = [s.name for s in specs if s.name != "import" and any(o.type == "attachment" for o in s.options)]
    if not names:
        return None
    caption = re.compile(rf"^/({'|'.join(map(re.escape, names))})(@\w+)?(\s|$)", re.IGNORECASE)
    return (filters.PHOTO | filters.Document.ALL) & filters.CaptionRegex(caption)


def _request(base_url: str | None) -> HTTPXRequest:
    """HTTPX for the Bot API; a loopback server (tests, a local Bot API) is reached without proxies."""
    loopback = base_url is not None and urlsplit(base_url).hostname in _LOOPBACK_HOSTS
    return HTTPXRequest(httpx_kwargs={"trust_env": not loopback})


class TelegramAdapter:
    """The Telegram side of twinbot: `run()` serves until `stop()` or cancellation."""

    def __init__(
        self,
        settings: Settings,
        layer: CommandLayer,
        *,
        base_url: str | None = None,
        base_file_url: str | None = None,
        rate_limiter: BaseRateLimiter | None = None,
        webhook_listen: str = "0.0.0.0",
    ) -> None:
        """`base_url`/`base_file_url` point at another Bot API server; `rate_limiter` replaces Telegram's
        flood limits (tests); `webhook_listen` is the address the webhook server binds."""
        if settings.telegram_token is None:
            raise ValueError("TELEGRAM_TOKEN is not set")
        problem = webhook_secret_problem(settings.telegram_webhook_url, settings.telegram_webhook_secret)
        if problem:  # settings built in code skip validation; an open webhook must still never start
            raise ValueError(f"TELEGRAM_WEBHOOK_SECRET {problem}")
        self.settings = settings
        self.layer = layer
        self.webhook_listen = webhook_listen
        builder = (
            ApplicationBuilder()
            .token(settings.telegram_token.get_secret_value())
            .request(_request(base_url))
            .get_updates_request(_request(base_url))
            .rate_limiter(rate_limiter or ChatRateLimiter())
            .concurrent_updates(ChatOrderedUpdates())
        )
        if base_url is not None:
            builder = builder.base_url(base_url).base_file_url(base_file_url or base_url.replace("/bot", "/file/bot"))
        self.app: Application = builder.build()
        for spec in layer.specs:
            self.app.add_handler(CommandHandler(spec.name, self._on_command, filters=FROM_PERSON))
        self.app.add_handler(CommandHandler(START_COMMAND, self._on_start, filters=FROM_PERSON))
        if (captioned := captioned_command(layer.specs)) is not None:
            self.app.add_handler(MessageHandler(FROM_PERSON & captioned, self._on_captioned_command))
        self.app.add_handler(MessageHandler(FROM_PERSON & IMPORT_DOCUMENT, self._on_document))
        self.app.add_handler(MessageHandler(FROM_PERSON & filters.COMMAND, self._on_other_command))
        self.app.add_handler(MessageHandler(FROM_PERSON & filters.TEXT & ~filters.COMMAND, self._on_text))
        self.app.add_error_handler(self._on_error)
        self._stop_requested = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False

    def menu(self) -> list[BotCommand]:
        """Telegram's command menu, from the layer's declarations."""
        return [BotCommand(spec.name, spec.description[:256]) for spec in self.layer.specs]

    async def run(self) -> None:
        """Log in, publish the command menu, then take updates until stop() or cancellation."""
        self._running = True
        app = self.app
        try:
            await app.initialize()
            await app.bot.set_my_commands(self.menu())
            await app.start()
            await self._start_updates()
            log.info("serving Telegram as @%s", app.bot.username)
            await self._stop_requested.wait()
        finally:
            try:
                await self._shutdown()
            finally:
                self._finished.set()

    async def _start_updates(self) -> None:
        updater = self.app.updater
        url = self.settings.telegram_webhook_url
        if not url:
            await updater.start_polling(timeout=POLL_TIMEOUT_S, allowed_updates=ALLOWED_UPDATES)
            return
        secret = self.settings.telegram_webhook_secret
        assert secret is not None  # checked in __init__
        await updater.start_webhook(
            listen=self.webhook_listen,
            port=self.settings.telegram_webhook_port,
            url_path=urlsplit(url).path.lstrip("/"),
            webhook_url=url,
            secret_token=secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
        )

    async def stop(self) -> None:
        """Stop taking updates, finish the ones in hand, then close, in reverse order of starting."""
        self._stop_requested.set()
        if self._running:
            await self._finished.wait()

    async def _shutdown(self) -> None:
        app = self.app
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    # --- translation ------------------------------------------------------------------------------

    def _outbox(self, message: Message, private: bool = False) -> TelegramOutbox:
        """Answers to `message`; `private` ones (a private command's) go to the user's private chat from a group."""
        in_group = message.chat.type != "private"
        return TelegramOutbox(
            self.app.bot,
            message.chat_id,
            thread_id=message.message_thread_id if message.is_topic_message else None,
            quote=message.message_id if in_group else None,
            private_user_id=message.from_user.id if in_group and message.from_user else None,
            private=private,
        )

    def _is_private(self, command: str) -> bool:
        spec = self.layer.spec(command)
        return spec is not None and spec.private

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        event = message_event(message, self.app.bot)
        invocation = self.layer.parse_text_command(event)
        if invocation is not None:
            await self.layer.dispatch(invocation, self._outbox(message, self._is_private(invocation.command)))

    async def _on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        await self.layer.dispatch(Invocation("help", {}, message_event(message, self.app.bot)), self._outbox(message))

    async def _on_other_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command that is not ours: answered in a private chat or when addressed to us by name;
        in a group it is left alone, since it is probably meant for another bot."""
        message = update.effective_message
        event = message_event(message, self.app.bot)
        parts = split_command(event.text)
        if parts is None:
            return
        name, addressee, _rest = parts
        if (event.is_dm and self._is_ours(addressee)) or (addressee is not None and self._is_ours(addressee)):
            await self.layer.dispatch(Invocation(name, {}, event), self._outbox(message))

    async def _on_document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An export sent to the bot: the caption (if any) holds /import's options, e.g. `as:Ana`.

        One posted in a group is never read: the user is asked, privately, to send it in private.
        """
        message = update.effective_message
        event = message_event(message, self.app.bot)
        options = event.text
        parts = split_command(event.text)
        if parts is not None:
            name, addressee, options = parts
            if name != "import" or not self._is_ours(addressee):
                return
        out = self._outbox(message, self._is_private("import"))
        if not event.is_dm:
            await out.send(Reply(EXPORT_IN_GROUP, kind="error"))
            return
        if too_big_to_download(event):
            await out.send(Reply(f"{TOO_BIG_TO_DOWNLOAD} Import it with `twinbot import` on the server instead.",
                                 kind="error"))
            return
        invocation = self.layer.parse_text_command(replace(event, text=f"/import {options}".strip()))
        if invocation is not None:
            await self.layer.dispatch(invocation, out)

    async def _on_captioned_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo (or file) with a command as its caption, e.g. `/avatar like`: the caption is the command,
        the photo its attachment."""
        message = update.effective_message
        event = message_event(message, self.app.bot)
        invocation = self.layer.parse_text_command(event)
        parts = split_command(event.text)
        if invocation is None or parts is None or not self._is_ours(parts[1]):
            return
        out = self._outbox(message, self._is_private(invocation.command))
        if too_big_to_download(event):
            await out.send(Reply(TOO_BIG_TO_DOWNLOAD, kind="error"))
            return
        await self.layer.dispatch(invocation, out)

    def _is_ours(self, addressee: str | None) -> bool:
        """`/cmd` or `/cmd@ourbot`, not `/cmd@otherbot`."""
        return addressee is None or addressee.lower() == (self.app.bot.username or "").lower()

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        await self.layer.on_message(message_event(message, self.app.bot), self._outbox(message))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A failure outside the layer (usually Telegram refusing a request): log it, tell the user."""
        log.error("a Telegram update failed", exc_info=context.error)
        message = update.effective_message if isinstance(update, Update) else None
        if message is None:
            return
        try:
            await self._outbox(message).send(Reply(UNEXPECTED, kind="error"))
        except TelegramError:
            log.warning("could not tell chat %s about the failure", message.chat_id, exc_info=True)
