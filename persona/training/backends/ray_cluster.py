"""The `ray` training backend (TRAINER_BACKEND=ray): each twin trains as a Ray task on a cluster.

The worker (`python -m persona.training --worker`, which the bot starts) still owns the queue: it
claims a job, reads the examples from the store, and hands them to a task on the cluster named by
RAY_ADDRESS (or a local Ray when unset). The task loads the base model on its node, trains with
the same code and settings as the local backend, streams progress back through a Ray queue (the
worker heartbeats it into the store, so /train's message moves as usual) and returns the adapter's
files, which land in the adapter dir (or SHARED_ADAPTER_DIR) with the same atomic rename.
Cancelling, /forget or a stopping worker cancel the task. The task sends each checkpoint back
through the same queue, and the worker keeps the latest in the job's checkpoint dir, as the local
backend does: a job whose worker stopped or was killed resumes on the cluster from that checkpoint
(losing at most TRAIN_CHECKPOINT_SECONDS of training) instead of starting again from step 0.
A task works in a scratch dir named after its job on its node; a cancelled task is killed before it
can clean up, so the worker then deletes that dir on every node.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.util.queue import Queue
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from persona.examples import Example
from persona.training.backends import TrainRun
from persona.training.lora import (
    CHECKPOINT_FILE,
    Progress,
    TrainConfig,
    TrainingStopped,
    encode,
    train_adapter,
    write_adapter,
)
from persona.training.scratch_removal import REMOVAL_LIMIT_S, remove_scratch, scratch_dir
from twinbot.atomic import write_dir_atomically, write_file_atomically
from twinbot.settings import Settings, without_secrets

log = logging.getLogger(__name__)

WAIT_S = 0.5
KILL_TIMEOUT_S = 30.0
"""How long a cancelled task may take to die before its scratch dir is removed anyway."""
CLEAN_TIMEOUT_S = 2 * REMOVAL_LIMIT_S
"""How long the worker waits for every node's removal: a node may first start a Ray worker for it."""


def connect(settings: Settings) -> None:
    """Join the cluster at RAY_ADDRESS (a local one when unset), once per process."""
    if not ray.is_initialized():
        ray.init(address=settings.ray_address, ignore_reinit_error=True, log_to_driver=False)
        log.info("connected to Ray at %s", settings.ray_address or "a local instance")


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint file's bytes, sent from the task to the worker."""

    data: bytes


def scratch_name(run: TrainRun) -> str:
    """The name of the task's scratch dir (under the node's temp dir): one per job, never another bot's."""
    return "twinbot-train-" + hashlib.sha256(str(run.checkpoints.resolve()).encode()).hexdigest()[:16]


def remove_scratch_everywhere(name: str) -> None:
    """Delete a job's scratch dir (its checkpoint and adapter) on every node of the cluster."""
    removals = [remove_scratch.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                .remote(name) for node in ray.nodes() if node["Alive"]]
    done, waiting = ray.wait(removals, num_returns=len(removals), timeout=CLEAN_TIMEOUT_S)
    left = len(waiting) + sum(not _removed(ref) for ref in done)
    if left:
        log.warning("scratch dir %s may be left on %d of %d nodes", name, left, len(removals))


def _removed(removal: ray.ObjectRef) -> bool:
    try:
        return bool(ray.get(removal))
    except ray.exceptions.RayError:  # its node went away meanwhile
        return False


@ray.remote(max_retries=0)
def _train_task(settings: Settings, owner_name: str, examples: list[Example], config: TrainConfig,
                progress: Queue, resume: bytes | None, scratch: str) -> tuple[dict[str, bytes], dict]:
    """Runs on a cluster node: train (from `resume`, a checkpoint's bytes, if given), sending progress
    and checkpoints through `progress`; then return the adapter as {file name: bytes} and the metrics."""
    import torch

    from persona.model import load_base_model

    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    base, tokenizer = load_base_model(settings, dtype=config.base_dtype)

    def report(p: Progress) -> bool:
        progress.put(p)
        return True

    tmp = scratch_dir(scratch)
    shutil.rmtree(tmp, ignore_errors=True)  # an earlier attempt's, killed on this node
    try:
        checkpoints = tmp / "checkpoints"
        if resume is not None:
            write_file_atomically(checkpoints / CHECKPOINT_FILE, lambda fh: fh.write(resume))
        model, result = train_adapter(
            base, tokenizer, encode(tokenizer, owner_name, examples, config.max_tokens), config, progress=report,
            checkpoint_dir=checkpoints,
            on_checkpoint=lambda path: progress.put(CheckpointFile(path.read_bytes())))
        written = write_adapter(model, tmp / "adapter")
        files = {p.name: p.read_bytes() for p in written.iterdir() if p.is_file()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files, result.metrics()


def _relay(queue: Queue, checkpoint: Path) -> Progress | None:
    """What the task sent since the last call, taken in one batch: keeps the newest checkpoint,
    returns the newest progress (None when nothing came).

    One batch of what is there now, not item after item until the queue is empty: a task reporting
    faster than the worker takes items one round trip (and checkpoint write) at a time, as a small
    model on a loaded machine did, kept the worker in that loop for good, deaf to stop and cancel.
    """
    items = queue.get_nowait_batch(queue.qsize())
    kept = next((item for item in reversed(items) if isinstance(item, CheckpointFile)), None)
    if kept is not None:
        write_file_atomically(checkpoint, lambda fh: fh.write(kept.data))
    return next((item for item in reversed(items) if isinstance(item, Progress)), None)


def train_on_ray(settings: Settings, run: TrainRun, progress: Callable[[Progress], bool]) -> dict:
    """The Backend: train `run` on the cluster, relay its progress, land its adapter at run.target."""
    connect(settings)
    queue = Queue(actor_options={"num_cpus": 0})
    clean = without_secrets(settings)  # training needs no platform credentials: never shipped to the cluster
    checkpoint = run.checkpoints / CHECKPOINT_FILE
    resume = checkpoint.read_bytes() if checkpoint.exists() else None
    scratch = scratch_name(run)
    task = _train_task.options(num_cpus=settings.ray_task_cpus).remote(
        clean, run.owner_name, run.examples, run.config, queue, resume, scratch)
    # Until the task reports (it is waiting for a node, or loading the model), "step 0" keeps the
    # job's heartbeat alive and still lets a cancellation through.
    latest = Progress(0, 0, None, None, 0.0)
    try:
        while True:
            done, _ = ray.wait([task], timeout=WAIT_S)
            latest = _relay(queue, checkpoint) or latest
            if not progress(latest):
                ray.cancel(task, force=True)
                ray.wait([task], timeout=KILL_TIMEOUT_S)  # killed: it left its scratch dir behind
                remove_scratch_everywhere(scratch)
                raise TrainingStopped(f"stopped at step {latest.step} of {latest.total_steps}")
            if done:
                break
        files, metrics = ray.get(task)
    finally:
        ray.kill(queue.actor)

    def fill(staging: Path) -> None:
        for name, data in files.items():
            (staging / name).write_bytes(data)

    write_dir_atomically(run.target, fill)
    return metrics
