"""/import: bring in a chat export (Telegram, Discord package, DiscordChatExporter, JSONL)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bot.commands.context import CommandContext, UserError
from bot.commands.types import Attachment, CommandSpec, Invocation, OptionSpec, Outbox, Reply
from bot.commands.userdata import delete_folder
from persona.paths import user_upload_dir
from persona_store import MessageQuotaFull, User
from twinbot.settings import Settings

PROGRESS_EVERY_S = 2.0


@dataclass
class Uploads:
    """Pending uploads are the user's data too: exported and deleted with the rest."""

    settings: Settings

    async def export_user_data(self, user_id: int) -> dict[str, bytes]:
        folder = user_upload_dir(self.settings, user_id)
        files = sorted(folder.glob("*")) if folder.is_dir() else []
        return {f"uploads/{p.name}": await asyncio.to_thread(p.read_bytes) for p in files}

    async def delete_user_data(self, user_id: int) -> int:
        return await delete_folder(user_upload_dir(self.settings, user_id))


async def save_upload(settings: Settings, user: User, attachment: Attachment) -> Path:
    """Download the attachment into the user's upload folder, refusing oversize files unread."""
    limit = settings.import_max_bytes
    if attachment.size > limit:
        raise UserError(f"That file is {attachment.size / 1e6:.1f} MB; the import limit is {limit / 1e6:.0f} MB.")
    data = await attachment.fetch()
    if len(data) > limit:
        raise UserError(f"That file is {len(data) / 1e6:.1f} MB; the import limit is {limit / 1e6:.0f} MB.")
    folder = user_upload_dir(settings, user.id)
    path = folder / f"{uuid.uuid4().hex}.upload"

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    await asyncio.to_thread(write)
    return path


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
    from chat_exports import ImportFailed, NeedParticipant, import_export

    attachment = inv.args.get("file") or next(iter(inv.event.attachments), None)
    as_participant = inv.args.get("as")
    key = (inv.event.platform, inv.event.user_id)
    if attachment is not None:
        path = await save_upload(ctx.settings, user, attachment)
    elif key in ctx.pending_imports and as_participant:
        path = ctx.pending_imports[key]
    else:
        raise UserError("Attach your export file to /import (Telegram result.json, Discord package zip, "
                        "DiscordChatExporter JSON or JSONL).")
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
        ctx.pending_imports[key] = path
        await message.edit(Reply(str(exc), kind="info"))
        return
    except ImportFailed as exc:
        ctx.pending_imports.pop(key, None)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await message.edit(Reply(str(exc), kind="error"))
        return
    except MessageQuotaFull as exc:
        ctx.pending_imports.pop(key, None)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await message.edit(Reply(quota_reached(exc), kind="error"))
        return
    ctx.pending_imports.pop(key, None)
    await asyncio.to_thread(path.unlink, missing_ok=True)
    await message.edit(Reply(report.summary(), kind="info"))


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
