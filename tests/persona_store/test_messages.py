"""Stored messages: dedupe on reimport, ownership per user, and a search that keeps to the owner's own lines."""

from __future__ import annotations

from pathlib import Path

from persona_store import open_store
from tests.persona_store.rows import message


async def test_reimport_adds_nothing_and_counts_duplicates(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        user = await store.users.get_or_create("console", "me", "Me")
        batch = [message(user.id, i) for i in range(100)]
        first = await store.messages.add_many(batch)
        again = await store.messages.add_many(batch[50:] + [message(user.id, 100)])
        assert (first.added, first.duplicates) == (100, 0)
        assert (again.added, again.duplicates) == (1, 50)
        assert (await store.messages.counts(user.id))[0] == 101


async def test_same_chat_imported_by_two_users_belongs_to_each(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        ana = await store.users.get_or_create("console", "ana", "Ana")
        bo = await store.users.get_or_create("console", "bo", "Bo")
        await store.messages.add_many([message(ana.id, 1)])
        result = await store.messages.add_many([message(bo.id, 1, own=False)])
        assert result.added == 1
        await store.delete_user(ana.id)
        assert len(await store.messages.for_training(bo.id)) == 1


async def test_similar_searches_only_the_owners_own_lines_and_respects_dm_scope(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        other = await store.users.get_or_create("console", "other", "Other")
        await store.messages.add_many(
            [
                message(me.id, 1, "I love sourdough bread"),
                message(me.id, 2, "sourdough secrets from my DM", dm=True, chat="dm"),
                message(me.id, 3, "friends talk about sourdough too", own=False),
                message(me.id, 4, "completely unrelated"),
                message(other.id, 5, "other user sourdough"),
            ]
        )
        in_group = await store.messages.similar(me.id, "Sourdough?!", 10, include_dm=False)
        in_dm = await store.messages.similar(me.id, "sourdough", 10, include_dm=True)
        assert [m.message_id for m in in_group] == ["1"]
        assert sorted(m.message_id for m in in_dm) == ["1", "2"]
        # User text is never FTS syntax.
        assert await store.messages.similar(me.id, 'NEAR( "" * OR AND', 5, include_dm=True) == []


async def test_what_followed_each_own_line_in_its_own_chat(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        other = await store.users.get_or_create("console", "bo", "Bo")
        # c1: mine (1), mine 1 s later (2), a friend's (5), mine (9: the chat's last line, so left out)
        # c2: mine (3), then a friend's 100 s later; another user's rows never count
        await store.messages.add_many([
            message(me.id, 1), message(me.id, 2), message(me.id, 5, own=False), message(me.id, 9),
            message(me.id, 3, chat="c2"), message(me.id, 103, own=False, chat="c2"),
            message(other.id, 4), message(other.id, 6, own=False),
        ])
        followed = await store.messages.what_followed_own(me.id, 10)
        assert sorted(followed) == sorted([(True, 1.0), (False, 3.0), (False, 100.0)])
        assert len(await store.messages.what_followed_own(me.id, 2)) == 1  # the 2 newest: 9 (last) and 3


async def test_answers_to_finds_what_the_owner_said_right_after_a_like_line(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        other = await store.users.get_or_create("console", "other", "Other")
        await store.messages.add_many([
            message(me.id, 1, "what year are you in?", own=False),
            message(me.id, 2, "sophomore, finally"),
            message(me.id, 3, "what year is it even", own=False),
            message(me.id, 4, "lol no idea", own=False),  # a line by someone else came after it: no answer
            message(me.id, 5, "which year was that"),
            message(me.id, 6, "the year of the snake"),  # answers the owner's own line
            message(me.id, 7, "what year did you graduate?", own=False, chat="dm", dm=True),
            message(me.id, 8, "class of 2019, shh", chat="dm", dm=True),
            message(me.id, 9, "unrelated chatter", own=False, chat="c2"),
            message(me.id, 10, "an answer to something else", chat="c2"),
            message(other.id, 11, "what year are you in?", own=False),
            message(other.id, 12, "someone else's answer"),
        ])

        async def answers(include_dm: bool) -> list[str]:
            return [m.text for m in await store.messages.answers_to(me.id, "What year are you in now?", 5,
                                                                    include_dm=include_dm)]

        assert await answers(include_dm=False) == ["sophomore, finally"]
        assert await answers(include_dm=True) == ["sophomore, finally", "class of 2019, shh"]
        assert await store.messages.answers_to(me.id, "?!", 5, include_dm=True) == []
