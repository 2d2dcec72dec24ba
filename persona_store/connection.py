"""One aiosqlite connection with the pragmas twinbot relies on, and serialized write transactions."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from persona_store.errors import DatabaseTooNew
from persona_store.migrations import Migration, all_migrations

# WAL lets the trainer process read and write while the bot does; secure_delete zeroes freed pages
# so text removed by /forget does not linger in the file.
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
    "PRAGMA synchronous = NORMAL",
)
BUSY_TIMEOUT_MS = 1000
"""How long SQLite itself waits for another process's lock. Its wait blocks the connection's one
thread (every read of the bot queues behind it), so it is short and `write` waits on from there."""
WRITE_WAIT_S = 120.0
"""How long a write waits for the other process (the trainer) before it fails."""
CHECKPOINT_WAIT_S = 10.0
"""How long emptying the write-ahead log after a deletion keeps retrying before it reports failure."""


def now() -> float:
    """Wall-clock timestamp stored in every *_at column (seconds since the epoch)."""
    return time.time()


class Database:
    """The connection, plus a lock so that coroutines sharing it never interleave a transaction."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating parent dirs), apply pragmas and migrations."""
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in (*PRAGMAS, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"):
            await conn.execute(pragma)
        db = cls(conn, path)
        try:
            await db.migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        await self.conn.close()

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0])

    async def migrate(self, target: int | None = None) -> int:
        """Apply every migration above the file's user_version (up to `target`), each atomically."""
        migrations = all_migrations()
        latest = migrations[-1].version
        current = await self.schema_version()
        if current > latest:
            raise DatabaseTooNew(
                f"{self.path} has schema version {current}, newer than this twinbot knows ({latest}); upgrade twinbot"
            )
        for migration in migrations:
            if current < migration.version <= (target or latest):
                await self._apply(migration)
                current = migration.version
        return current

    async def _apply(self, migration: Migration) -> None:
        """Run one migration atomically, with foreign keys off as SQLite's table-rebuild recipe needs.

        With them on, dropping a table to rebuild it would cascade into every row that references it.
        The result is checked with foreign_key_check before the commit.
        """
        await self._run("PRAGMA foreign_keys = OFF")
        try:
            # executescript commits first, so the script and the version bump run in one explicit
            # transaction of our own: a crash mid-migration leaves the previous version intact.
            await self.conn.executescript(
                f"BEGIN IMMEDIATE;\n{migration.sql}\nPRAGMA user_version = {migration.version};"
            )
            broken = await self.fetchall("PRAGMA foreign_key_check")
            if broken:
                raise RuntimeError(f"migration v{migration.version:02d} breaks a foreign key: {tuple(broken[0])}")
            await self._run("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                await self._run("ROLLBACK")
            raise
        finally:
            await self._run("PRAGMA foreign_keys = ON")

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on error), one at a time."""
        async with self._write_lock:
            await self._begin()
            try:
                yield self.conn
            except BaseException:
                await self._run("ROLLBACK")
                raise
            await self._run("COMMIT")

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting out another process's write transaction up to WRITE_WAIT_S.

        Under load the trainer (a niced process) can hold the write lock longer than SQLite's busy
        timeout; failing then would drop a user's message, so the wait goes on here, off the
        connection's thread, and reads go through meanwhile.
        """
        deadline = time.monotonic() + WRITE_WAIT_S
        pause = 0.02
        while True:
            try:
                await self._run("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def _run(self, sql: str) -> None:
        async with self.conn.execute(sql):
            pass

    async def checkpoint(self) -> bool:
        """Copy the write-ahead log into the file and truncate it, retrying while others keep it busy.

        Between tries the write lock is free, so other writes go on. False when the log could not be
        emptied within CHECKPOINT_WAIT_S (a reader of another process held an old snapshot).
        """
        deadline = time.monotonic() + CHECKPOINT_WAIT_S
        pause = 0.05
        while True:
            async with self._write_lock:
                busy, _log, _done = await self.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self.conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in its own write transaction; returns the rows it changed."""
        async with self.write() as conn:
            async with conn.execute(sql, params) as cursor:
                return cursor.rowcount
