"""/consent: what twinbot keeps, the two separate scopes, and withdrawing them."""

from __future__ import annotations

from bot.commands.context import CommandContext
from bot.commands.types import CommandSpec, Invocation, OptionSpec, Outbox, Reply
from persona_store import Consent, Scope

EXPLANATION = (
    "What I keep and why, in plain words:\n"
    "• learn — I store the messages you write where I can see them (and any export you /import), "
    "and train your twin on them. Nothing of yours is stored before you say yes.\n"
    "• share — other people may talk to your twin. Without it, only you can.\n"
    "Withdraw any time: /consent off stops everything at once (or /consent unshare for sharing only). "
    "/export gives you everything I keep; /forget deletes it all."
)

CHOICES = ("learn", "share", "unlearn", "unshare", "off")


def describe(consent: Consent) -> str:
    learn = "on — I learn from your messages" if consent.learn else "off — I store nothing you write"
    share = "on — others may talk to your twin" if consent.share else "off — only you can talk to your twin"
    return f"learn: {learn}\nshare: {share}"


async def consent(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    choice = inv.args.get("scope")
    if choice is None:
        user = await ctx.known_user(inv.event)
        state = await ctx.store.consent.current(user.id) if user else Consent(False, False, None)
        await out.send(Reply(f"{EXPLANATION}\n\nYour consent now:\n{describe(state)}"))
        return
    changes = {
        "learn": {Scope.LEARN: True},
        "share": {Scope.SHARE: True},
        "unlearn": {Scope.LEARN: False},
        "unshare": {Scope.SHARE: False},
        "off": {Scope.LEARN: False, Scope.SHARE: False},
    }[choice]
    user = await ctx.known_user(inv.event)
    if user is None and not any(changes.values()):
        await out.send(Reply("Nothing to withdraw: I keep nothing about you."))
        return
    user = user or await ctx.user(inv.event)
    for scope, granted in changes.items():
        state = await ctx.store.consent.set(user.id, scope, granted)
    stopped = ""
    if changes.get(Scope.LEARN) is False and await ctx.store.jobs.cancel_active(user.id):
        stopped = "\nYour twin's training is stopped; no new twin comes out of it."
    await out.send(Reply(f"Done.\n{describe(state)}{stopped}"))


SPEC = CommandSpec(
    name="consent",
    description="See or change what twinbot may do with your messages",
    handler=consent,
    options=(
        OptionSpec("scope", "choice", "learn, share, unlearn, unshare or off (withdraw all)", choices=CHOICES),
    ),
    usage="/consent [learn|share|unlearn|unshare|off]",
    private=True,
)
