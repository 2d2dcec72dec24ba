"""What the bot needs of training: queue a job, describe its progress, run the local trainer process,
and hand over or delete a user's training files.

This module never imports torch (tests/persona/training/test_jobs.py checks): the bot's command
layer uses it on every /train and /status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from persona.examples import build_examples
from persona.paths import user_training_dirs
from persona_store import JobState, Store, TrainingJob, User
from twinbot.logs import STDERR_FD
from twinbot.settings import Settings, settings_env

log = logging.getLogger(__name__)

RESTART_DELAY_S = 5.0
STOP_TIMEOUT_S = 30.0


class NotEnoughData(Exception):
    def __init__(self, usable: int, needed: int) -> None:
        super().__init__(
            f"I need at least {needed} of your messages to train your twin; I have {usable} usable ones. "
            "Chat a bit more (with `learn` on) or /import an export of your chats."
        )
        self.usable = usable
        self.needed = needed


async def usable_example_count(store: Store, user_id: int) -> int:
    return len(build_examples(await store.messages.for_training(user_id)))


async def queue_training(settings: Settings, store: Store, user: User) -> TrainingJob:
    """Queue a job if the user has enough usable messages (raises NotEnoughData, JobAlreadyActive, QueueFull)."""
    usable = await usable_example_count(store, user.id)
    if usable < settings.min_train_messages:
        raise NotEnoughData(usable, settings.min_train_messages)
    return await store.jobs.enqueue(user.id, {"examples": usable})


def _minutes(seconds: float) -> str:
    return f"about {max(1, round(seconds / 60))} min" if seconds >= 60 else f"about {max(1, round(seconds))} s"


def describe_progress(job: TrainingJob) -> str:
    """One line for the progress message: state, percent, loss, time left."""
    if job.state is JobState.QUEUED:
        resumed = f" (resuming at step {job.step})" if job.step else ""
        return f"Your twin's training is queued{resumed} (job #{job.id})."
    if job.state is JobState.RUNNING:
        parts = [f"Training your twin: {job.progress:.0%}"]
        if job.loss is not None:
            parts.append(f"loss {job.loss:.2f}")
        if job.eta_s is not None and job.step:
            parts.append(f"{_minutes(job.eta_s)} left")
        return " · ".join(parts)
    if job.state is JobState.DONE:
        return "Your twin is trained and already answering with what it learned."
    if job.state is JobState.CANCELLED:
        return "Training was cancelled."
    return f"Training failed: {job.error or 'unknown reason'}."


class LocalTrainerProcess:
    """`python -m persona.training --worker` as a child of the bot, restarted if it dies."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._process: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        await self._spawn()
        self._watch = asyncio.create_task(self._keep_alive(), name="trainer-watch")

    async def _spawn(self) -> None:
        env = {**os.environ, **settings_env(self.settings)}
        # Its output is log lines, never the conversation: both streams join the bot's stderr
        # (the log file when the bot is the console twin).
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "persona.training", "--worker", env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=STDERR_FD,
        )
        log.info("trainer process started (pid %s)", self._process.pid)

    async def _keep_alive(self) -> None:
        while not self._stopping:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            log.warning("trainer process exited with %s; restarting in %.0f s", code, RESTART_DELAY_S)
            await asyncio.sleep(RESTART_DELAY_S)
            await self._spawn()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def stop(self) -> None:
        """SIGTERM: the trainer checkpoints and puts its job back in the queue; SIGKILL if it hangs."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()


async def export_user_data(settings: Settings, store: Store, user_id: int) -> dict[str, bytes]:
    """The user's current adapter files (peft format), under adapter/ in the export."""
    record = await store.adapters.get(user_id)
    if record is None or not Path(record.path).is_dir():
        return {}
    folder = Path(record.path)

    def read() -> dict[str, bytes]:
        return {f"adapter/{p.relative_to(folder)}": p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    files = await asyncio.to_thread(read)
    files["adapter/adapter.json"] = json.dumps(
        {"base_model": record.base_model, "examples": record.n_examples, "metrics": record.metrics,
         "created_at": record.created_at}, indent=2).encode()
    return files


async def delete_user_data(settings: Settings, store: Store, user_id: int) -> int:
    """Remove the user's adapters, checkpoints and temp dirs, and the adapter row; returns files removed."""

    def remove() -> int:
        count = 0
        for folder in user_training_dirs(settings, user_id):
            if folder.exists():
                count += sum(1 for p in folder.rglob("*") if p.is_file())
                shutil.rmtree(folder)
        return count

    removed = await asyncio.to_thread(remove)
    await store.adapters.delete(user_id)
    return removed
