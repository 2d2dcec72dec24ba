"""/import through the command layer on a real store: what a user sees when an import hits a limit."""

from __future__ import annotations

import json
from pathlib import Path

from bot.commands import CommandLayer, open_services
from bot.console_adapter import local_attachment
from tests.bot.commands.recording import RecordingOutbox, event
from twinbot.settings import Settings


async def say(layer: CommandLayer, text: str, **kw) -> RecordingOutbox:  # noqa: ANN003
    out = RecordingOutbox()
    ev = event(text, **kw)
    inv = layer.parse_text_command(ev)
    await (layer.on_message(ev, out) if inv is None else layer.dispatch(inv, out))
    return out


async def test_an_import_past_the_message_quota_stops_with_a_clear_line_and_keeps_what_was_there(
        settings: Settings, tmp_path: Path) -> None:
    s = settings.model_copy(update={"max_messages_per_user": 40})
    export = tmp_path / "chat.jsonl"
    export.write_text("".join(
        json.dumps({"speaker": "ana", "text": f"imported line {i}"}) + "\n"
        + json.dumps({"speaker": "bo", "text": f"bo answers {i}"}) + "\n"
        for i in range(30)))
    async with open_services(s, with_model=False, with_avatars=False) as services:
        layer = CommandLayer(s, services)
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
        assert not list((s.data_dir / "uploads").rglob("*.upload"))
        status = await say(layer, "/status")
        assert "the most I keep for one user (40)" in status.last.text
        await layer.close()
