"""Consent: a history of grants and withdrawals per scope; the latest event per scope is in force."""

from __future__ import annotations

from persona_store.connection import Database, now
from persona_store.models import Consent, ConsentEvent, Scope


class ConsentLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def set(self, user_id: int, scope: Scope, granted: bool) -> Consent:
        """Record a grant or withdrawal (only when it changes something) and return the new state."""
        current = await self.current(user_id)
        if getattr(current, scope.value) != granted:
            await self._db.execute(
                "INSERT INTO consent_events (user_id, scope, granted, at) VALUES (?, ?, ?, ?)",
                (user_id, scope.value, int(granted), now()),
            )
        return await self.current(user_id)

    async def current(self, user_id: int) -> Consent:
        rows = await self._db.fetchall(
            "SELECT scope, granted, at FROM consent_events WHERE id IN"
            " (SELECT max(id) FROM consent_events WHERE user_id = ? GROUP BY scope)",
            (user_id,),
        )
        state = {row["scope"]: bool(row["granted"]) for row in rows}
        updated = max((row["at"] for row in rows), default=None)
        return Consent(learn=state.get("learn", False), share=state.get("share", False), updated_at=updated)

    async def history(self, user_id: int) -> list[ConsentEvent]:
        rows = await self._db.fetchall(
            "SELECT scope, granted, at FROM consent_events WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [ConsentEvent(Scope(row["scope"]), bool(row["granted"]), row["at"]) for row in rows]
