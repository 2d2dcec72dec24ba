"""The store against real SQLite files: migrations, dedupe, consent history, the job queue, scrubbing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from persona_store import (
    DatabaseTooNew,
    JobAlreadyActive,
    JobState,
    NewMessage,
    QueueFull,
    Scope,
    Store,
    open_store,
)
from persona_store.connection import Database
from persona_store.migrations import all_migrations


def message(owner_id: int, i: int, text: str | None = None, *, own: bool = True, chat: str = "c1", dm: bool = False):
    return NewMessage(
        owner_id=owner_id,
        platform="console",
        chat_id=chat,
        message_id=str(i),
        author="me" if own else "friend",
        is_own=own,
        ts=1000.0 + i,
        text=text or f"line number {i}",
        source="import",
        is_dm=dm,
    )


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


async def test_reimport_adds_nothing_and_counts_duplicates(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        user = await store.users.get_or_create("console", "me", "Me")
        batch = [message(user.id, i) for i in range(100)]
        first = await store.messages.add_many(batch)
        again = await store.messages.add_many(batch[50:] + [message(user.id, 100)])
        assert (first.added, first.duplicates) == (100, 0)
        assert (again.added, again.duplicates) == (1, 50)
        assert (await store.messages.counts(user.id))[0] == 101


async def test_same_chat_imported_by_two_users_belongs_to_each(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        ana = await store.users.get_or_create("console", "ana", "Ana")
        bo = await store.users.get_or_create("console", "bo", "Bo")
        await store.messages.add_many([message(ana.id, 1)])
        result = await store.messages.add_many([message(bo.id, 1, own=False)])
        assert result.added == 1
        await store.delete_user(ana.id)
        assert len(await store.messages.for_training(bo.id)) == 1


async def test_consent_history_and_current_state(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        user = await store.users.get_or_create("console", "me", "Me")
        assert (await store.consent.current(user.id)).learn is False
        await store.consent.set(user.id, Scope.LEARN, True)
        await store.consent.set(user.id, Scope.LEARN, True)  # no change, no new event
        await store.consent.set(user.id, Scope.SHARE, True)
        state = await store.consent.set(user.id, Scope.LEARN, False)
        assert (state.learn, state.share) == (False, True)
        history = await store.consent.history(user.id)
        assert [(e.scope, e.granted) for e in history] == [
            (Scope.LEARN, True),
            (Scope.SHARE, True),
            (Scope.LEARN, False),
        ]


async def test_similar_searches_only_the_owners_own_lines_and_respects_dm_scope(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        other = await store.users.get_or_create("console", "other", "Other")
        await store.messages.add_many(
            [
                message(me.id, 1, "I love sourdough bread"),
                message(me.id, 2, "sourdough secrets from my DM", dm=True, chat="dm"),
                message(me.id, 3, "friends talk about sourdough too", own=False),
                message(me.id, 4, "completely unrelated"),
                message(other.id, 5, "other user sourdough"),
            ]
        )
        in_group = await store.messages.similar(me.id, "Sourdough?!", 10, include_dm=False)
        in_dm = await store.messages.similar(me.id, "sourdough", 10, include_dm=True)
        assert [m.message_id for m in in_group] == ["1"]
        assert sorted(m.message_id for m in in_dm) == ["1", "2"]
        # User text is never FTS syntax.
        assert await store.messages.similar(me.id, 'NEAR( "" * OR AND', 5, include_dm=True) == []


async def test_one_active_job_per_user_and_a_bounded_queue(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3", max_queued_jobs=2) as store:
        users = [await store.users.get_or_create("console", str(i), f"U{i}") for i in range(3)]
        job = await store.jobs.enqueue(users[0].id, {"max_steps": 5})
        assert job.state is JobState.QUEUED and job.params == {"max_steps": 5}
        with pytest.raises(JobAlreadyActive):
            await store.jobs.enqueue(users[0].id)
        await store.jobs.enqueue(users[1].id)
        with pytest.raises(QueueFull):
            await store.jobs.enqueue(users[2].id)


async def test_job_lifecycle_heartbeat_cancel_and_stale_reclaim(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        job = await store.jobs.enqueue(me.id)
        claimed = await store.jobs.claim_next("w1", stale_after_s=60)
        assert claimed and claimed.id == job.id and claimed.state is JobState.RUNNING and claimed.attempts == 1
        assert await store.jobs.claim_next("w2", stale_after_s=60) is None
        state = await store.jobs.heartbeat(job.id, progress=0.5, step=5, total_steps=10, loss=2.0, eta_s=3.0)
        assert state is JobState.RUNNING
        # A worker that stops heartbeating loses the job to the next claimer.
        reclaimed = await store.jobs.claim_next("w2", stale_after_s=-1)
        assert reclaimed and reclaimed.worker_id == "w2" and reclaimed.attempts == 2 and reclaimed.step == 5
        assert await store.jobs.fail_stale(stale_after_s=-1, max_attempts=2) == 1
        failed = await store.jobs.get(job.id)
        assert failed.state is JobState.FAILED and "stopped responding" in failed.error

        second = await store.jobs.enqueue(me.id)
        await store.jobs.claim_next("w1", stale_after_s=60)
        assert await store.jobs.cancel_active(me.id) == 1
        assert await store.jobs.heartbeat(second.id, progress=0.1, step=1, total_steps=10, loss=None, eta_s=None) is (
            JobState.CANCELLED
        )
        third = await store.jobs.enqueue(me.id)
        await store.jobs.claim_next("w1", stale_after_s=60)
        await store.jobs.finish(third.id, JobState.DONE)
        done = await store.jobs.latest_for(me.id)
        assert done.state is JobState.DONE and done.progress == 1 and done.finished_at is not None


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
