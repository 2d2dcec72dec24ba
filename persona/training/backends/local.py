"""The `local` backend: train in the trainer process itself."""

from __future__ import annotations

from collections.abc import Callable

from persona.model import load_base_model
from persona.training.backends import TrainRun
from persona.training.lora import Progress, encode, train_adapter, write_adapter
from twinbot.settings import Settings


def train_here(settings: Settings, run: TrainRun, progress: Callable[[Progress], bool]) -> dict:
    """Train in this process, checkpointing so a killed trainer resumes."""
    base, tokenizer = load_base_model(settings, dtype=run.config.base_dtype)
    encoded = encode(tokenizer, run.owner_name, run.examples, run.config.max_tokens)
    model, result = train_adapter(base, tokenizer, encoded, run.config, progress=progress,
                                  checkpoint_dir=run.checkpoints)
    write_adapter(model, run.target)
    return result.metrics()
