"""/export and /forget through the command layer on a real store and real files."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.commands import CommandLayer
from persona_store import connection
from tests.bot.commands.recording import command_layer, say
from twinbot.settings import Settings

MARK = "zanzibarquokka"


def raw_files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


async def test_an_export_over_the_size_limit_is_refused_with_a_clear_line(settings: Settings) -> None:
    async with command_layer(settings, export_max_bytes=2048) as layer:
        await say(layer, "/consent learn")
        for i in range(40):
            await say(layer, f"line {i}: " + "".join(chr(0x4E00 + (i * 131 + k * 7) % 2000) for k in range(60)))
        out = await say(layer, "/export")
        assert out.last.kind == "error" and not out.last.files
        assert re.fullmatch(
            r"Your export is 0\.00[3-9]\d* MB, more than the 0\.00205 MB I may send\. Ask the bot's operator to "
            r"raise EXPORT_MAX_BYTES, or /forget what you no longer want kept\.", out.last.text), out.last.text


async def test_a_busy_database_makes_forget_say_so_and_a_retry_finishes_the_wipe(
        layer: CommandLayer, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process reading an old snapshot keeps the WAL from being emptied: /forget must not
    claim success, must still drop the user from memory, and a retry must finish the wipe."""
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(connection, "CHECKPOINT_WAIT_S", 0.3)
    store = layer.ctx.store
    await say(layer, "/consent learn")
    await say(layer, f"{MARK} is my secret")
    user = await store.users.lookup("console", "u1")
    layer.ctx.twin_messages[("console", "chat1", "out-1")] = user.id
    reading, release = threading.Event(), threading.Event()

    def other_process_reading() -> None:
        with sqlite3.connect(settings.db_path, isolation_level=None) as other:
            other.execute("BEGIN")
            other.execute("SELECT count(*) FROM messages").fetchone()
            reading.set()
            release.wait(10)
            other.execute("COMMIT")

    reader = threading.Thread(target=other_process_reading)
    reader.start()
    await asyncio.to_thread(reading.wait, 10)
    try:
        out = await say(layer, "/forget confirm:yes")
    finally:
        release.set()
        await asyncio.to_thread(reader.join)
    assert out.last.kind == "error" and "Forgotten" not in out.last.text
    assert out.last.text == (
        "Deleted 1 messages, 1 consent events. But the database was busy, so the deleted text may still sit in "
        "its files. Run /forget confirm:yes again in a minute to wipe it."
    )
    assert await store.users.lookup("console", "u1") is None
    assert layer.ctx.twin_messages == {}

    retry = await say(layer, "/forget confirm:yes")
    assert retry.last.text == "I keep nothing about you, and the last traces of deleted data are now wiped."
    assert MARK.encode() not in raw_files(settings.data_dir)
    again = await say(layer, "/forget confirm:yes")
    assert again.last.text == "I keep nothing about you; there is nothing to forget."


async def test_a_newcomer_never_gets_a_forgotten_users_id(layer: CommandLayer) -> None:
    store = layer.ctx.store
    await say(layer, "/consent learn", user="first")
    await say(layer, "/consent learn", user="gone")
    gone = await store.users.lookup("console", "gone")
    await say(layer, "/forget confirm:yes", user="gone")
    await say(layer, "/consent learn", user="newcomer")
    newcomer = await store.users.lookup("console", "newcomer")
    assert newcomer.id > gone.id
