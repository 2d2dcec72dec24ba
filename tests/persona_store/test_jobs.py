"""The job queue: one active job per user, a bounded queue, heartbeats, cancelling, stale jobs reclaimed."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_store import JobAlreadyActive, JobState, QueueFull, open_store


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
