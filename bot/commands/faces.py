"""/avatar: random faces, the twin's own stable face, variations to pick from, and morphs."""

from __future__ import annotations

from bot.commands.context import CommandContext, NotInstalled, UserError
from bot.commands.types import CommandSpec, Invocation, OptionSpec, OutFile, Outbox, Reply

MODES = ("random", "me", "renew", "variations", "keep", "morph")


async def avatar(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    service = ctx.services.avatars
    if service is None:
        raise NotInstalled("Faces (the avatar generator)")
    from avatar.service import AvatarError

    mode = inv.args.get("mode") or "random"
    style = inv.args.get("style")
    ctx.limit("avatars", inv.event, ctx.settings.avatars_per_minute)
    try:
        if mode == "random":
            image, text = await service.random_face(style=style), "A new face."
        elif mode == "morph":
            user = await ctx.known_user(inv.event)
            image, text = await service.morph(user.id if user else None, style=style), "Morphing…"
        else:
            user = await ctx.user(inv.event)
            if mode in ("me", "renew"):
                image = await service.own_face(user.id, style=style, renew=mode == "renew")
                text = "Your twin's face." + ("" if mode == "renew" else " (/avatar renew for another one)")
            elif mode == "variations":
                image = await service.variations(user.id, style=style)
                text = "Four variations of your twin's face: keep one with /avatar keep pick:<1-4>."
            else:
                pick = inv.args.get("pick")
                if pick is None:
                    raise UserError("Which one? /avatar keep pick:<1-4> (after /avatar variations).")
                image = await service.keep_variation(user.id, int(pick))
                text = f"Kept face {pick} as your twin's face."
    except AvatarError as exc:
        raise UserError(str(exc)) from exc
    await out.send(Reply(text, images=(OutFile(image.filename, image.data, image.mime),)))


def make_spec(styles: tuple[str, ...]) -> CommandSpec:
    """The declaration, with the installed generator's styles as choices."""
    return CommandSpec(
        name="avatar",
        description="Render a face: a random one, your twin's own, variations, or a morph",
        handler=avatar,
        options=(
            OptionSpec("mode", "choice", "random (default), me, renew, variations, keep, morph", choices=MODES),
            OptionSpec("style", "choice", "drawing style", choices=styles),
            OptionSpec("pick", "int", "with keep: which variation (1-4)"),
        ),
        usage="/avatar [random|me|renew|variations|keep|morph] [style:<style>] [pick:<1-4>]",
    )
