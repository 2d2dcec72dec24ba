"""SQLite persistence for twinbot: schema, migrations and every query. Nothing else writes SQL."""

from persona_store.errors import (
    DatabaseTooNew,
    JobAlreadyActive,
    MessageQuotaFull,
    QueueFull,
    ScrubIncomplete,
    StoreError,
)
from persona_store.models import (
    AddResult,
    AdapterRecord,
    AvatarRecord,
    Consent,
    ConsentEvent,
    JobState,
    NewMessage,
    Scope,
    StoredMessage,
    TrainingJob,
    User,
)
from persona_store.store import Store, open_store

__all__ = [
    "AddResult",
    "AdapterRecord",
    "AvatarRecord",
    "Consent",
    "ConsentEvent",
    "DatabaseTooNew",
    "JobAlreadyActive",
    "JobState",
    "MessageQuotaFull",
    "NewMessage",
    "QueueFull",
    "Scope",
    "ScrubIncomplete",
    "Store",
    "StoreError",
    "StoredMessage",
    "TrainingJob",
    "User",
    "open_store",
]
