"""The store as a whole against real SQLite files: deleting a user leaves no trace in any file."""

from __future__ import annotations

from pathlib import Path

from persona_store import Scope, open_store
from tests.persona_store.rows import message


async def test_delete_user_leaves_no_trace_in_any_file(tmp_path: Path) -> None:
    secret = "quixoticzebrafjord"
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        other = await store.users.get_or_create("console", "other", "Other")
        await store.consent.set(me.id, Scope.LEARN, True)
        await store.messages.add_many([message(me.id, i, f"{secret} {i} words") for i in range(3000)])
        await store.messages.add_many([message(other.id, 1, "the other user's keepsake")])
        await store.jobs.enqueue(me.id)
        await store.avatars.put(me.id, "lorelei", b"\x01" * 64, "bundled")
        counts = await store.delete_user(me.id)
        assert counts["messages"] == 3000 and counts["users"] == 1
        assert await store.users.get(me.id) is None
        assert await store.messages.similar(me.id, secret, 5, include_dm=True) == []
        assert [m.text for m in await store.messages.for_training(other.id)] == ["the other user's keepsake"]
    leftovers = {p.name: p.read_bytes().count(secret.encode()) for p in tmp_path.iterdir() if p.is_file()}
    assert leftovers and all(count == 0 for count in leftovers.values()), leftovers
    assert any(p.read_bytes().count(b"keepsake") for p in tmp_path.iterdir() if p.is_file())
