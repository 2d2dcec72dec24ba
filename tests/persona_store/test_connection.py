"""The connection on real SQLite files: migrations in order, a newer database refused, a lock waited out."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from persona_store import DatabaseTooNew, Store, open_store
from persona_store.connection import Database
from persona_store.migrations import all_migrations
from tests.persona_store.rows import message


def schema_of(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))


async def test_migrates_from_empty_to_latest(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        assert await store.db.schema_version() == all_migrations()[-1].version
        journal = await store.db.fetchone("PRAGMA journal_mode")
        assert journal[0] == "wal"
        fk = await store.db.fetchone("PRAGMA foreign_keys")
        assert fk[0] == 1


@pytest.mark.parametrize("start", [m.version for m in all_migrations()[:-1]])
async def test_migrates_from_each_earlier_version_to_the_same_schema(tmp_path: Path, start: int) -> None:
    fresh = tmp_path / "fresh.sqlite3"
    async with open_store(fresh):
        pass
    old = tmp_path / "old.sqlite3"
    conn = await aiosqlite.connect(old, isolation_level=None)
    db = Database(conn, old)
    await db.migrate(target=start)
    # Data written at the old version survives the upgrade.
    await db.execute(
        "INSERT INTO users (platform, platform_user_id, display_name, created_at) VALUES ('console', 'u', 'U', 0)"
    )
    await db.execute(
        "INSERT INTO messages (owner_id, platform, chat_id, message_id, author, is_own, ts, text, source)"
        " VALUES (1, 'console', 'c', 'm1', 'U', 1, 0, 'kept across upgrades', 'live')"
    )
    assert await db.schema_version() == start
    await db.close()
    async with open_store(old) as store:
        assert await store.db.schema_version() == all_migrations()[-1].version
        found = await store.messages.similar(1, "upgrades", 5, include_dm=True)
        assert [m.text for m in found] == ["kept across upgrades"]
    assert schema_of(old) == schema_of(fresh)


async def test_refuses_a_database_from_a_newer_twinbot(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 999")
    with pytest.raises(DatabaseTooNew):
        await Store.open(path)


async def test_a_write_waits_out_another_process_holding_the_lock_past_the_busy_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer, niced and starved under load, can hold the write lock longer than SQLite's busy
    timeout; the bot's write must wait (reads going on meanwhile), not fail and drop a message."""
    import asyncio
    import threading

    from persona_store import connection

    monkeypatch.setattr(connection, "BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "db.sqlite3"
    async with open_store(path) as store:
        user = await store.users.get_or_create("console", "me", "Me")
        holding, release = threading.Event(), threading.Event()

        def other_process() -> None:
            with sqlite3.connect(path, isolation_level=None) as other:
                other.execute("BEGIN IMMEDIATE")
                holding.set()
                release.wait(10)
                other.execute("COMMIT")

        holder = threading.Thread(target=other_process)
        holder.start()
        await asyncio.to_thread(holding.wait, 10)
        write = asyncio.create_task(store.messages.add_many([message(user.id, 1, "kept despite the lock")]))
        await asyncio.sleep(0.6)  # twelve busy timeouts
        assert not write.done()
        assert await store.users.get(user.id) is not None  # reads are not stuck behind the wait
        release.set()
        await asyncio.wait_for(write, 10)
        await asyncio.to_thread(holder.join)
        assert [m.text for m in await store.messages.for_training(user.id)] == ["kept despite the lock"]
