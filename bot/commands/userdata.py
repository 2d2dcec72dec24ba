"""/export and /forget: the user's data is theirs to take and to delete, every row and every file."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bot.commands.context import CommandContext, UserError
from bot.commands.types import CommandSpec, Invocation, OptionSpec, OutFile, Outbox, Reply
from persona_store import ScrubIncomplete, Store
from twinbot.files import delete_tree
from twinbot.settings import Settings

EXPORT_README = """\
twinbot export
==============

Everything twinbot keeps about you, in structured, machine-readable form (GDPR Art. 20).

data/profile.json           who you are to twinbot: platform, platform user id, display name.
data/consent_history.json   every grant and withdrawal of `learn` and `share`, with timestamps.
data/messages.json          your messages (is_own = true) and, from your imports, other people's lines
                            kept only as context for your twin (is_own = false). ts is seconds since 1970.
data/training_jobs.json     every training run of your twin: state, progress, loss, errors, times.
data/adapter_record.json    which adapter serves your twin, what base model and how many examples trained it.
data/avatar_record.json     your twin's face: style and generator latent (hex), and when it was chosen.
adapter/                    your twin's LoRA adapter (peft format: adapter_config.json + safetensors).
avatar/                     your twin's face as a PNG.
uploads/                    export files you uploaded that are waiting for you to pick who you are.

JSON files are UTF-8. Files absent from this archive hold nothing about you.
"""


def build_zip(files: dict[str, bytes]) -> bytes:
    """A deflated zip of `files` plus the README that explains each of them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", EXPORT_README)
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
    return buffer.getvalue()


async def export(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    user = await ctx.known_user(inv.event)
    if user is None:
        await out.send(Reply("I keep nothing about you, so there is nothing to export.", ephemeral=True))
        return
    files = await ctx.store.export_user(user.id)
    for keeper in ctx.services.keepers.values():
        files.update(await keeper.export_user_data(user.id))
    data = await asyncio.to_thread(build_zip, files)
    limit = ctx.settings.export_max_bytes
    if len(data) > limit:
        raise UserError(
            f"Your export is {len(data) / 1e6:.3g} MB, more than the {limit / 1e6:.3g} MB I may send. "
            "Ask the bot's operator to raise EXPORT_MAX_BYTES, or /forget what you no longer want kept."
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    await out.send(
        Reply(
            f"Everything I keep about you: {len(files)} files (README.txt explains each).",
            files=(OutFile(f"twinbot-export-{stamp}.zip", data, "application/zip"),),
            ephemeral=True,
        )
    )


async def forget(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    user = await ctx.known_user(inv.event)
    if user is None:
        await finish_scrub(ctx, out)
        return
    if not inv.args.get("confirm"):
        own, context = await ctx.store.messages.counts(user.id)
        await out.send(
            Reply(
                f"This deletes everything I keep about you: {own + context} messages, your consent, training "
                "jobs, your twin's adapter, its face and any uploads. It cannot be undone.\n"
                "To go ahead: /forget confirm:yes",
                ephemeral=True,
            )
        )
        return
    try:
        await ctx.store.jobs.cancel_active(user.id)
        removed_files = {name: await keeper.delete_user_data(user.id) for name, keeper in ctx.services.keepers.items()}
        if ctx.services.twins is not None:
            await ctx.services.twins.delete_adapter(user.id)
        try:
            rows = await ctx.store.delete_user(user.id)
        except ScrubIncomplete as exc:
            await out.send(Reply(f"Deleted {removed_list(exc.removed, removed_files)}. {SCRUB_BUSY}",
                                 ephemeral=True, kind="error"))
            return
    finally:
        forget_in_memory(ctx, inv.event.platform, inv.event.user_id, user.id)
    await out.send(Reply(f"Forgotten. Removed: {removed_list(rows, removed_files)}.", ephemeral=True))


SCRUB_BUSY = (
    "But the database was busy, so the deleted text may still sit in its files. "
    "Run /forget confirm:yes again in a minute to wipe it."
)


def removed_list(rows: dict[str, int], files: dict[str, int]) -> str:
    """'3 messages, 1 consent events, 2 avatar files' from what the store and the keepers removed."""
    removed = [f"{n} {what.replace('_', ' ')}" for what, n in rows.items() if n and what != "users"]
    removed += [f"{n} {what}" for what, n in files.items() if n]
    return ", ".join(removed) or "your profile"


async def finish_scrub(ctx: CommandContext, out: Outbox) -> None:
    """/forget from someone twinbot keeps nothing about: finish wiping an earlier deletion if one is due."""
    if not ctx.store.scrub_pending:
        await out.send(Reply("I keep nothing about you; there is nothing to forget.", ephemeral=True))
        return
    try:
        await ctx.store.scrub()
    except ScrubIncomplete:
        await out.send(Reply(f"I keep nothing about you. {SCRUB_BUSY}", ephemeral=True, kind="error"))
        return
    await out.send(Reply("I keep nothing about you, and the last traces of deleted data are now wiped.",
                         ephemeral=True))


def forget_in_memory(ctx: CommandContext, platform: str, platform_user_id: str, user_id: int) -> None:
    """Drop the user from the layer's in-memory conversation and reply bookkeeping."""
    for key in [k for k in ctx.conversations if k[2] == user_id]:
        del ctx.conversations[key]
    for key in [k for k, owner in ctx.twin_messages.items() if owner == user_id]:
        del ctx.twin_messages[key]
    ctx.pending_imports.pop((platform, platform_user_id), None)


def console_user_dir(settings: Settings, platform_user_id: str) -> Path:
    """The folder where the console saves the files it sends a console user (exports, faces).

    The name is the user's id percent-encoded, so no id can reach outside CONSOLE_FILES_DIR.
    """
    return settings.console_files_dir / f"user-{quote(platform_user_id, safe='')}"


@dataclass
class ConsoleFiles:
    """The files the console saved for a console user: deleted by /forget like every other copy."""

    settings: Settings
    store: Store

    async def export_user_data(self, user_id: int) -> dict[str, bytes]:
        """Nothing: these are copies of earlier exports and faces, which the export already holds."""
        return {}

    async def delete_user_data(self, user_id: int) -> int:
        user = await self.store.users.get(user_id)
        if user is None or user.platform != "console":
            return 0
        return await delete_tree(console_user_dir(self.settings, user.platform_user_id))


EXPORT_SPEC = CommandSpec(
    name="export",
    description="Get a zip of everything twinbot keeps about you",
    handler=export,
    usage="/export",
    private=True,
)

FORGET_SPEC = CommandSpec(
    name="forget",
    description="Delete everything twinbot keeps about you",
    handler=forget,
    options=(OptionSpec("confirm", "bool", "yes to really delete everything"),),
    usage="/forget [confirm:yes]",
    private=True,
)

