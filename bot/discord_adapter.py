"""Discord adapter: every command as a slash command, twin chat by mention or reply, on discord.py 2.x.

It only translates. Slash commands are built from the command layer's declarations (typed
options, descriptions, choices); each interaction is deferred at once and answered by follow-ups.
Everything the bot sends carries `AllowedMentions.none()`, so no twin can ping anyone.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional

import discord
from discord import app_commands

from bot.commands import Attachment, CommandLayer, CommandSpec, Event, Invocation, OutFile, Reply
from bot.commands.layer import UNEXPECTED
from twinbot.settings import Settings

log = logging.getLogger(__name__)

MAX_CONTENT = 2000
NO_MENTIONS = discord.AllowedMentions.none()
OPTION_TYPES: dict[str, Any] = {
    "text": str, "int": int, "bool": bool, "user": discord.User, "attachment": discord.Attachment, "choice": str,
}


def split_text(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Chunks of at most `limit` characters, cut at a newline or space when there is one."""
    chunks = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        chunks.append(text[:cut])
        text = text[cut:].lstrip()
    return [*chunks, text] if text else chunks


def to_files(items: tuple[OutFile, ...]) -> list[discord.File]:
    return [discord.File(io.BytesIO(item.data), filename=item.filename) for item in items]


def message_parts(reply: Reply) -> list[dict[str, Any]]:
    """The messages (kwargs for send) a reply becomes: twin text as embeds with the twin's face as icon."""
    files = to_files(reply.images + reply.files)
    if reply.speaker is None:
        chunks = split_text(reply.text) or [""]
        parts = [{"content": chunk} for chunk in chunks]
        parts[-1]["files"] = files
        return parts
    parts = []
    for chunk in split_text(reply.text) or [""]:
        embed = discord.Embed(description=chunk, colour=discord.Colour.blurple())
        part: dict[str, Any] = {"embed": embed, "files": []}
        if reply.speaker.face_png:
            part["files"].append(discord.File(io.BytesIO(reply.speaker.face_png), filename="face.png"))
            embed.set_author(name=f"{reply.speaker.name}'s twin", icon_url="attachment://face.png")
        else:
            embed.set_author(name=f"{reply.speaker.name}'s twin")
        parts.append(part)
    parts[-1]["files"] += files
    return parts


@dataclass
class DiscordMessage:
    message: discord.Message | discord.WebhookMessage | None

    @property
    def message_id(self) -> str | None:
        return str(self.message.id) if self.message is not None else None

    async def edit(self, reply: Reply) -> None:
        if self.message is not None:
            await self.message.edit(content=split_text(reply.text)[0] if reply.text else "…",
                                    allowed_mentions=NO_MENTIONS)


class InteractionOutbox:
    """Follow-ups of a deferred interaction (valid 15 minutes); private commands and errors answer ephemerally.

    Discord shows the first follow-up in place of the deferral's "thinking…" message, with the deferral's
    visibility whatever the follow-up asks. So an ephemeral answer to a public command deletes that
    message first and goes out as a message of its own, seen by the caller alone.
    """

    def __init__(self, interaction: discord.Interaction, private: bool) -> None:
        self.interaction = interaction
        self.private = private
        self.thinking = True
        """The deferral's message still waits for the first follow-up to replace it."""

    async def send(self, reply: Reply) -> DiscordMessage:
        ephemeral = self.private or reply.ephemeral or reply.kind == "error"
        if ephemeral and not self.private and self.thinking:
            await self.interaction.delete_original_response()
            self.thinking = False
        sent = None
        for part in message_parts(reply):
            sent = await self.interaction.followup.send(
                **part, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS, wait=True
            )
            self.thinking = False
        return DiscordMessage(sent)

    @contextlib.asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        yield  # the deferred interaction already shows "thinking…"


class ChannelOutbox:
    """Answers in a channel, the first message as a reply to the message that asked (when there is
    one); the messages after it (a twin's burst, a long text's parts) follow it as a person's would."""

    def __init__(self, channel: discord.abc.Messageable,
                 reference: discord.Message | discord.PartialMessage | None) -> None:
        self.channel = channel
        self.reference = reference

    async def send(self, reply: Reply) -> DiscordMessage:
        sent = None
        for part in message_parts(reply):
            sent = await self.channel.send(**part, reference=self.reference, mention_author=False,
                                           allowed_mentions=NO_MENTIONS)
            self.reference = None
        return DiscordMessage(sent)

    @contextlib.asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        async with self.channel.typing():
            yield


def attachment_of(item: discord.Attachment) -> Attachment:
    return Attachment(item.filename, item.size, item.read, item.content_type)


def app_command(spec: CommandSpec, run: Callable[[CommandSpec, discord.Interaction, dict], Awaitable[None]]
                ) -> app_commands.Command:
    """A slash command whose typed options come from the spec (Python names may differ: `as` is a keyword)."""

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        await run(spec, interaction, {name.removeprefix("opt_"): v for name, v in values.items() if v is not None})

    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    annotation=discord.Interaction)]
    for option in spec.options:
        kind = OPTION_TYPES[option.type]
        parameters.append(inspect.Parameter(
            f"opt_{option.name}", inspect.Parameter.KEYWORD_ONLY,
            annotation=kind if option.required else Optional[kind],  # noqa: UP007 - discord.py reads Optional
            default=inspect.Parameter.empty if option.required else None,
        ))
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__annotations__ = {p.name: p.annotation for p in parameters}
    names = {f"opt_{o.name}": o.name for o in spec.options}
    descriptions = {f"opt_{o.name}": o.description[:100] for o in spec.options}
    choices = {f"opt_{o.name}": [app_commands.Choice(name=c, value=c) for c in o.choices[:25]]
               for o in spec.options if o.choices}
    if names:
        callback = app_commands.rename(**names)(app_commands.describe(**descriptions)(callback))
    if choices:
        callback = app_commands.choices(**choices)(callback)
    return app_commands.Command(name=spec.name, description=spec.description[:100], callback=callback)


class DiscordAdapter:
    """Serves the command layer on Discord until stop()."""

    def __init__(self, settings: Settings, layer: CommandLayer, **client_options: Any) -> None:
        if settings.discord_token is None:
            raise ValueError("DISCORD_TOKEN is not set")
        self.settings = settings
        self.layer = layer
        intents = discord.Intents.default()
        # Message content is read only when the operator enabled capture; mentions and DMs arrive with
        # their content anyway.
        intents.message_content = settings.discord_capture_messages
        self.client = discord.Client(intents=intents, allowed_mentions=NO_MENTIONS, **client_options)
        self.tree = app_commands.CommandTree(self.client)
        for spec in layer.specs:
            self.tree.add_command(app_command(spec, self._run_command))
        self.tree.on_error = self._on_tree_error
        self.client.setup_hook = self._setup_hook
        self.client.event(self.on_message)

    async def _setup_hook(self) -> None:
        if self.settings.discord_guild_ids:
            for guild_id in self.settings.discord_guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

    async def run(self) -> None:
        assert self.settings.discord_token is not None
        await self.client.start(self.settings.discord_token.get_secret_value())

    async def stop(self) -> None:
        await self.client.close()

    # --- translation --------------------------------------------------------------------------

    def event(self, *, author: discord.abc.User, channel: Any, text: str, message_id: str | None,
              attachments: tuple[Attachment, ...] = (), reply_to: str | None = None, mentions_bot: bool = False,
              mentioned: tuple[str, ...] = ()) -> Event:
        return Event(
            platform="discord", user_id=str(author.id), user_name=author.display_name,
            chat_id=str(channel.id) if channel is not None else "unknown",
            is_dm=isinstance(channel, discord.DMChannel), text=text, message_id=message_id,
            attachments=attachments, reply_to_message_id=reply_to, mentions_bot=mentions_bot,
            mentioned_user_ids=mentioned,
        )

    async def _run_command(self, spec: CommandSpec, interaction: discord.Interaction, values: dict) -> None:
        outbox = interaction.extras["outbox"] = InteractionOutbox(interaction, spec.private)
        await interaction.response.defer(thinking=True, ephemeral=spec.private)
        args: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, discord.Attachment):
                args[name] = attachment_of(value)
            elif isinstance(value, (discord.User, discord.Member)):
                args[name] = str(value.id)
            else:
                args[name] = value
        event = self.event(author=interaction.user, channel=interaction.channel, text=f"/{spec.name}",
                           message_id=None)
        await self.layer.dispatch(Invocation(spec.name, args, event), outbox)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or self.client.user is None:
            return
        me = self.client.user
        mentions_bot = me in message.mentions
        text = message.content.replace(f"<@{me.id}>", "").replace(f"<@!{me.id}>", "").strip()
        event = self.event(
            author=message.author, channel=message.channel, text=text, message_id=str(message.id),
            attachments=tuple(attachment_of(a) for a in message.attachments),
            reply_to=str(message.reference.message_id) if message.reference and message.reference.message_id else None,
            mentions_bot=mentions_bot,
            mentioned=tuple(str(u.id) for u in message.mentions if u.id != me.id),
        )
        await self.layer.on_message(event, ChannelOutbox(message.channel, message))

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """A failure outside the layer: log it and tell the caller alone, through the command's outbox if deferred."""
        log.error("slash command failed", exc_info=error)
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.extras["outbox"].send(Reply(UNEXPECTED, ephemeral=True, kind="error"))
            else:
                await interaction.response.send_message(UNEXPECTED, ephemeral=True, allowed_mentions=NO_MENTIONS)
