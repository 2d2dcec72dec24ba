"""Trainer backends: where a claimed job's adapter is actually trained.

`local` trains in the trainer process; `ray` (TRAINER_BACKEND=ray) hands the run to a Ray cluster.
Both take the same TrainRun and report the same Progress, so the trainer does not care which runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from persona.examples import Example
from persona.training.lora import Progress, TrainConfig
from twinbot.settings import Settings


@dataclass(frozen=True)
class TrainRun:
    """One twin to train: what a backend needs, and where the adapter must land."""

    owner_name: str
    examples: list[Example]
    config: TrainConfig
    checkpoints: Path
    target: Path


class TrainerBackend(Protocol):
    """Trains a run to its target (blocking; called in a thread), reporting progress; returns the metrics.

    `progress` returning False means stop: the backend raises TrainingStopped.
    """

    def __call__(self, settings: Settings, run: TrainRun, progress: Callable[[Progress], bool]) -> dict: ...


def backend_for(settings: Settings) -> TrainerBackend:
    """The backend the settings name. Ray is an optional extra, so it is imported only when asked for."""
    if settings.trainer_backend == "ray":
        from persona.training.backends.ray_cluster import train_on_ray

        return train_on_ray
    from persona.training.backends.local import train_here

    return train_here
