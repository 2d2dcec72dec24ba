"""Thumbs up/down on twin replies: a signal for owners about how their twin is received."""

from __future__ import annotations

from persona_store.connection import Database, now
from persona_store.models import Feedback


class FeedbackLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, rater_id: int, twin_owner_id: int, platform: str, message_ref: str, score: int) -> None:
        if score not in (-1, 1):
            raise ValueError("feedback score is -1 or 1")
        await self._db.execute(
            "INSERT INTO feedback (rater_id, twin_owner_id, platform, message_ref, score, at) VALUES (?, ?, ?, ?, ?, ?)",
            (rater_id, twin_owner_id, platform, message_ref, score, now()),
        )

    async def involving(self, user_id: int) -> list[Feedback]:
        """Feedback the user gave, and feedback on the user's twin."""
        rows = await self._db.fetchall(
            "SELECT * FROM feedback WHERE rater_id = ? OR twin_owner_id = ? ORDER BY id", (user_id, user_id)
        )
        return [
            Feedback(r["id"], r["rater_id"], r["twin_owner_id"], r["platform"], r["message_ref"], r["score"], r["at"])
            for r in rows
        ]
