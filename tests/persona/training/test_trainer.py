"""The trainer as a real process against a real store: SIGKILL mid-job, restart, the job resumes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from persona.training.lora import CHECKPOINT_FILE
from persona.paths import adapter_path, checkpoint_dir
from persona.training.trainer import run_job, run_worker
from persona_store import JobState, NewMessage, Scope, Store
from twinbot.settings import Settings, settings_env

REPO = Path(__file__).resolve().parents[3]


async def seed_user(store: Store, n: int = 200):  # noqa: ANN201 - a User
    user = await store.users.get_or_create("console", "ana", "Ana")
    await store.consent.set(user.id, Scope.LEARN, True)
    await store.messages.add_many([
        NewMessage(user.id, "console", "c", str(i), "Ana", True, float(i), f"line {i} of ana's very own chat", "import")
        for i in range(n)
    ])
    return user


def start_worker(settings: Settings) -> subprocess.Popen:
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "persona.training", "--worker", "--threads", "1"], env=env,
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


async def wait_for(predicate, timeout: float = 120.0, every: float = 0.2):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(every)
    raise AssertionError("timed out waiting")


@pytest.fixture
def trainer_settings(settings: Settings, tiny_model_dir: Path) -> Settings:
    return settings.model_copy(update={
        "base_model": str(tiny_model_dir), "model_dtype": "float32", "train_max_steps": 400,
        "train_epochs": 100,  # 400 steps on 200 lines: the job must still be running when the test acts
        "train_checkpoint_seconds": 0.2, "heartbeat_timeout_s": 1.5, "min_train_messages": 50,
    })


async def test_killed_worker_resumes_the_job_from_its_checkpoint(trainer_settings: Settings) -> None:
    async with Store.open_context(trainer_settings) as store:
        user = await seed_user(store)
        job = await store.jobs.enqueue(user.id)
        first = start_worker(trainer_settings)
        try:
            checkpoint = trainer_settings.data_dir / "checkpoints" / str(user.id) / f"job{job.id}" / "state.pt"

            async def mid_job() -> bool:
                current = await store.jobs.get(job.id)
                return checkpoint.exists() and current.step >= 8

            await wait_for(mid_job)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        killed = await store.jobs.get(job.id)
        assert killed.state is JobState.RUNNING and killed.step < killed.total_steps
        assert await store.adapters.get(user.id) is None

        second = start_worker(trainer_settings)
        try:
            async def finished():  # noqa: ANN202
                current = await store.jobs.get(job.id)
                return current if current.state in (JobState.DONE, JobState.FAILED) else None

            done = await wait_for(finished)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        assert done.state is JobState.DONE, done.error
        assert done.attempts == 2
        record = await store.adapters.get(user.id)
        assert record.metrics["resumed_from_step"] > 0 and record.metrics["steps"] == done.total_steps
        adapter = Path(record.path)
        assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in adapter.iterdir()}
        leftovers = [p for p in adapter.parent.iterdir() if p != adapter]
        assert leftovers == [] and not (trainer_settings.data_dir / "checkpoints" / str(user.id)).exists()


async def test_sigterm_puts_the_job_back_in_the_queue(trainer_settings: Settings) -> None:
    settings = trainer_settings
    async with Store.open_context(settings) as store:
        user = await seed_user(store)
        job = await store.jobs.enqueue(user.id)
        worker = start_worker(settings)

        async def running() -> bool:
            return (await store.jobs.get(job.id)).step > 3

        await wait_for(running)
        # The worker yields the CPU to the bot's replies.
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == os.getpriority(os.PRIO_PROCESS, 0) + settings.trainer_nice
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, worker.stderr.read()
        released = await store.jobs.get(job.id)
        assert released.state is JobState.QUEUED and released.step > 3


async def test_too_little_data_fails_visibly(trainer_settings: Settings) -> None:
    async with Store.open_context(trainer_settings) as store:
        user = await seed_user(store, n=10)
        job = await store.jobs.enqueue(user.id)
        worker = subprocess.run(
            [sys.executable, "-m", "persona.training", "--worker", "--once"],
            env={**os.environ, **settings_env(trainer_settings), "PYTHONPATH": str(REPO)}, cwd=REPO,
            capture_output=True, text=True, timeout=120,
        )
        assert worker.returncode == 0, worker.stderr
        failed = await store.jobs.get(job.id)
        assert failed.state is JobState.FAILED and "only 10 usable messages" in failed.error


async def test_a_damaged_checkpoint_starts_the_job_over(trainer_settings: Settings) -> None:
    settings = trainer_settings.model_copy(update={"train_max_steps": 20})
    async with Store.open_context(settings) as store:
        user = await seed_user(store)
        job = await store.jobs.enqueue(user.id)
        checkpoints = checkpoint_dir(settings, user.id, job.id)
        checkpoints.mkdir(parents=True)
        (checkpoints / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")  # a damaged disk, say
        await run_worker(settings, threading.Event(), once=True)
        done = await store.jobs.get(job.id)
        assert done.state is JobState.DONE, done.error
        record = await store.adapters.get(user.id)
        assert record.metrics["resumed_from_step"] == 0 and record.metrics["steps"] == 20
        assert not checkpoints.exists()


async def test_a_failed_job_says_why_and_leaves_no_checkpoint(trainer_settings: Settings, tmp_path: Path) -> None:
    async with Store.open_context(trainer_settings) as store:
        user = await seed_user(store)
        job = await store.jobs.enqueue(user.id)
        checkpoints = checkpoint_dir(trainer_settings, user.id, job.id)
        checkpoints.mkdir(parents=True)
        (checkpoints / CHECKPOINT_FILE).write_bytes(b"from an earlier attempt")
        (tmp_path / "no-model").mkdir()
        broken = trainer_settings.model_copy(update={"base_model": str(tmp_path / "no-model")})
        await run_worker(broken, threading.Event(), once=True)
        failed = await store.jobs.get(job.id)
        assert failed.state is JobState.FAILED and "without a model in it" in failed.error
        assert not checkpoints.exists() and await store.adapters.get(user.id) is None


@pytest.mark.parametrize("when", ["while training", "while queued"])
async def test_no_twin_is_published_after_learn_is_withdrawn(trainer_settings: Settings, when: str) -> None:
    settings = trainer_settings.model_copy(update={"train_max_steps": 8})
    async with Store.open_context(settings) as store:
        user = await seed_user(store)
        job = await store.jobs.claim((await store.jobs.enqueue(user.id)).id, "test")
        loop = asyncio.get_running_loop()

        def withdraw() -> None:  # straight in the store: no /consent command cancels the job for the trainer
            asyncio.run_coroutine_threadsafe(store.consent.set(user.id, Scope.LEARN, False), loop).result()

        if when == "while queued":
            await store.consent.set(user.id, Scope.LEARN, False)
        state = await run_job(settings, store, job, stop=threading.Event(),
                              show=lambda p: withdraw() if p.step == 3 and when == "while training" else None)
        assert state is JobState.CANCELLED
        ended = await store.jobs.get(job.id)
        assert ended.state is JobState.CANCELLED and "consent" in ended.error
        assert await store.adapters.get(user.id) is None
        assert not adapter_path(settings, user.id, job.id).exists()
        assert not checkpoint_dir(settings, user.id, job.id).exists()
