"""/export and /forget through the command layer on a real store and real files."""

from __future__ import annotations

import re

from bot.commands import CommandLayer, open_services
from tests.bot.commands.recording import RecordingOutbox, event
from twinbot.settings import Settings


async def say(layer: CommandLayer, text: str, **kw) -> RecordingOutbox:  # noqa: ANN003
    out = RecordingOutbox()
    ev = event(text, **kw)
    inv = layer.parse_text_command(ev)
    await (layer.on_message(ev, out) if inv is None else layer.dispatch(inv, out))
    return out


async def test_an_export_over_the_size_limit_is_refused_with_a_clear_line(settings: Settings) -> None:
    s = settings.model_copy(update={"export_max_bytes": 2048})
    async with open_services(s, with_model=False, with_avatars=False) as services:
        layer = CommandLayer(s, services)
        await say(layer, "/consent learn")
        for i in range(40):
            await say(layer, f"line {i}: " + "".join(chr(0x4E00 + (i * 131 + k * 7) % 2000) for k in range(60)))
        out = await say(layer, "/export")
        assert out.last.kind == "error" and not out.last.files
        assert re.fullmatch(
            r"Your export is 0\.00[3-9]\d* MB, more than the 0\.00205 MB I may send\. Ask the bot's operator to "
            r"raise EXPORT_MAX_BYTES, or /forget what you no longer want kept\.", out.last.text), out.last.text
        await layer.close()
