"""/status: what twinbot keeps about you, your consent, your twin's training and adapter."""

from __future__ import annotations

import time

from bot.commands.consent import describe
from bot.commands.context import CommandContext
from bot.commands.types import CommandSpec, Invocation, Outbox, Reply


def age(seconds: float) -> str:
    """A rough, human age: '3 min', '5 h', '2 days'."""
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''}"
    return f"{int(seconds)} s"


async def status(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    user = await ctx.known_user(inv.event)
    if user is None:
        await out.send(Reply("I keep nothing about you. /consent explains what I would keep if you opt in."))
        return
    store = ctx.store
    own, context = await store.messages.counts(user.id)
    lines = [
        f"About {user.display_name}:",
        describe(await store.consent.current(user.id)),
        f"messages: {own} of yours, {context} from others kept as context for your twin",
    ]
    if own + context >= store.messages.max_per_owner:
        lines.append(f"that is the most I keep for one user ({store.messages.max_per_owner:,}): new messages are not kept")
    job = await store.jobs.latest_for(user.id)
    if job is not None:
        from persona.training.jobs import describe_progress

        lines.append(f"training: {describe_progress(job)}")
    adapter = await store.adapters.get(user.id)
    if adapter is None:
        lines.append("twin: not trained yet (it answers from your past messages with the base model)")
    else:
        lines.append(
            f"twin: trained on {adapter.n_examples} examples, {age(time.time() - adapter.created_at)} ago"
        )
    lines.append("face: kept" if await store.avatars.get(user.id) else "face: none kept yet (/avatar me)")
    trainer = ctx.services.trainer
    if trainer is not None and not trainer.running:
        restart = f"; it restarts in {age(max(0.0, trainer.restart_at - time.time()))}" if trainer.restart_at else ""
        lines.append(f"trainer: down (it stopped {trainer.deaths} time(s) in a row{restart}); training waits")
    await out.send(Reply("\n".join(lines), ephemeral=True))


SPEC = CommandSpec(
    name="status",
    description="What twinbot keeps about you and how your twin is doing",
    handler=status,
    usage="/status",
    private=True,
)
