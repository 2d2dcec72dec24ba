"""Plain records that cross the store's boundary. Rows go in and come out as these, never as tuples."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    """What a user agreed to. `learn`: keep my messages and train on them. `share`: others may talk to my twin."""

    LEARN = "learn"
    SHARE = "share"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_JOB_STATES = (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    platform: str
    platform_user_id: str
    display_name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Consent:
    learn: bool
    share: bool
    updated_at: float | None


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    scope: Scope
    granted: bool
    at: float


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message to keep for `owner_id`.

    `is_own` marks the owner's own words; other speakers' lines (from an import) are kept only as
    conversation context for the owner's twin and are deleted with the owner's data.
    """

    owner_id: int
    platform: str
    chat_id: str
    message_id: str
    author: str
    is_own: bool
    ts: float
    text: str
    source: str = "live"  # "live" | "import"
    reply_to: str | None = None
    is_dm: bool = False


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    owner_id: int
    platform: str
    chat_id: str
    message_id: str
    author: str
    is_own: bool
    ts: float
    text: str
    source: str
    reply_to: str | None
    is_dm: bool


@dataclass(frozen=True, slots=True)
class AddResult:
    added: int
    duplicates: int
    own_added: int = 0
    """Of `added`, how many are the owner's own lines (the rest is context)."""


@dataclass(frozen=True, slots=True)
class TrainingJob:
    id: int
    user_id: int
    state: JobState
    progress: float
    step: int
    total_steps: int
    loss: float | None
    eta_s: float | None
    error: str | None
    params: dict = field(default_factory=dict)
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    worker_id: str | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class AdapterRecord:
    user_id: int
    path: str
    job_id: int | None
    base_model: str
    n_examples: int
    created_at: float
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AvatarRecord:
    user_id: int
    style: str
    latent: bytes
    model_id: str
    created_at: float

