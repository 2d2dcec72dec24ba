"""Where a user's twin files live under the data dir: every such path is computed here, once.

The bot's job side, the trainer and /forget all go through these, so a file can't be written
somewhere that /forget does not know about.
"""

from __future__ import annotations

from pathlib import Path

from twinbot.settings import Settings


def user_adapter_dir(settings: Settings, user_id: int) -> Path:
    """The folder of a user's published adapters (one `job<N>` folder each)."""
    return settings.adapter_dir / str(user_id)


def adapter_path(settings: Settings, user_id: int, job_id: int) -> Path:
    """Where the adapter trained by job `job_id` is published."""
    return user_adapter_dir(settings, user_id) / f"job{job_id}"


def user_checkpoint_dir(settings: Settings, user_id: int) -> Path:
    """The folder of a user's resumable training checkpoints."""
    return settings.data_dir / "checkpoints" / str(user_id)


def checkpoint_dir(settings: Settings, user_id: int, job_id: int) -> Path:
    """Where job `job_id` keeps its checkpoint while it trains."""
    return user_checkpoint_dir(settings, user_id) / f"job{job_id}"


def user_upload_dir(settings: Settings, user_id: int) -> Path:
    """Where an uploaded export waits while /import asks which participant is the user."""
    return settings.data_dir / "uploads" / str(user_id)


def user_training_dirs(settings: Settings, user_id: int) -> list[Path]:
    """Every folder of training files a user owns (deleted by /forget)."""
    return [user_adapter_dir(settings, user_id), user_checkpoint_dir(settings, user_id)]
