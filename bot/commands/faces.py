"""/avatar: random faces, the twin's own stable face, variations to pick from, a face found from a
picture the user attaches, and morphs."""

from __future__ import annotations

from bot.commands.context import CommandContext, NotInstalled, UserError
from bot.commands.types import CommandSpec, Invocation, OptionSpec, OutFile, Outbox, Reply

MODES = ("random", "me", "renew", "variations", "like", "keep", "morph")


async def avatar(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    service = ctx.services.avatars
    if service is None:
        raise NotInstalled("Faces (the avatar generator)")
    from avatar.picture import PictureError
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
            elif mode == "like":
                image = await service.face_like(user.id, await picture_of(ctx, inv))
                text = "The face I found in your picture. Keep it as your twin's face with /avatar keep pick:1."
            else:
                pick = inv.args.get("pick")
                if pick is None:
                    raise UserError("Which one? /avatar keep pick:<number> (after /avatar variations or /avatar like).")
                image = await service.keep_variation(user.id, int(pick))
                text = f"Kept face {pick} as your twin's face."
    except (AvatarError, PictureError) as exc:
        raise UserError(str(exc)) from exc
    await out.send(Reply(text, images=(OutFile(image.filename, image.data, image.mime),)))


async def picture_of(ctx: CommandContext, inv: Invocation) -> bytes:
    """The attached picture, downloaded into memory; one whose declared size is over the limit is
    refused unread (what arrives is checked again when it is read)."""
    from avatar.picture import refuse_oversize

    attachment = inv.args.get("picture") or next(iter(inv.event.attachments), None)
    if attachment is None:
        raise UserError("Attach a picture: /avatar like picture:<image>")
    refuse_oversize(attachment.size, ctx.settings.avatar_picture_max_bytes)
    return await attachment.fetch()


def make_spec(styles: tuple[str, ...]) -> CommandSpec:
    """The declaration, with the installed generator's styles as choices."""
    return CommandSpec(
        name="avatar",
        description="Render a face: a random one, your twin's own, variations, one like your picture, or a morph",
        handler=avatar,
        options=(
            OptionSpec("mode", "choice", "random (default), me, renew, variations, like, keep, morph", choices=MODES),
            OptionSpec("style", "choice", "drawing style", choices=styles),
            OptionSpec("pick", "int", "with keep: which face (1-4 after variations, 1 after like)"),
            OptionSpec("picture", "attachment", "with like: a picture (PNG, JPEG, WebP or GIF) to find a face in"),
        ),
        usage="/avatar [random|me|renew|variations|like|keep|morph] [style:<style>] [pick:<1-4>] "
              "[picture:<image>]",
    )
