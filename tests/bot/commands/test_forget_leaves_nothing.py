"""After /forget nothing of the user is left anywhere under the data dir, while others keep everything.

The whole life of a user runs for real: consent, an import, live messages, a trained adapter (the
trainer's own code, in this process), their twin's face, a twin reply. Then every
byte of every file under the data dir (the SQLite file, its WAL, adapters, avatars) is searched.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from bot.commands import CommandLayer, open_services
from bot.console_adapter import local_attachment
from persona.training.trainer import run_worker
from tests.bot.commands.recording import RecordingOutbox, event
from twinbot.settings import Settings

MARK = "zanzibarquokka"
"""A word only the forgotten user ever wrote."""
OTHER_MARK = "kilimanjarowombat"
CONTEXT_MARK = "serengetipangolin"
"""A word only others' lines in the forgotten user's import hold (kept as context, indexed apart)."""


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def say(layer: CommandLayer, text: str, user: str, name: str, **kw) -> RecordingOutbox:  # noqa: ANN003
    out = RecordingOutbox()
    ev = event(text, user=user, name=name, **kw)
    invocation = layer.parse_text_command(ev)
    await (layer.on_message(ev, out) if invocation is None else layer.dispatch(invocation, out))
    while pending := [t for t in layer.ctx.tasks if not t.done()]:  # follow-ups: import progress, training
        await asyncio.wait(pending, timeout=5)
        if invocation is not None and invocation.command == "train":
            break  # its progress follower waits for the trainer; the test runs the trainer next
    return out


async def test_forget_leaves_no_trace_in_any_file(settings: Settings, tiny_model_dir: Path, tiny_face_weights: Path,
                                                  tmp_path: Path) -> None:
    s = settings.model_copy(update={
        "base_model": str(tiny_model_dir), "model_dtype": "float32", "avatar_weights": tiny_face_weights,
        "max_new_tokens": 4, "inference_threads": 1, "train_max_steps": 6, "train_checkpoint_seconds": 0.01,
        "min_train_messages": 50,
    })
    export = tmp_path / "chat.jsonl"
    export.write_text("".join(
        json.dumps({"speaker": "ana", "text": f"{MARK} {i} is a line of my private diary, page {i}"}) + "\n"
        + json.dumps({"speaker": "bo", "text": f"reply {i} from a friend, {CONTEXT_MARK}"}) + "\n"
        for i in range(60)))

    async with open_services(s, with_model=True, with_avatars=True, with_trainer=False) as services:
        layer = CommandLayer(s, services)
        store = layer.ctx.store
        await say(layer, "/consent learn", "bo", "Bo")
        await say(layer, f"{OTHER_MARK} is what bo says", "bo", "Bo")
        await say(layer, "/avatar me", "bo", "Bo")
        before_ana = set(files_under(s.data_dir))

        await say(layer, "/consent learn", "ana", "Ana")
        await say(layer, "/consent share", "ana", "Ana")
        imported = await say(layer, "/import as:ana", "ana", "Ana", attachments=(local_attachment(export),))
        assert "60 of yours" in imported.sent[0].latest.text
        await say(layer, f"{MARK} said live in the chat", "ana", "Ana", chat="live-chat")
        queued = await say(layer, "/train", "ana", "Ana")
        assert "queued" in queued.texts[0].lower() or "training" in queued.texts[0].lower()
        await run_worker(s, threading.Event(), once=True)
        ana = await store.users.lookup("console", "ana")
        assert await store.adapters.get(ana.id) is not None
        await say(layer, "/avatar me", "ana", "Ana")
        twin = await say(layer, f"/twin @Ana tell me about {MARK}", "bo", "Bo")
        assert twin.sent and twin.sent[-1].latest.speaker is not None
        ana_files = set(files_under(s.data_dir)) - before_ana
        assert any("adapter" in name for name in ana_files) and await store.avatars.get(ana.id) is not None
        assert all(any(mark.encode() in data for data in files_under(s.data_dir).values())
                   for mark in (MARK, CONTEXT_MARK))

        forgotten = await say(layer, "/forget confirm:yes", "ana", "Ana")
        assert "Forgotten" in forgotten.last.text

        for mark in (MARK, CONTEXT_MARK):
            leftovers = {name for name, data in files_under(s.data_dir).items() if mark.encode() in data}
            assert leftovers == set(), f"{mark} still in {leftovers}"
        assert set(files_under(s.data_dir)) - before_ana <= {"twinbot.sqlite3-wal", "twinbot.sqlite3-shm"}
        assert await store.users.lookup("console", "ana") is None

        bo = await store.users.lookup("console", "bo")
        assert [m.text for m in await store.messages.for_training(bo.id)] == [f"{OTHER_MARK} is what bo says"]
        assert await store.avatars.get(bo.id) is not None
        await layer.close()
    assert not any(MARK.encode() in data for data in files_under(s.data_dir).values())
    assert any(OTHER_MARK.encode() in data for data in files_under(s.data_dir).values())
