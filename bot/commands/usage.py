"""/help: every command with its usage, from the same declarations the adapters register."""

from __future__ import annotations

from bot.commands.context import CommandContext
from bot.commands.types import CommandSpec, Invocation, Outbox, Reply

INTRO = (
    "I'm twinbot. With your consent I learn how you write and train a twin that talks like you.\n"
    "Talk to a twin with /twin, by mentioning me, or by replying to a twin's message."
)


def help_text(specs: tuple[CommandSpec, ...]) -> str:
    lines = [INTRO, ""]
    lines += [f"{spec.usage or '/' + spec.name} — {spec.description}" for spec in specs]
    return "\n".join(lines)


async def help_(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    await out.send(Reply(help_text(ctx.specs)))


SPEC = CommandSpec(name="help", description="What twinbot does and how to use it", handler=help_, usage="/help")
