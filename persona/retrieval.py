"""The owner's own past lines most like a line: what a twin's persona prompt recalls, in replies and training alike.

Recalled lines make an "instant twin" of a user with imported history before any training; training
prompts recall them too, so a twin learns to lean on them rather than meeting them first when it answers.
"""

from __future__ import annotations

from dataclasses import replace

from persona.examples import Example
from persona_store import Store


async def reply_examples(store: Store, owner_id: int, text: str, limit: int, *, include_dm: bool) -> list[str]:
    """The owner's own past lines most like `text`, for the persona prompt (never `text` itself)."""
    similar = await store.messages.similar(owner_id, text, limit, include_dm=include_dm)
    return [m.text for m in similar if m.text.strip() != text.strip()]


async def with_recalled_lines(store: Store, owner_id: int, examples: list[Example], limit: int, chars: int
                              ) -> list[Example]:
    """Each example with the owner's lines its prompt recalls: those most like the line it answers, as a
    reply's prompt would recall them, cut to `chars`.

    Never the example's own line (the twin would learn to copy what it is shown), and never a line
    from a private chat, as a reply in a group recalls none.
    """
    recalled: list[Example] = []
    for example in examples:
        found = await reply_examples(store, owner_id, example.answered, limit + 1, include_dm=False) if limit else []
        lines = [text[:chars] for text in found if text.strip() != example.target.strip()][:limit]
        recalled.append(replace(example, recalled=tuple(lines)))
    return recalled
