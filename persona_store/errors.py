"""Errors the store raises for conditions callers are expected to handle."""

from __future__ import annotations

from persona_store.models import AddResult


class StoreError(Exception):
    """Base class; the message is fit to show a user."""


class JobAlreadyActive(StoreError):
    """The user already has a queued or running training job (one at a time)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"a training job (#{job_id}) is already queued or running")
        self.job_id = job_id


class QueueFull(StoreError):
    """The global training queue is at its bound; try later."""

    def __init__(self, bound: int) -> None:
        super().__init__(f"the training queue is full ({bound} jobs); try again later")
        self.bound = bound


class DatabaseTooNew(StoreError):
    """The file was written by a newer twinbot; refusing to touch it beats corrupting it."""


class MessageQuotaFull(StoreError):
    """The owner keeps as many messages as a user may; what fitted of the batch is stored, the rest refused."""

    def __init__(self, quota: int, stored: AddResult, refused: int) -> None:
        super().__init__(f"you already keep {quota:,} messages, the most a user may; {refused:,} more were not stored")
        self.quota = quota
        self.stored = stored
        self.refused = refused


class ScrubIncomplete(StoreError):
    """Deleted rows are gone, but other connections kept the write-ahead log busy, so their text may
    still be in the database's files until a later scrub succeeds."""

    def __init__(self, removed: dict[str, int] | None = None) -> None:
        super().__init__("the database was busy, so deleted text may remain in its files until the next scrub")
        self.removed = removed or {}
        """What was deleted before the scrub failed, by table."""
