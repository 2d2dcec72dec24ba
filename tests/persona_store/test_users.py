"""Users: found by platform id, or by a display name only while one person has it."""

from __future__ import annotations

from persona_store import Store
from twinbot.settings import Settings


async def test_a_shared_display_name_finds_nobody_and_an_id_always_wins(settings: Settings) -> None:
    async with Store.open_context(settings) as store:
        mallory = await store.users.get_or_create("telegram", "13", "ana")  # renamed herself first
        assert await store.users.find("telegram", "@Ana") == mallory
        ana = await store.users.get_or_create("telegram", "11", "Ana")
        assert await store.users.named("telegram", "ANA") == [mallory, ana]
        assert await store.users.find("telegram", "ana") is None
        assert await store.users.find("telegram", "11") == ana and await store.users.find("telegram", "13") == mallory
        assert await store.users.named("telegram", "an") == [] and await store.users.named("discord", "ana") == []
