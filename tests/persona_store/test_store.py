"""The store as a whole against real SQLite files: deleting a user leaves no trace in any file."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from persona_store import Scope, open_store
from persona_store.connection import Database
from tests.persona_store.rows import message


async def test_delete_user_leaves_no_trace_in_any_file(tmp_path: Path) -> None:
    secret = "quixoticzebrafjord"
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        other = await store.users.get_or_create("console", "other", "Other")
        await store.consent.set(me.id, Scope.LEARN, True)
        await store.messages.add_many([message(me.id, i, f"{secret} {i} words") for i in range(3000)])
        await store.messages.add_many([message(other.id, 1, "the other user's keepsake")])
        await store.jobs.enqueue(me.id)
        await store.avatars.put(me.id, "lorelei", b"\x01" * 64, "bundled")
        counts = await store.delete_user(me.id)
        assert counts["messages"] == 3000 and counts["users"] == 1
        assert await store.users.get(me.id) is None
        assert await store.messages.similar(me.id, secret, 5, include_dm=True) == []
        assert [m.text for m in await store.messages.for_training(other.id)] == ["the other user's keepsake"]
    leftovers = {p.name: p.read_bytes().count(secret.encode()) for p in tmp_path.iterdir() if p.is_file()}
    assert leftovers and all(count == 0 for count in leftovers.values()), leftovers
    assert any(p.read_bytes().count(b"keepsake") for p in tmp_path.iterdir() if p.is_file())


async def test_a_deleted_rows_id_is_never_given_to_a_new_row(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        kept = await store.users.get_or_create("console", "kept", "Kept")
        gone = await store.users.get_or_create("console", "gone", "Gone")
        await store.messages.add_many([message(gone.id, 1)])
        (old_message,) = await store.messages.for_training(gone.id)
        await store.delete_user(gone.id)
        newcomer = await store.users.get_or_create("console", "new", "New")
        await store.messages.add_many([message(newcomer.id, 1)])
        (new_message,) = await store.messages.for_training(newcomer.id)
        assert newcomer.id > gone.id > kept.id
        assert new_message.id > old_message.id

async def test_the_autoincrement_migration_keeps_rows_keys_and_the_index(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    conn = await aiosqlite.connect(path, isolation_level=None)
    await conn.execute("PRAGMA foreign_keys = ON")
    db = Database(conn, path)
    await db.migrate(target=3)
    await db.execute("INSERT INTO users (platform, platform_user_id, display_name, created_at) VALUES ('c', 'a', 'A', 0)")
    await db.execute("INSERT INTO users (platform, platform_user_id, display_name, created_at) VALUES ('c', 'b', 'B', 0)")
    await db.execute("INSERT INTO consent_events (user_id, scope, granted, at) VALUES (2, 'learn', 1, 0)")
    await db.execute("INSERT INTO training_jobs (user_id, state, created_at) VALUES (2, 'done', 0)")
    await db.execute(
        "INSERT INTO messages (owner_id, platform, chat_id, message_id, author, is_own, ts, text, source)"
        " VALUES (2, 'c', 'chat', 'm1', 'B', 1, 0, 'words from before the upgrade', 'live')"
    )
    await db.close()
    async with open_store(path) as store:
        b = await store.users.lookup("c", "b")
        assert b.id == 2 and (await store.consent.current(b.id)).learn
        assert [m.text for m in await store.messages.similar(b.id, "upgrade", 5, include_dm=True)] == [
            "words from before the upgrade"
        ]
        assert await store.db.fetchall("PRAGMA foreign_key_check") == []
        counts = await store.delete_user(b.id)
        assert counts["messages"] == 1 and counts["consent_events"] == 1 and counts["training_jobs"] == 1
        assert tuple(await store.db.fetchone("SELECT count(*) FROM messages")) == (0,)
        newcomer = await store.users.get_or_create("c", "new", "New")
        assert newcomer.id == 3
