"""Consent: its history and current state."""

from __future__ import annotations

from pathlib import Path

from persona_store import Scope, open_store


async def test_consent_history_and_current_state(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        user = await store.users.get_or_create("console", "me", "Me")
        assert (await store.consent.current(user.id)).learn is False
        await store.consent.set(user.id, Scope.LEARN, True)
        await store.consent.set(user.id, Scope.LEARN, True)  # no change, no new event
        await store.consent.set(user.id, Scope.SHARE, True)
        state = await store.consent.set(user.id, Scope.LEARN, False)
        assert (state.learn, state.share) == (False, True)
        history = await store.consent.history(user.id)
        assert [(e.scope, e.granted) for e in history] == [
            (Scope.LEARN, True),
            (Scope.SHARE, True),
            (Scope.LEARN, False),
        ]
