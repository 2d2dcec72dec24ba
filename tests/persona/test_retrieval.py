"""What a prompt recalls: what the owner answered to lines like the one answered, then their lines like it;
never a training example's own line, nor a private line in a group."""

from __future__ import annotations

import asyncio
from pathlib import Path

from persona.examples import Example
from persona.prompt import Turn
from persona.retrieval import reply_examples, with_recalled_lines
from persona_store import NewMessage, open_store


def test_training_examples_recall_like_lines_but_never_their_own_or_private_ones(tmp_path: Path) -> None:
    own = [("group", "pizza tonight? pizza always", False), ("group", "pizza is my love language", False),
           ("group", "cold pizza for breakfast", False), ("dm", "secret pizza place, tell no one", True),
           ("group", "I hate mornings", False)]
    example = Example((Turn("Bo", "pizza later?", False),), "pizza tonight? pizza always")
    lonely = Example((), "first line of a chat")

    async def recall() -> list[Example]:
        async with open_store(tmp_path / "s.sqlite3") as store:
            user = await store.users.get_or_create("test", "1", "Ana")
            await store.messages.add_many([
                NewMessage(user.id, "test", chat, str(i), "Ana", True, float(i), text, is_dm=dm)
                for i, (chat, text, dm) in enumerate(own)])
            return await with_recalled_lines(store, user.id, [example, lonely], 3, 14)

    recalled, alone = asyncio.run(recall())
    assert sorted(recalled.recalled) == ["cold pizza for", "pizza is my lo"]  # best first, by BM25
    assert recalled.context == example.context and recalled.target == example.target
    assert alone.recalled == ()


def test_a_reply_recalls_what_the_owner_answered_to_like_lines_first(tmp_path: Path) -> None:
    chat = [("Bo", "so what are you studying?"), ("Ana", "chemistry, sadly"),
            ("Bo", "what are you studying next year, then"), ("Ana", "physics i hope"),
            ("Ana", "studying for finals all week"), ("Ana", "studying is my life"), ("Ana", "lunch anyone"),
            ("Bo", "nm")]

    async def recall(limit: int) -> list[str]:
        async with open_store(tmp_path / "s.sqlite3") as store:
            user = await store.users.get_or_create("test", "1", "Ana")
            await store.messages.add_many([
                NewMessage(user.id, "test", "group", str(i), name, name == "Ana", float(i), text)
                for i, (name, text) in enumerate(chat)])
            return await reply_examples(store, user.id, "What are you studying now?", limit, include_dm=False)

    assert asyncio.run(recall(2)) == ["chemistry, sadly", "physics i hope"]  # the likest line's answer first
    assert asyncio.run(recall(3))[2] in {"studying for finals all week", "studying is my life"}  # then like lines
