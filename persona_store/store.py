"""The store: one object giving access to every table, opened with migrations applied."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from persona_store.adapters import Adapters
from persona_store.connection import Database
from persona_store.consent import ConsentLog
from persona_store.errors import ScrubIncomplete
from persona_store.avatars import Avatars
from persona_store.jobs import TrainingJobs
from persona_store.messages import Messages
from persona_store.models import AvatarRecord
from persona_store.users import Users


class Store:
    """All of twinbot's rows. Every query in the project goes through one of these attributes."""

    def __init__(self, db: Database, max_queued_jobs: int = 100, max_messages_per_user: int = 200_000) -> None:
        self.db = db
        self.users = Users(db)
        self.consent = ConsentLog(db)
        self.messages = Messages(db, max_messages_per_user)
        self.jobs = TrainingJobs(db, max_queued_jobs)
        self.adapters = Adapters(db)
        self.avatars = Avatars(db)
        self.scrub_pending = False
        """True from a deletion until a scrub has wiped its text from the files."""
        self._index_dirty = False

    @classmethod
    async def open(cls, path: Path, max_queued_jobs: int = 100, max_messages_per_user: int = 200_000) -> Store:
        return cls(await Database.open(path), max_queued_jobs, max_messages_per_user)

    async def close(self) -> None:
        await self.db.close()

    @classmethod
    def open_context(cls, settings) -> AbstractAsyncContextManager[Store]:  # noqa: ANN001 - twinbot Settings
        """`async with Store.open_context(settings) as store:` at the settings' database path."""
        return open_store(settings.db_path, settings.max_queued_jobs, settings.max_messages_per_user)

    async def export_user(self, user_id: int) -> dict[str, bytes]:
        """Every row about the user as JSON documents, keyed by their path in an export archive.

        The rows are read here; turning them into JSON runs in a worker thread, off the event loop.
        """
        user = await self.users.get(user_id)
        if user is None:
            return {}
        avatar = await self.avatars.get(user_id)
        adapter = await self.adapters.get(user_id)
        rows = {
            "profile.json": user,
            "consent_history.json": await self.consent.history(user_id),
            "messages.json": await self.messages.for_training(user_id),
            "training_jobs.json": await self.jobs.history(user_id),
            "adapter_record.json": adapter,
            "avatar_record.json": avatar,
        }
        return await asyncio.to_thread(_documents, rows)

    async def delete_user(self, user_id: int) -> dict[str, int]:
        """Delete every row of the user, then scrub the files so the deleted text cannot be recovered.

        Messages go a batch per transaction and the rest by ON DELETE CASCADE, so other writers
        only ever wait for one short transaction. ScrubIncomplete after the rows are gone means the
        scrub must be run again (`scrub_pending` stays set); it carries the counts.
        """
        counts = {}
        for table, column in (
            ("messages", "owner_id"),
            ("consent_events", "user_id"),
            ("training_jobs", "user_id"),
            ("adapters", "user_id"),
            ("avatars", "user_id"),
        ):
            row = await self.db.fetchone(f"SELECT count(*) FROM {table} WHERE {column} = ?", (user_id,))
            counts[table] = int(row[0])
        self.scrub_pending = True
        self._index_dirty = self._index_dirty or counts["messages"] > 0
        await self.messages.delete_for(user_id)
        counts["users"] = await self.users.delete(user_id)
        try:
            await self.scrub()
        except ScrubIncomplete:
            raise ScrubIncomplete(counts) from None
        return counts

    async def scrub(self) -> None:
        """Leave no deleted text behind in the index, the WAL or free pages.

        secure_delete zeroes freed pages and cells as rows go; merging the full-text index (only after
        messages were deleted) drops their words from it; the checkpoint then overwrites the file's
        old pages and empties the WAL. No VACUUM: it would rewrite the whole file under an exclusive
        lock. Raises ScrubIncomplete when the WAL stays busy.
        """
        self.scrub_pending = True
        if self._index_dirty:
            await self.messages.merge_index()
            self._index_dirty = False
        if not await self.db.checkpoint():
            raise ScrubIncomplete()
        self.scrub_pending = False


def _documents(rows: dict[str, object]) -> dict[str, bytes]:
    """The export's JSON files from the rows they describe (a list, one record, or None)."""

    def plain(record: object) -> object:
        if isinstance(record, list):
            return [plain(item) for item in record]
        if isinstance(record, AvatarRecord):
            return {**dataclasses.asdict(record), "latent": record.latent.hex()}
        return dataclasses.asdict(record) if record is not None else None

    return {
        f"data/{name}": json.dumps(plain(record), indent=2, ensure_ascii=False, default=str).encode()
        for name, record in rows.items()
    }


@asynccontextmanager
async def open_store(
    path: Path, max_queued_jobs: int = 100, max_messages_per_user: int = 200_000
) -> AsyncIterator[Store]:
    """`async with open_store(path) as store:` — opened, migrated, closed at the end."""
    store = await Store.open(path, max_queued_jobs, max_messages_per_user)
    try:
        yield store
    finally:
        await store.close()
