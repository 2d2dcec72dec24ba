"""The offline trainer: `python -m persona.training --worker` serves the store's queue;
`python -m persona.training --user NAME` trains one user's twin now, with a progress bar.

A job heartbeats its progress to the store; a cancelled job stops at the next heartbeat; a worker
stopped with SIGTERM checkpoints and puts its job back in the queue; a worker killed outright
leaves a stale heartbeat, and the next worker resumes the job from its checkpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from persona.examples import build_examples
from persona.model import base_model_id
from persona.paths import adapter_path, checkpoint_dir
from persona.retrieval import with_recalled_lines
from persona.training.backends import TrainRun, backend_for
from persona.training.lora import Progress, TrainConfig, TrainingStopped
from persona_store import JobAlreadyActive, JobState, Store, TrainingJob, User
from twinbot.logs import setup_logging
from twinbot.settings import SECRET_FIELDS, Settings, SettingsError, load_settings, without_secrets

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 2.0
POLL_S = 1.0
MAX_ATTEMPTS = 3


def base_train_config(settings: Settings, seed: int) -> TrainConfig:
    """How /train trains a twin, from the settings (persona.evaluation.suite trains its twins the same way)."""
    return TrainConfig(rank=settings.lora_rank, max_steps=settings.train_max_steps, epochs=settings.train_epochs,
                       max_minutes=settings.train_max_minutes, checkpoint_every_s=settings.train_checkpoint_seconds,
                       seed=seed)


def train_config(settings: Settings, job: TrainingJob) -> TrainConfig:
    """The settings' config, with what the job itself asks for (rank, epochs, step and time budget) on top."""
    base = base_train_config(settings, job.id)
    return replace(
        base,
        rank=int(job.params.get("rank", base.rank)),
        max_steps=int(job.params.get("max_steps", base.max_steps)),
        epochs=float(job.params.get("epochs", base.epochs)),
        max_minutes=float(job.params.get("max_minutes", base.max_minutes)),
    )


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


async def run_job(settings: Settings, store: Store, job: TrainingJob, *, stop: threading.Event,
                  show: Callable[[Progress], None] | None = None) -> JobState:
    """Train one claimed job to the end (or to a stop), keeping the store informed. Returns the final state."""
    user = await store.users.get(job.user_id)
    if user is None:
        return JobState.CANCELLED
    if await cancel_without_consent(store, user, job):
        return JobState.CANCELLED
    examples = build_examples(await store.messages.for_training(user.id))
    if len(examples) < settings.min_train_messages:
        error = f"only {len(examples)} usable messages; at least {settings.min_train_messages} are needed"
        await store.jobs.finish(job.id, JobState.FAILED, error)
        return JobState.FAILED
    cfg = train_config(settings, job)
    examples = await with_recalled_lines(store, user.id, examples, cfg.recalled_lines, cfg.recalled_chars)
    loop = asyncio.get_running_loop()
    last_beat = 0.0

    def on_progress(p: Progress) -> bool:
        nonlocal last_beat
        if show is not None:
            show(p)
        if stop.is_set():
            return False
        if time.monotonic() - last_beat < HEARTBEAT_EVERY_S and p.step < p.total_steps:
            return True
        last_beat = time.monotonic()
        beat = store.jobs.heartbeat(job.id, progress=p.fraction, step=p.step, total_steps=p.total_steps,
                                    loss=p.loss, eta_s=p.eta_s)
        return asyncio.run_coroutine_threadsafe(beat, loop).result() is JobState.RUNNING

    checkpoints = checkpoint_dir(settings, user.id, job.id)
    target = adapter_path(settings, user.id, job.id)
    run = TrainRun(user.display_name, examples, cfg, checkpoints, target)
    try:
        metrics = await asyncio.to_thread(backend_for(settings), settings, run, on_progress)
    except TrainingStopped:
        current = await store.jobs.get(job.id)
        if current is not None and current.state is JobState.RUNNING:
            await store.jobs.release(job.id)  # shutting down: the next worker resumes from the checkpoint
            return JobState.QUEUED
        await asyncio.to_thread(shutil.rmtree, checkpoints, True)
        return current.state if current else JobState.CANCELLED
    except Exception as exc:
        log.exception("training job %s failed", job.id)
        await store.jobs.finish(job.id, JobState.FAILED, one_line(exc))
        await asyncio.to_thread(shutil.rmtree, checkpoints, True)  # a failed job is never resumed
        return JobState.FAILED
    return await publish(settings, store, user, job, target, metrics, len(examples))


async def cancel_without_consent(store: Store, user: User, job: TrainingJob) -> bool:
    """Cancel the job if its user no longer lets twinbot learn: no twin is trained or published after a
    withdrawal (GDPR Art. 7(3)), whichever way `learn` was withdrawn."""
    if (await store.consent.current(user.id)).learn:
        return False
    await store.jobs.finish(job.id, JobState.CANCELLED, "the user withdrew their consent to learn")
    return True


async def publish(settings: Settings, store: Store, user: User, job: TrainingJob, target: Path, metrics: dict,
                  n_examples: int) -> JobState:
    """Point the twin at the new adapter, unless the job was cancelled, the user withdrew `learn` or was
    forgotten meanwhile (then the adapter and checkpoints are deleted)."""
    current = await store.jobs.get(job.id)
    checkpoints = checkpoint_dir(settings, user.id, job.id)
    try:
        if current is None or current.state is not JobState.RUNNING:
            raise LookupError("job no longer running")
        if await cancel_without_consent(store, user, job):
            current = await store.jobs.get(job.id)
            raise LookupError("consent withdrawn")
        await store.adapters.record(user.id, str(target), job.id, base_model_id(settings), n_examples, metrics)
    except (LookupError, sqlite3.IntegrityError):
        await asyncio.to_thread(shutil.rmtree, target, True)
        await asyncio.to_thread(shutil.rmtree, checkpoints, True)
        return current.state if current else JobState.CANCELLED
    for old in target.parent.glob("job*"):
        if old != target:
            await asyncio.to_thread(shutil.rmtree, old, True)
    await asyncio.to_thread(shutil.rmtree, checkpoints, True)
    with contextlib.suppress(OSError):  # the user's checkpoint folder, once empty
        checkpoints.parent.rmdir()
    await store.jobs.finish(job.id, JobState.DONE)
    return JobState.DONE


async def run_worker(settings: Settings, stop: threading.Event, *, once: bool = False) -> None:
    """Claim and train jobs until stopped (or, with `once`, until the queue is empty)."""
    worker_id = f"{socket.gethostname()}-{os.getpid()}"
    async with Store.open_context(settings) as store:
        log.info("trainer %s waiting for jobs", worker_id)
        while not stop.is_set():
            await store.jobs.fail_stale(settings.heartbeat_timeout_s, MAX_ATTEMPTS)
            job = await store.jobs.claim_next(worker_id, settings.heartbeat_timeout_s)
            if job is None:
                if once:
                    return
                await asyncio.to_thread(stop.wait, POLL_S)
                continue
            log.info("training job %s (attempt %s)", job.id, job.attempts)
            state = await run_job(settings, store, job, stop=stop)
            log.info("job %s ended %s", job.id, state.value)


async def train_user(settings: Settings, name: str, platform: str, stop: threading.Event) -> int:
    """Queue (or take over) the user's job and train it in this process with a progress bar."""
    from tqdm import tqdm

    async with Store.open_context(settings) as store:
        user = await store.users.find(platform, name)
        if user is None:
            print(f"trainer: unknown user {name!r} on {platform}", file=sys.stderr)
            return 1
        try:
            job = await store.jobs.enqueue(user.id, {})
        except JobAlreadyActive as exc:
            job = await store.jobs.get(exc.job_id)
        claimed = await store.jobs.claim(job.id, f"cli-{os.getpid()}")
        if claimed is None:
            print(f"trainer: job #{job.id} is already running in another trainer", file=sys.stderr)
            return 1
        bar = tqdm(total=1, desc=f"training {user.display_name}'s twin", unit="step")

        def show(p: Progress) -> None:
            bar.total = p.total_steps
            bar.n = p.step
            bar.set_postfix(loss=f"{p.loss:.3f}" if p.loss is not None else "-", tok_s=f"{p.tokens_per_s:.0f}")
            bar.refresh()

        state = await run_job(settings, store, claimed, stop=stop, show=show)
        bar.close()
        final = await store.jobs.get(job.id)
        if state is JobState.DONE:
            print(f"done: {user.display_name}'s twin is trained")
            return 0
        print(f"trainer: job #{job.id} ended {state.value}: {final.error if final else ''}", file=sys.stderr)
        return 1


def without_credentials(settings: Settings) -> Settings:
    """Forget the platform credentials, in the settings and in this process's environment: training needs
    none, and what the trainer starts (a local Ray and its workers) inherits its environment."""
    for name in [name for name in os.environ if name.lower() in SECRET_FIELDS]:
        del os.environ[name]
    return without_secrets(settings)


def install_stop_handlers(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def train_user_now(settings: Settings, name: str, platform: str = "console") -> int:
    """`twinbot train --user NAME` and `python -m persona.training --user NAME`."""
    settings = without_credentials(settings)
    stop = threading.Event()
    install_stop_handlers(stop)
    return asyncio.run(train_user(settings, name, platform, stop))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m persona.training", description="twinbot's offline twin trainer")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--worker", action="store_true", help="serve the training queue")
    mode.add_argument("--user", help="train this user's twin now")
    parser.add_argument("--platform", default="console", help="the user's platform (with --user)")
    parser.add_argument("--once", action="store_true", help="with --worker: exit when the queue is empty")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    try:
        settings = without_credentials(load_settings())
    except SettingsError as exc:
        print(f"trainer: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    if not args.user:
        # A worker shares its machine with the bot: replies are what people wait for, so training
        # takes the CPU the inference thread leaves idle (alone, a job still runs at full speed).
        # Before torch starts its threads: on Linux each thread has its own niceness, inherited.
        os.nice(settings.trainer_nice)
    torch.set_num_threads(args.threads)
    if args.user:
        return train_user_now(settings, args.user, args.platform)
    stop = threading.Event()
    install_stop_handlers(stop)
    asyncio.run(run_worker(settings, stop, once=args.once))
    return 0
