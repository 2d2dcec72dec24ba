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
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from persona.examples import build_examples
from persona.paths import user_training_dirs
from persona_store import JobState, Store, TrainingJob, User
from twinbot.files import delete_tree
from twinbot.logs import STDERR_FD
from twinbot.settings import Settings, settings_env

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0
TRAINER_COMMAND = (sys.executable, "-m", "persona.training", "--worker")
INHERITED = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT"})
INHERITED_PREFIXES = ("LC_", "PYTHON", "HF_", "TRANSFORMERS_", "TORCH", "OMP_", "MKL_", "CUDA_", "RAY_")
"""What the trainer takes from the bot's environment besides the settings: what Python, torch, Hugging
Face and Ray read. Nothing else (platform tokens above all) reaches it or the Ray workers it starts."""


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


def trainer_env(settings: Settings, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The trainer process's whole environment: the settings without credentials, and INHERITED variables."""
    kept = {name: value for name, value in environ.items()
            if name in INHERITED or name.startswith(INHERITED_PREFIXES)}
    return {**kept, **settings_env(settings)}


class LocalTrainerProcess:
    """`python -m persona.training --worker` as a child of the bot, restarted if it dies.

    Each death in a row doubles the wait before the next start, up to `max_delay_s`, and is logged as
    an error; /status tells users while the trainer is down. A trainer that ran longer than
    `max_delay_s` before dying starts the count again.
    """

    def __init__(self, settings: Settings, *, command: Sequence[str] = TRAINER_COMMAND, first_delay_s: float = 5.0,
                 max_delay_s: float = 300.0) -> None:
        self.settings = settings
        self.command = tuple(command)
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.deaths = 0
        """How many times in a row the trainer died."""
        self.restart_at: float | None = None
        """When (time.time()) the dead trainer is started again; None while it runs."""
        self._process: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        await self._spawn()
        self._watch = asyncio.create_task(self._keep_alive(), name="trainer-watch")

    async def _spawn(self) -> None:
        # Its output is log lines, never the conversation: both streams join the bot's stderr
        # (the log file when the bot is the console twin).
        self._process = await asyncio.create_subprocess_exec(
            *self.command, env=trainer_env(self.settings), stdin=asyncio.subprocess.DEVNULL, stdout=STDERR_FD,
        )
        self.restart_at = None
        log.info("trainer process started (pid %s)", self._process.pid)

    async def _keep_alive(self) -> None:
        while not self._stopping:
            assert self._process is not None
            started = time.monotonic()
            code = await self._process.wait()
            if self._stopping:
                return
            if time.monotonic() - started > self.max_delay_s:
                self.deaths = 0
            delay = min(self.first_delay_s * 2**self.deaths, self.max_delay_s)
            self.deaths += 1
            self.restart_at = time.time() + delay
            log.error("trainer process exited with %s (%d time(s) in a row); no training until it restarts in %g s",
                      code, self.deaths, delay)
            await asyncio.sleep(delay)
            await self._spawn()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

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

    removed = sum([await delete_tree(folder) for folder in user_training_dirs(settings, user_id)])
    await store.adapters.delete(user_id)
    return removed
