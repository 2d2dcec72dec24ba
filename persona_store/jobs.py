"""The training queue: jobs move queued -> running -> done | failed | cancelled.

Workers (another process, or a Ray task) claim jobs and heartbeat; a running job whose heartbeat
stops is claimed again (its checkpoint lets it resume) or, past the attempt limit, failed.
"""

from __future__ import annotations

import json
import sqlite3

import aiosqlite

from persona_store.connection import Database, now
from persona_store.errors import JobAlreadyActive, QueueFull
from persona_store.models import ACTIVE_JOB_STATES, JobState, TrainingJob

_ACTIVE = tuple(state.value for state in ACTIVE_JOB_STATES)


def _job(row: aiosqlite.Row) -> TrainingJob:
    return TrainingJob(
        id=row["id"],
        user_id=row["user_id"],
        state=JobState(row["state"]),
        progress=row["progress"],
        step=row["step"],
        total_steps=row["total_steps"],
        loss=row["loss"],
        eta_s=row["eta_s"],
        error=row["error"],
        params=json.loads(row["params"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"],
        worker_id=row["worker_id"],
        attempts=row["attempts"],
    )


class TrainingJobs:
    def __init__(self, db: Database, max_queued: int = 100) -> None:
        self._db = db
        self.max_queued = max_queued

    async def enqueue(self, user_id: int, params: dict | None = None) -> TrainingJob:
        """Queue a job; at most one active job per user and `max_queued` active jobs overall."""
        active = await self.active_for(user_id)
        if active is not None:
            raise JobAlreadyActive(active.id)
        row = await self._db.fetchone("SELECT count(*) FROM training_jobs WHERE state IN (?, ?)", _ACTIVE)
        if row[0] >= self.max_queued:
            raise QueueFull(self.max_queued)
        try:
            async with self._db.write() as conn:
                async with conn.execute(
                    "INSERT INTO training_jobs (user_id, state, params, created_at) VALUES (?, 'queued', ?, ?)",
                    (user_id, json.dumps(params or {}), now()),
                ) as cursor:
                    job_id = cursor.lastrowid
        except sqlite3.IntegrityError:
            # Another process queued one between our check and insert: the unique index held.
            active = await self.active_for(user_id)
            raise JobAlreadyActive(active.id if active else -1) from None
        job = await self.get(job_id)
        assert job is not None
        return job

    async def get(self, job_id: int) -> TrainingJob | None:
        row = await self._db.fetchone("SELECT * FROM training_jobs WHERE id = ?", (job_id,))
        return _job(row) if row else None

    async def active_for(self, user_id: int) -> TrainingJob | None:
        row = await self._db.fetchone(
            "SELECT * FROM training_jobs WHERE user_id = ? AND state IN (?, ?)", (user_id, *_ACTIVE)
        )
        return _job(row) if row else None

    async def latest_for(self, user_id: int) -> TrainingJob | None:
        row = await self._db.fetchone(
            "SELECT * FROM training_jobs WHERE user_id = ? ORDER BY id DESC LIMIT 1", (user_id,)
        )
        return _job(row) if row else None

    async def history(self, user_id: int) -> list[TrainingJob]:
        rows = await self._db.fetchall("SELECT * FROM training_jobs WHERE user_id = ? ORDER BY id", (user_id,))
        return [_job(row) for row in rows]

    async def claim(self, job_id: int, worker_id: str) -> TrainingJob | None:
        """Take one specific queued job (a trainer run by hand for one user)."""
        t = now()
        changed = await self._db.execute(
            "UPDATE training_jobs SET state = 'running', worker_id = ?, attempts = attempts + 1,"
            " started_at = coalesce(started_at, ?), heartbeat_at = ? WHERE id = ? AND state = 'queued'",
            (worker_id, t, t, job_id),
        )
        return await self.get(job_id) if changed else None

    async def claim_next(self, worker_id: str, stale_after_s: float) -> TrainingJob | None:
        """Take the oldest queued job, or a running one whose worker stopped heartbeating."""
        t = now()
        async with self._db.write() as conn:
            async with conn.execute(
                "SELECT id FROM training_jobs WHERE state = 'queued'"
                " OR (state = 'running' AND coalesce(heartbeat_at, started_at, 0) < ?) ORDER BY id LIMIT 1",
                (t - stale_after_s,),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            await conn.execute(
                "UPDATE training_jobs SET state = 'running', worker_id = ?, attempts = attempts + 1,"
                " started_at = coalesce(started_at, ?), heartbeat_at = ? WHERE id = ?",
                (worker_id, t, t, row[0]),
            )
        return await self.get(row[0])

    async def heartbeat(
        self,
        job_id: int,
        *,
        progress: float,
        step: int,
        total_steps: int,
        loss: float | None,
        eta_s: float | None,
    ) -> JobState:
        """Record progress; returns the job's state so a worker notices a cancellation."""
        await self._db.execute(
            "UPDATE training_jobs SET progress = ?, step = ?, total_steps = ?, loss = ?, eta_s = ?, heartbeat_at = ?"
            " WHERE id = ? AND state = 'running'",
            (progress, step, total_steps, loss, eta_s, now(), job_id),
        )
        job = await self.get(job_id)
        return job.state if job else JobState.CANCELLED

    async def finish(self, job_id: int, state: JobState, error: str | None = None) -> None:
        """Close a job (done, failed with a reason, or cancelled)."""
        progress_sql = ", progress = 1" if state is JobState.DONE else ""
        await self._db.execute(
            f"UPDATE training_jobs SET state = ?, error = ?, finished_at = ?{progress_sql} WHERE id = ?",
            (state.value, error, now(), job_id),
        )

    async def release(self, job_id: int) -> None:
        """Put a running job back in the queue (its worker is shutting down cleanly; it resumes later)."""
        await self._db.execute(
            "UPDATE training_jobs SET state = 'queued', worker_id = NULL WHERE id = ? AND state = 'running'", (job_id,)
        )

    async def cancel_active(self, user_id: int) -> int:
        """Cancel the user's queued or running job; a running worker stops at its next heartbeat."""
        return await self._db.execute(
            "UPDATE training_jobs SET state = 'cancelled', finished_at = ?, error = 'cancelled by the user'"
            " WHERE user_id = ? AND state IN (?, ?)",
            (now(), user_id, *_ACTIVE),
        )

    async def fail_stale(self, stale_after_s: float, max_attempts: int) -> int:
        """Fail running jobs that stopped heartbeating and already used their attempts: never stuck 'running'."""
        return await self._db.execute(
            "UPDATE training_jobs SET state = 'failed', finished_at = ?,"
            " error = 'the trainer stopped responding ' || attempts || ' times; giving up'"
            " WHERE state = 'running' AND coalesce(heartbeat_at, started_at, 0) < ? AND attempts >= ?",
            (now(), now() - stale_after_s, max_attempts),
        )
