"""TRAINER_BACKEND=ray: a real local Ray runs a real (tiny-model) training job, progress reaches the store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from persona.training.backends import TrainRun
from persona.training.lora import CHECKPOINT_FILE, Progress, TrainConfig
from persona.paths import adapter_path, checkpoint_dir
from persona.training.trainer import run_worker
from persona_store import JobState, Store
from twinbot.atomic import write_file_atomically
from tests.persona.training.test_trainer import seed_user
from twinbot.settings import Settings

ray = pytest.importorskip("ray", reason="the ray extra is part of the dev install (make test)")
from persona.training.backends.ray_cluster import (  # noqa: E402 - needs ray
    CheckpointFile, _relay, scratch_name,
)
from persona.training.scratch_removal import remove_until_gone, scratch_dir  # noqa: E402 - needs ray
from ray.util.queue import Queue  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():  # noqa: ANN201
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


async def test_a_job_trains_on_ray_and_its_adapter_lands_in_the_shared_dir(
        local_ray: None, settings: Settings, tiny_model_dir: Path, tmp_path: Path) -> None:
    s = settings.model_copy(update={
        "trainer_backend": "ray", "base_model": str(tiny_model_dir), "model_dtype": "float32",
        "train_max_steps": 12, "shared_adapter_dir": tmp_path / "shared", "telegram_token": "never-shipped",
    })
    async with Store.open_context(s) as store:
        user = await seed_user(store)
        job = await store.jobs.enqueue(user.id, {})
        await run_worker(s, threading.Event(), once=True)
        done = await store.jobs.get(job.id)
        assert done.state is JobState.DONE, done.error
        assert done.step == 12 and done.progress == pytest.approx(1.0)
        adapter = await store.adapters.get(user.id)
        path = Path(adapter.path)
        assert path.parent.parent == tmp_path / "shared"
        assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in path.iterdir()}
        assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no staging dir left


async def test_a_cancelled_job_stops_the_ray_task_and_leaves_nothing_on_the_node(
        local_ray: None, settings: Settings, tiny_model_dir: Path) -> None:
    s = settings.model_copy(update={"trainer_backend": "ray", "base_model": str(tiny_model_dir),
                                    "model_dtype": "float32", "train_max_steps": 100_000, "train_epochs": 1000,
                                    "train_checkpoint_seconds": 0.2})  # runs until cancelled
    async with Store.open_context(s) as store:
        user = await seed_user(store)
        job = await store.jobs.enqueue(user.id, {})
        run = TrainRun("Ana", [], TrainConfig(), checkpoint_dir(s, user.id, job.id), adapter_path(s, user.id, job.id))
        scratch = scratch_dir(scratch_name(run))
        worker = asyncio.create_task(run_worker(s, threading.Event(), once=True))
        for _ in range(3000):  # a busy machine is slow to start Ray workers: cancel once training runs
            current = await store.jobs.get(job.id)
            if current.step and current.step > 2 and (scratch / "checkpoints" / CHECKPOINT_FILE).exists():
                break
            await asyncio.sleep(0.1)
        await store.jobs.cancel_active(user.id)  # as /forget and /consent off do
        await asyncio.wait_for(worker, 180)
        assert (await store.jobs.get(job.id)).state is JobState.CANCELLED
        assert await store.adapters.get(user.id) is None
        assert not scratch.exists()  # the killed task's checkpoint is gone from the node


def test_local_ray_workers_of_the_trainer_get_no_platform_token(tmp_path: Path) -> None:
    code = (
        "import os\n"
        "from persona.training.trainer import without_credentials\n"
        "from twinbot.settings import load_settings\n"
        "without_credentials(load_settings())\n"
        "import ray\n"
        "ray.init(address='local', num_cpus=1, include_dashboard=False, log_to_driver=False)\n"
        "print(ray.get(ray.remote(lambda: os.environ.get('DISCORD_TOKEN', 'none')).remote()))\n"
    )
    env = {**os.environ, "DISCORD_TOKEN": "a-token-in-the-trainers-environment",
           "PYTHONPATH": str(Path(__file__).resolve().parents[4])}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "none"


async def test_a_stopped_worker_leaves_the_ray_jobs_checkpoint_and_the_next_one_resumes_from_it(
        local_ray: None, settings: Settings, tiny_model_dir: Path) -> None:
    s = settings.model_copy(update={"trainer_backend": "ray", "base_model": str(tiny_model_dir),
                                    "model_dtype": "float32", "train_max_steps": 400, "train_epochs": 100,
                                    "train_checkpoint_seconds": 0.2})
    async with Store.open_context(s) as store:
        user = await seed_user(store)
        job = await store.jobs.enqueue(user.id, {})
        checkpoint = checkpoint_dir(s, user.id, job.id) / CHECKPOINT_FILE
        stop = threading.Event()
        worker = asyncio.create_task(run_worker(s, stop, once=True))
        for _ in range(3000):  # a loaded machine can take minutes to start a Ray worker and load the model
            if checkpoint.exists() and (await store.jobs.get(job.id)).step >= 5:
                break
            await asyncio.sleep(0.1)
        assert checkpoint.exists(), "the Ray task never checkpointed: nothing to test the stop with"
        stop.set()  # as SIGTERM does
        await asyncio.wait_for(worker, 180)
        released = await store.jobs.get(job.id)
        assert released.state is JobState.QUEUED and released.step < released.total_steps
        assert torch.load(checkpoint, weights_only=False)["step"] > 0  # the task's, kept by the worker

        await run_worker(s, threading.Event(), once=True)
        done = await store.jobs.get(job.id)
        assert done.state is JobState.DONE, done.error
        record = await store.adapters.get(user.id)
        assert record.metrics["resumed_from_step"] > 0 and record.metrics["steps"] == done.total_steps
        assert not checkpoint.parent.exists()


def test_relaying_keeps_the_newest_checkpoint_and_returns_even_while_the_task_floods_the_queue(
        local_ray: None, tmp_path: Path) -> None:
    queue = Queue(actor_options={"num_cpus": 0})
    checkpoint = tmp_path / CHECKPOINT_FILE
    try:
        assert _relay(queue, checkpoint) is None and not checkpoint.exists()
        queue.put_nowait_batch([Progress(1, 9, 2.0, None, 1.0), CheckpointFile(b"old"),
                                Progress(2, 9, 1.5, None, 1.0), CheckpointFile(b"new"),
                                Progress(3, 9, 1.2, None, 1.0)])
        assert _relay(queue, checkpoint).step == 3
        assert checkpoint.read_bytes() == b"new"

        flooding = threading.Event()
        flooding.set()

        def flood() -> None:  # far faster than one item a round trip can be taken
            step = 3
            while flooding.is_set():
                queue.put_nowait_batch([Progress(step := step + 1, 10**9, 1.0, None, 1.0) for _ in range(200)])

        producer = threading.Thread(target=flood)
        producer.start()
        while queue.qsize() < 1000:
            time.sleep(0.01)
        relayed: list[Progress | None] = []
        relay = threading.Thread(target=lambda: relayed.append(_relay(queue, checkpoint)))
        relay.start()
        relay.join(timeout=30)
        flooding.clear()
        producer.join()
        assert not relay.is_alive(), "the relay kept taking items and never came back"
        assert relayed[0].step > 1000
    finally:
        ray.kill(queue.actor)


def test_a_scratch_dir_a_dying_task_writes_again_is_removed_until_it_stays_gone(tmp_path: Path) -> None:
    scratch = tmp_path / "twinbot-train-0"
    (scratch / "checkpoints").mkdir(parents=True)

    def last_checkpoint() -> None:  # the killed task, finishing its checkpoint after the first removal
        time.sleep(0.3)
        write_file_atomically(scratch / "checkpoints" / CHECKPOINT_FILE, lambda fh: fh.write(b"late"))

    writer = threading.Thread(target=last_checkpoint)
    writer.start()
    assert remove_until_gone(scratch, gone_for_s=0.8, limit_s=5)
    writer.join()
    assert not scratch.exists()


def test_a_scratch_dir_that_keeps_coming_back_is_reported(tmp_path: Path) -> None:
    scratch = tmp_path / "twinbot-train-1"
    stop = threading.Event()

    def still_writing() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):  # removed under its feet: write it again
                write_file_atomically(scratch / "checkpoints" / CHECKPOINT_FILE, lambda fh: fh.write(b"again"))
            time.sleep(0.02)

    writer = threading.Thread(target=still_writing)
    writer.start()
    try:
        assert not remove_until_gone(scratch, gone_for_s=0.5, limit_s=0.5)
    finally:
        stop.set()
        writer.join()
