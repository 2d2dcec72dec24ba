"""/import through the command layer on a real store: whose lines, consent mid-import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.commands import CommandLayer, open_services
from bot.console_adapter import local_attachment
from tests.bot.commands.recording import RecordingOutbox, event
from tests.chat_exports.exports import jsonl
from twinbot.settings import Settings


@asynccontextmanager
async def command_layer(settings: Settings, **update: object) -> AsyncIterator[CommandLayer]:
    s = settings.model_copy(update=update)
    async with open_services(s, with_model=False, with_avatars=False) as services:
        layer = CommandLayer(s, services)
        yield layer
        await layer.close()


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


async def test_withdrawing_consent_stops_a_running_import(settings: Settings, tmp_path: Path) -> None:
    export = chat(tmp_path, "long.jsonl", lines=40_000)
    async with command_layer(settings) as layer:
        store = layer.ctx.store
        await run(layer, "/consent learn")
        user = await store.users.lookup("console", "u1")
        importing = asyncio.create_task(run(layer, "/import as:Ana", export))
        async with asyncio.timeout(60):
            while await store.messages.counts(user.id) == (0, 0):
                await asyncio.sleep(0.005)
        await run(layer, "/consent unlearn")
        at_withdrawal = await store.messages.counts(user.id)
        out = await importing
        assert "Import stopped: you withdrew your `learn` consent" in out.last.text
        assert await store.messages.counts(user.id) == at_withdrawal
        assert sum(at_withdrawal) < 40_000
        assert uploads_on_disk(layer.settings) == []
