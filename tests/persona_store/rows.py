"""Rows the store tests write: a message of a user, numbered."""

from __future__ import annotations

from persona_store import NewMessage


def message(owner_id: int, i: int, text: str | None = None, *, own: bool = True, chat: str = "c1", dm: bool = False):
    return NewMessage(
        owner_id=owner_id,
        platform="console",
        chat_id=chat,
        message_id=str(i),
        author="me" if own else "friend",
        is_own=own,
        ts=1000.0 + i,
        text=text or f"line number {i}",
        source="import",
        is_dm=dm,
    )
