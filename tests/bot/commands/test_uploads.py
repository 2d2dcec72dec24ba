"""/import through the command layer on a real store: whose lines are imported."""

from __future__ import annotations

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


def chat(tmp_path: Path, name: str, lines: int = 6) -> Path:
    path = tmp_path / name
    path.write_text(jsonl([("Ana" if i % 2 else "Bo", f"{name} line {i}") for i in range(lines)]))
    return path


async def test_the_operator_console_imports_any_named_participant(settings: Settings, tmp_path: Path) -> None:
    async with command_layer(settings) as layer:
        await run(layer, "/consent learn", user="operator")
        out = await run(layer, "/import as:Bo", chat(tmp_path, "a.jsonl"), user="operator")
        assert "as Bo: 3 of yours, 3 from others" in out.last.text
