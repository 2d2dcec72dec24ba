"""The platform-neutral command layer: adapters hand it events and it answers through their outbox."""

from __future__ import annotations

import logging
import time

from bot.commands import consent, faces, status, twin, twin_training, uploads, usage, userdata
from bot.commands.context import CommandContext, UserError
from bot.commands.parse import check_required, parse_options, split_command
from bot.commands.services import Services
from bot.commands.types import CommandSpec, Event, Invocation, Outbox, Reply
from persona_store import MessageQuotaFull, NewMessage
from twinbot.settings import Settings

log = logging.getLogger(__name__)

UNEXPECTED = "Something went wrong on my side; it has been logged. Please try again."


class CommandLayer:
    """Every command, declared once, plus the handling of plain messages (capture and twin chat)."""

    def __init__(self, settings: Settings, services: Services) -> None:
        self.settings = settings
        services.keepers.setdefault("pending uploads", uploads.Uploads(settings))
        services.keepers.setdefault("console files", userdata.ConsoleFiles(settings, services.store))
        styles = tuple(services.avatars.styles()) if services.avatars is not None else ()
        self._specs = (
            usage.SPEC,
            consent.SPEC,
            status.SPEC,
            uploads.SPEC,
            twin_training.SPEC,
            twin.SPEC,
            faces.make_spec(styles),
            userdata.EXPORT_SPEC,
            userdata.FORGET_SPEC,
        )
        self._by_name = {spec.name: spec for spec in self._specs}
        self.ctx = CommandContext(settings, services, specs=self._specs)

    @property
    def specs(self) -> tuple[CommandSpec, ...]:
        return self._specs

    def spec(self, name: str) -> CommandSpec | None:
        return self._by_name.get(name)

    def parse_text_command(self, event: Event) -> Invocation | None:
        """`/name options…` as an Invocation; None when the text is not a command of ours.

        A malformed command still returns an Invocation (with the parse error deferred to
        dispatch), so the user gets the usage line instead of silence.
        """
        parts = split_command(event.text)
        if parts is None or parts[0] not in self._by_name:
            return None
        name, _bot, rest = parts
        try:
            args = parse_options(self._by_name[name], rest)
        except UserError as exc:
            args = {"__error__": str(exc)}
        return Invocation(name, args, event)

    async def dispatch(self, inv: Invocation, out: Outbox) -> None:
        """Run one command; user errors and unexpected failures both reach the user as a short reply."""
        spec = self._by_name.get(inv.command)
        try:
            if spec is None:
                raise UserError(f"I don't know /{inv.command}. /help lists what I can do.")
            if "__error__" in inv.args:
                raise UserError(inv.args["__error__"])
            check_required(spec, inv.args)
            await spec.handler(self.ctx, inv, out)
        except UserError as exc:
            await out.send(Reply(str(exc), ephemeral=True, kind="error"))
        except Exception:
            log.exception("command /%s failed", inv.command)
            await out.send(Reply(UNEXPECTED, ephemeral=True, kind="error"))

    async def on_message(self, event: Event, out: Outbox) -> None:
        """A plain message: keep it if its author opted in, and answer it if it talks to a twin."""
        try:
            await self.capture(event)
            owner = await twin.addressed_twin(self.ctx, event)
            if owner is not None:
                await twin.talk(self.ctx, event, owner, event.text, out)
        except UserError as exc:
            await out.send(Reply(str(exc), ephemeral=True, kind="error"))
        except Exception:
            log.exception("handling a message failed")
            await out.send(Reply(UNEXPECTED, ephemeral=True, kind="error"))

    def capture_enabled(self, platform: str) -> bool:
        """Discord's policy needs the operator's explicit opt-in; elsewhere the user's consent decides."""
        return self.settings.discord_capture_messages if platform == "discord" else True

    async def capture(self, event: Event) -> bool:
        """Store the message only if capture is on here, its author has `learn` consent and room left.

        Past the per-user quota capture stops quietly: the author did not ask for anything, and a
        notice on every message would flood the chat. /status shows the count.
        """
        text = event.text.strip()
        if not text or event.message_id is None or not self.capture_enabled(event.platform):
            return False
        user = await self.ctx.known_user(event)
        if user is None or not (await self.ctx.store.consent.current(user.id)).learn:
            return False
        try:
            await self.ctx.store.messages.add_many([
                NewMessage(
                    owner_id=user.id,
                    platform=event.platform,
                    chat_id=event.chat_id,
                    message_id=event.message_id,
                    author=event.user_name,
                    is_own=True,
                    ts=event.ts or time.time(),
                    text=text[: self.settings.max_message_chars],
                    source="live",
                    reply_to=event.reply_to_message_id,
                    is_dm=event.is_dm,
                )
            ])
        except MessageQuotaFull:
            log.info("user %s is at the message quota; not capturing", user.id)
            return False
        return True

    async def close(self) -> None:
        await self.ctx.close()
