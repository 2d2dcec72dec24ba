"""/import: bring in a chat export (Telegram, Discord package, DiscordChatExporter, JSONL)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bot.commands.context import CommandContext, UserError
from bot.commands.types import Attachment, CommandSpec, Invocation, OptionSpec, Outbox, Reply
from persona.paths import user_upload_dir
from persona_store import MessageQuotaFull, User
from twinbot.files import delete_tree
from twinbot.settings import Settings

PROGRESS_EVERY_S = 2.0
PENDING_TTL_S = 3600.0  # an upload waiting for `as:` longer than this is deleted


@dataclass
class Uploads:
    """Pending uploads are the user's data too: exported and deleted with the rest."""

    settings: Settings

    async def export_user_data(self, user_id: int) -> dict[str, bytes]:
        folder = user_upload_dir(self.settings, user_id)
        files = sorted(folder.glob("*")) if folder.is_dir() else []
        return {f"uploads/{p.name}": await asyncio.to_thread(p.read_bytes) for p in files}

    async def delete_user_data(self, user_id: int) -> int:
        return await delete_tree(user_upload_dir(self.settings, user_id))


async def save_upload(settings: Settings, user: User, attachment: Attachment) -> Path:
    """Download the attachment into the user's upload folder, refusing oversize files unread.

    The user has no other upload in use (one import at a time), so any file left in their folder is
    a stale one and goes first; the uploads of everyone together stay under their setting.
    """
    _refuse_oversize(settings, attachment.size)  # what the platform says, before reading it
    folder = user_upload_dir(settings, user.id)
    await delete_tree(folder)
    await _check_room(settings, folder.parent, attachment.size)
    data = await attachment.fetch()
    _refuse_oversize(settings, len(data))  # what arrived
    await _check_room(settings, folder.parent, len(data))
    path = folder / f"{uuid.uuid4().hex}.upload"

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    await asyncio.to_thread(write)
    return path


def _refuse_oversize(settings: Settings, size: int) -> None:
    limit = settings.import_max_bytes
    if size > limit:
        raise UserError(f"That file is {size / 1e6:.1f} MB; the import limit is {limit / 1e6:.0f} MB.")


async def _check_room(settings: Settings, root: Path, size: int) -> None:
    """Refuse an upload that would put more than IMPORT_UPLOADS_MAX_BYTES on disk, stale ones deleted first."""
    held = await asyncio.to_thread(_held_bytes, root)
    if held + size > settings.import_uploads_max_bytes:
        raise UserError("I'm holding too many uploads right now; try again in a few minutes.")


def _held_bytes(root: Path) -> int:
    """Bytes of the uploads waiting under `root`, after deleting those older than PENDING_TTL_S."""
    held = 0
    for path in root.glob("*/*.upload") if root.is_dir() else ():
        try:
            info = path.stat()
            if time.time() - info.st_mtime > PENDING_TTL_S:
                path.unlink()
            else:
                held += info.st_size
        except FileNotFoundError:  # finished by its own import meanwhile
            continue
    return held


def quota_reached(exc: MessageQuotaFull) -> str:
    """What an import that ran into the per-user message quota tells its user."""
    return (
        f"I stopped importing at the limit of {exc.quota:,} messages kept per user. "
        "The rest of this export was not stored; everything kept before is still there."
    )


async def import_(ctx: CommandContext, inv: Invocation, out: Outbox) -> None:
    user = await ctx.require_known(inv.event)
    if not (await ctx.store.consent.current(user.id)).learn:
        raise UserError("Importing keeps your messages, which needs your `learn` consent: /consent learn.")
    key = (inv.event.platform, inv.event.user_id)
    # One at a time per user, so no upload is deleted under a running import.
    with ctx.one_of("import", inv.event, 1, "An import of yours is already running; wait for it to finish."):
        path = await _upload_of(ctx, inv, user)
        waiting = False
        try:
            waiting = await _run_import(ctx, user, path, inv.args.get("as"), out)
        finally:
            if waiting:
                ctx.pending_imports[key] = path
            else:
                await asyncio.to_thread(path.unlink, missing_ok=True)


async def _upload_of(ctx: CommandContext, inv: Invocation, user: User) -> Path:
    """The file to import: a new upload (replacing any waiting one), or the one waiting for `as:`."""
    attachment = inv.args.get("file") or next(iter(inv.event.attachments), None)
    key = (inv.event.platform, inv.event.user_id)
    if attachment is not None:
        ctx.limit("imports", inv.event, ctx.settings.imports_per_hour, 3600.0)
        ctx.pending_imports.pop(key, None)
        return await save_upload(ctx.settings, user, attachment)
    if key in ctx.pending_imports and inv.args.get("as"):
        path = ctx.pending_imports.pop(key)
        if not path.exists():
            raise UserError("Your upload waited too long and was deleted; attach it again with /import.")
        return path
    raise UserError("Attach your export file to /import (Telegram result.json, Discord package zip, "
                    "DiscordChatExporter JSON or JSONL).")


async def _run_import(ctx: CommandContext, user: User, path: Path, as_participant: str | None, out: Outbox) -> bool:
    """Import the saved upload with progress; True when it waits for the user to say who they are."""
    from chat_exports import ImportFailed, NeedParticipant, import_export

    message = await out.send(Reply("Importing…", kind="progress"))
    last = time.monotonic()

    async def progress(count: int) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_EVERY_S:
            last = time.monotonic()
            await message.edit(Reply(f"Importing… {count} messages read", kind="progress"))

    try:
        report = await import_export(
            ctx.settings, ctx.store, user, path, as_participant=as_participant, progress=progress
        )
    except NeedParticipant as exc:
        await message.edit(Reply(str(exc), kind="error"))  # nothing is imported until they say who they are
        return True
    except ImportFailed as exc:
        await message.edit(Reply(str(exc), kind="error"))
        return False
    except MessageQuotaFull as exc:
        await message.edit(Reply(quota_reached(exc), kind="error"))
        return False
    await message.edit(Reply(report.summary(), kind="info"))
    return False


SPEC = CommandSpec(
    name="import",
    description="Import your chat history from an export file",
    handler=import_,
    options=(
        OptionSpec("file", "attachment", "the export: Telegram result.json, Discord package, DiscordChatExporter JSON"),
        OptionSpec("as", "text", "which participant you are, when the export doesn't say (name or id)"),
    ),
    usage="/import (attach the file) [as:<name or id>]",
    private=True,
)
