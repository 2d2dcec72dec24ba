"""Talking to twins: `/twin [user] text`, DMs, mentions of the bot, and replies to a twin's message."""

from __future__ import annotations

import logging
from collections import deque

from bot.commands.context import CommandContext, NotInstalled, UserError
from bot.commands.types import CommandSpec, Event, Invocation, OptionSpec, Outbox, Reply, Speaker
from persona_store import User

log = logging.getLogger(__name__)

HISTORY_TURNS = 12
BUSY = "The twins are busy answering a lot of people right now; try again in a moment."


async def resolve_owner(ctx: CommandContext, event: Event, who: str | None) -> User:
    """The twin's owner: the named user, else the speaker themself."""
    if who:
        return await named_owner(ctx, event.platform, who)
    owner = await ctx.known_user(event)
    if owner is None:
        raise UserError(
            "You don't have a twin yet. /consent learn lets me learn from your messages; /import brings your history."
        )
    return owner


async def named_owner(ctx: CommandContext, platform: str, who: str) -> User:
    """The user `who` names: by platform id (what mentions carry), else by a name only one person has here.

    Anyone can take another's display name, so a shared name is refused rather than guessed.
    """
    found = await ctx.store.users.candidates(platform, who)
    if len(found) > 1:
        key = who.strip().removeprefix("@")
        raise UserError(f"{len(found)} people are called {key} here; mention the one you mean so I know whose twin.")
    if not found:
        raise UserError(f"I don't know a twin called {who!r} here.")
    return found[0]


async def talk(ctx: CommandContext, event: Event, owner: User, text: str, out: Outbox) -> None:
    """One exchange with `owner`'s twin in this chat, answered as the twin (pinging nobody)."""
    speaker_is_owner = event.platform == owner.platform and event.user_id == owner.platform_user_id
    if not speaker_is_owner and not (await ctx.store.consent.current(owner.id)).share:
        raise UserError(f"{owner.display_name} hasn't shared their twin, so only they can talk to it.")
    twins = ctx.services.twins
    if twins is None:
        raise NotInstalled("Talking to twins (the language model)")
    text = text.strip()
    if not text:
        raise UserError("Say something to the twin, e.g. /twin how was your weekend?")
    text = text[: ctx.settings.max_message_chars]
    ctx.limit("twin replies", event, ctx.settings.twin_replies_per_minute)

    from persona.prompt import Turn
    from persona.serving.service import ReplyRequest, TwinError
    from persona.serving.worker import WorkerBusy

    key = (event.platform, event.chat_id, owner.id)
    history: deque = ctx.conversations.get(key) or deque(maxlen=HISTORY_TURNS)
    request = ReplyRequest(
        owner=owner,
        speaker_name=event.user_name,
        text=text,
        history=list(history),
        platform=event.platform,
        chat_id=event.chat_id,
        is_dm=event.is_dm,
        asker_is_owner=speaker_is_owner,
    )
    speaker = Speaker(owner.id, owner.display_name, await twin_face(ctx, owner))
    answered: list[str] = []
    with ctx.one_of("message to a twin", event, ctx.settings.max_pending_replies_per_user):
        async with out.typing():
            try:
                # A burst goes out as its owner sends one: each message as soon as the twin has written it.
                async for message in twins.replies(request):
                    sent = await out.send(Reply(message, speaker=speaker, kind="twin"))
                    if sent.message_id is not None:
                        ctx.twin_messages[(event.platform, event.chat_id, sent.message_id)] = owner.id
                    answered.append(message)
            except TwinError as exc:
                raise UserError(str(exc)) from exc
            except WorkerBusy as exc:
                raise UserError(BUSY) from exc
            finally:
                if answered:  # the chat remembers what was said, even of a burst cut short
                    history.append(Turn(speaker=event.user_name, text=text, is_owner=speaker_is_owner))
                    history.extend(Turn(speaker=owner.display_name, text=message, is_owner=True)
                                   for message in answered)
                    ctx.conversations[key] = history


async def twin_face(ctx: CommandContext, owner: User) -> bytes | None:
    """The twin's stable face as a small icon, or None when faces are off (the reply still goes out)."""
    if ctx.services.avatars is None:
        return None
    from avatar.service import AvatarError

    try:
        return await ctx.services.avatars.own_face_png(owner.id)
    except AvatarError:
        log.warning("could not render the face of twin %s", owner.id, exc_info=True)
        return None


async def addressed_twin(ctx: CommandContext, event: Event) -> User | None:
    """Whose twin a plain message talks to: a reply to a twin, a DM, or a mention of the bot; else None."""
    if event.reply_to_message_id is not None:
        owner_id = ctx.twin_messages.get((event.platform, event.chat_id, event.reply_to_message_id))
        if owner_id is not None:
            return await ctx.store.users.get(owner_id)
    if event.mentions_bot and event.mentioned_user_ids:
        return await resolve_owner(ctx, event, event.mentioned_user_ids[0])
    if event.is_dm or event.mentions_bot:
        return await resolve_owner(ctx, event, None)
    return None


async def twin(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    owner = await resolve_owner(ctx, inv.event, inv.args.get("user"))
    await talk(ctx, inv.event, owner, inv.args.get("text") or "", out)


SPEC = CommandSpec(
    name="twin",
    description="Talk to a twin (yours, or someone's who shared theirs)",
    handler=twin,
    options=(
        OptionSpec("user", "user", "whose twin (default: yours)"),
        OptionSpec("text", "text", "what you say to the twin", required=True, rest=True),
    ),
    usage="/twin [@user] <text>",
)
