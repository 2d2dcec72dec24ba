"""Training examples from a user's kept messages: each of their lines, with what was said before it.

Pure functions over StoredMessage lists, so the rules are testable without a database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby

from persona.prompt import Turn
from persona_store import StoredMessage

CONTEXT_TURNS = 4
CONTEXT_GAP_S = 6 * 3600  # lines from hours earlier are another conversation
_BARE_LINK = re.compile(r"^\s*(<?https?://\S+>?\s*)+$", re.IGNORECASE)
_ATTACHMENT_ONLY = re.compile(r"^\s*\[(attachment|photo|sticker|image|file|video|voice)[^\]]*\]\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Example:
    context: tuple[Turn, ...]
    target: str
    turns_since_previous: int | None = None
    """When the previous example's line is one of `context`'s turns: how many turns came after it
    (so the trainer can carry that example's sequence on instead of repeating the shared turns)."""
    recalled: tuple[str, ...] = ()
    """The owner's other lines its prompt recalls (`persona.retrieval.with_recalled_lines`)."""

    @property
    def answered(self) -> str:
        """The line the owner's line answers (the last turn before it), or "" when it opens the chat."""
        return self.context[-1].text if self.context else ""


def usable(text: str) -> bool:
    """A line worth learning from: not empty, not only a link or an attachment placeholder."""
    stripped = text.strip()
    return bool(stripped) and not _BARE_LINK.match(stripped) and not _ATTACHMENT_ONLY.match(stripped)


def build_examples(messages: Iterable[StoredMessage], context_turns: int = CONTEXT_TURNS) -> list[Example]:
    """One example per usable own line: (preceding lines of that chat, any speaker) -> the line.

    Messages must come ordered by chat then time (store.messages.for_training does). Exact
    duplicates of an earlier own line are dropped, so "ok" x 300 does not become the twin.
    """
    examples: list[Example] = []
    seen: set[str] = set()
    for _chat, chat_messages in groupby(messages, key=lambda m: (m.platform, m.chat_id)):
        history: list[StoredMessage] = []
        previous: int | None = None  # where in `history` the last example's line is
        for message in chat_messages:
            if history and message.ts - history[-1].ts > CONTEXT_GAP_S:
                history, previous = [], None
            text = message.text.strip()
            if message.is_own and usable(text) and text not in seen:
                seen.add(text)
                context = tuple(Turn(m.author, m.text.strip(), m.is_own) for m in history[-context_turns:])
                since = len(history) - 1 - previous if previous is not None else None
                examples.append(Example(context, text, since if since is not None and since < context_turns else None))
                previous = len(history)
            if usable(text):
                history.append(message)
    return examples
