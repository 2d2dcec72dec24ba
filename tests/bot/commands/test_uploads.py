"""/import through the command layer on a real store: whose lines, consent mid-import, uploads on
disk, and what a user sees when an import hits a limit."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from pathlib import Path

from bot.commands import CommandLayer
from bot.console_adapter import local_attachment
from tests.bot.commands.recording import RecordingOutbox, command_layer, event, say
from tests.chat_exports.exports import jsonl
from twinbot.settings import Settings


async def run(layer: CommandLayer, text: str, upload: Path | None = None, **kw) -> RecordingOutbox:  # noqa: ANN003
    out = RecordingOutbox()
    attachments = (local_attachment(upload),) if upload else ()
    await layer.dispatch(layer.parse_text_command(event(text, attachments=attachments, **kw)), out)
    return out


def uploads_on_disk(settings: Settings) -> list[Path]:
    return sorted((settings.data_dir / "uploads").rglob("*.upload"))


def chat(tmp_path: Path, name: str, lines: int = 6) -> Path:
    path = tmp_path / name
    path.write_text(jsonl([("Ana" if i % 2 else "Bo", f"{name} line {i}") for i in range(lines)]))
    return path


async def test_the_operator_console_imports_any_named_participant(settings: Settings, tmp_path: Path) -> None:
    async with command_layer(settings) as layer:
        await run(layer, "/consent learn", user="operator")
        out = await run(layer, "/import as:Bo", chat(tmp_path, "a.jsonl"), user="operator")
        assert "as Bo: 3 of yours, 3 from others" in out.last.text


async def test_one_import_at_a_time_and_withdrawing_consent_stops_it(settings: Settings, tmp_path: Path) -> None:
    export = chat(tmp_path, "long.jsonl", lines=40_000)
    async with command_layer(settings) as layer:
        store = layer.ctx.store
        await run(layer, "/consent learn")
        user = await store.users.lookup("console", "u1")
        importing = asyncio.create_task(run(layer, "/import as:Ana", export))
        async with asyncio.timeout(60):
            while await store.messages.counts(user.id) == (0, 0):
                await asyncio.sleep(0.005)
        busy = await run(layer, "/import as:Ana", export)
        assert busy.last.text == "An import of yours is already running; wait for it to finish."
        await run(layer, "/consent unlearn")
        at_withdrawal = await store.messages.counts(user.id)
        out = await importing
        assert "Import stopped: you withdrew your `learn` consent" in out.last.text
        assert await store.messages.counts(user.id) == at_withdrawal
        assert sum(at_withdrawal) < 40_000
        assert uploads_on_disk(layer.settings) == []


async def test_a_new_upload_deletes_the_one_waiting_for_as(settings: Settings, tmp_path: Path) -> None:
    async with command_layer(settings) as layer:
        await run(layer, "/consent learn")
        first = await run(layer, "/import", chat(tmp_path, "first.jsonl"))
        assert "which participant you are" in first.last.text
        (waiting,) = uploads_on_disk(layer.settings)
        second = await run(layer, "/import", chat(tmp_path, "second.jsonl"))
        assert "which participant you are" in second.last.text
        assert uploads_on_disk(layer.settings) != [waiting] and len(uploads_on_disk(layer.settings)) == 1
        done = await run(layer, "/import as:Ana")
        assert "3 of yours" in done.last.text and uploads_on_disk(layer.settings) == []
        user = await layer.ctx.store.users.lookup("console", "u1")
        assert all("second" in m.text for m in await layer.ctx.store.messages.for_training(user.id))


async def test_an_upload_that_fails_to_parse_is_deleted(settings: Settings, tmp_path: Path) -> None:
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerows([["ID", "Timestamp", "Contents"], ["1", "2023-05-01 12:00:00", "x" * 200_000]])
    package = tmp_path / "package.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Messages/c1/channel.json", "{}")
        zf.writestr("Messages/c1/messages.csv", rows.getvalue())
    async with command_layer(settings) as layer:
        await run(layer, "/consent learn")
        out = await run(layer, "/import", package)
        assert out.last.kind == "error"
        assert "A CSV file in that export can't be read (field larger than field limit" in out.last.text
        assert uploads_on_disk(layer.settings) == []


async def test_uploads_are_limited_per_user(settings: Settings, tmp_path: Path) -> None:
    async with command_layer(settings, imports_per_hour=2) as layer:
        await run(layer, "/consent learn")
        for _ in range(2):
            assert "Imported" in (await run(layer, "/import as:Ana", chat(tmp_path, "a.jsonl"))).last.text
        refused = await run(layer, "/import as:Ana", chat(tmp_path, "a.jsonl"))
        assert "too many imports in a short time. Try again in" in refused.last.text
        assert uploads_on_disk(layer.settings) == []


async def test_uploads_waiting_on_disk_are_limited_in_total(settings: Settings, tmp_path: Path) -> None:
    waiting = chat(tmp_path, "bo.jsonl", lines=200)
    async with command_layer(settings, import_uploads_max_bytes=waiting.stat().st_size + 1024) as layer:
        await run(layer, "/consent learn", user="bo")
        await run(layer, "/import", waiting, user="bo")  # waits for as:
        await run(layer, "/consent learn")
        refused = await run(layer, "/import as:Ana", chat(tmp_path, "ana.jsonl", lines=200))
        assert "I'm holding too many uploads right now; try again in a few minutes." in refused.last.text
        assert len(uploads_on_disk(layer.settings)) == 1


async def test_an_import_past_the_message_quota_stops_with_a_clear_line_and_keeps_what_was_there(
        settings: Settings, tmp_path: Path) -> None:
    export = tmp_path / "chat.jsonl"
    export.write_text("".join(
        json.dumps({"speaker": "ana", "text": f"imported line {i}"}) + "\n"
        + json.dumps({"speaker": "bo", "text": f"bo answers {i}"}) + "\n"
        for i in range(30)))
    async with command_layer(settings, max_messages_per_user=40) as layer:
        await say(layer, "/consent learn")
        for i in range(5):
            await say(layer, f"said live before the import {i}")
        out = await say(layer, "/import as:ana", attachments=(local_attachment(export),))
        assert out.sent[0].latest.kind == "error"
        assert out.sent[0].latest.text == (
            "I stopped importing at the limit of 40 messages kept per user. "
            "The rest of this export was not stored; everything kept before is still there."
        )
        user = await layer.ctx.store.users.lookup("console", "u1")
        kept = await layer.ctx.store.messages.for_training(user.id)
        assert len(kept) == 40
        assert {f"said live before the import {i}" for i in range(5)} <= {m.text for m in kept}
        assert not uploads_on_disk(layer.settings)
        status = await say(layer, "/status")
        assert "the most I keep for one user (40)" in status.last.text
