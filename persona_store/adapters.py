"""Which adapter file serves each user's twin, and what trained it."""

from __future__ import annotations

import json

import aiosqlite

from persona_store.connection import Database, now
from persona_store.models import AdapterRecord


def _adapter(row: aiosqlite.Row) -> AdapterRecord:
    return AdapterRecord(
        user_id=row["user_id"],
        path=row["path"],
        job_id=row["job_id"],
        base_model=row["base_model"],
        n_examples=row["n_examples"],
        created_at=row["created_at"],
        metrics=json.loads(row["metrics"]),
    )


class Adapters:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self, user_id: int, path: str, job_id: int | None, base_model: str, n_examples: int, metrics: dict
    ) -> AdapterRecord:
        """Point the user's twin at a newly written adapter (replacing any earlier record)."""
        await self._db.execute(
            "INSERT OR REPLACE INTO adapters (user_id, path, job_id, base_model, n_examples, created_at, metrics)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (user_id, path, job_id, base_model, n_examples, now(), json.dumps(metrics)),
        )
        record = await self.get(user_id)
        assert record is not None
        return record

    async def get(self, user_id: int) -> AdapterRecord | None:
        row = await self._db.fetchone("SELECT * FROM adapters WHERE user_id = ?", (user_id,))
        return _adapter(row) if row else None

    async def delete(self, user_id: int) -> int:
        return await self._db.execute("DELETE FROM adapters WHERE user_id = ?", (user_id,))
