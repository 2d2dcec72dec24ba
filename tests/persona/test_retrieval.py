"""What a training prompt recalls: the owner's lines like the one answered, never its own line or a private one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from persona.examples import Example
from persona.prompt import Turn
from persona.retrieval import with_recalled_lines
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
