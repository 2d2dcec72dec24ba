"""The owner's own past lines a twin's persona prompt recalls, in replies and training alike.

Recalled lines make an "instant twin" of a user with imported history before any training; training
prompts recall them too, so a twin learns to lean on them rather than meeting them first when it answers.
"""

from __future__ import annotations

from dataclasses import replace

from persona.examples import Example
from persona_store import Store


async def reply_examples(store: Store, owner_id: int, text: str, limit: int, *, include_dm: bool,
                         leave_out: str = "") -> list[str]:
    """The owner's past lines for the persona prompt when answering `text`, never `text` itself nor
    `leave_out`: first what they answered to others' lines most like it, then their own lines most
    like it, `limit` in all.

    An answer to a like message shows the twin what its owner says back (their year, their major, how
    they greet), where a line that shares the message's words may only be about the same thing.
    """
    unwanted = {text.strip(), leave_out.strip()}
    # One or two more of each than needed: a found line may be left out, or found by both searches.
    answers = await store.messages.answers_to(owner_id, text, limit + 1, include_dm=include_dm)
    similar = await store.messages.similar(owner_id, text, limit + 2, include_dm=include_dm)
    lines: list[str] = []
    for message in [*answers, *similar]:
        if message.text.strip() not in unwanted and message.text not in lines:
            lines.append(message.text)
    return lines[:limit]


async def with_recalled_lines(store: Store, owner_id: int, examples: list[Example], limit: int, chars: int
                              ) -> list[Example]:
    """Each example with the owner's lines its prompt recalls for the line it answers, as a reply's
    prompt would recall them (reply_examples), cut to `chars`.

    Never the example's own line (the twin would learn to copy what it is shown), and never a line
    from a private chat, as a reply in a group recalls none.
    """
    recalled: list[Example] = []
    for example in examples:
        found = await reply_examples(store, owner_id, example.answered, limit, include_dm=False,
                                     leave_out=example.target) if limit else []
        recalled.append(replace(example, recalled=tuple(text[:chars] for text in found)))
    return recalled
