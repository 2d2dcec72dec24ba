"""The twin service the bot talks to: builds the prompt a twin sees and gets its reply from the worker.

The prompt holds our persona system prompt with the owner's name, a few of the owner's own past
lines most like the new message (full-text search in the store: an "instant twin" even before
training), and the recent conversation. Replies use the owner's adapter when one is trained.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from persona.serving.worker import AdapterRef, InferenceWorker, Sampling
from persona.prompt import Turn, build_prompt_ids
from persona.retrieval import reply_examples
from persona_store import Store, User
from twinbot.settings import Settings

log = logging.getLogger(__name__)

PROMPT_TOKENS = 448
LENGTH_LINES = 300  # the owner's most recent lines that set a reply's length
LENGTH_CACHE_S = 600.0
MIN_LINES_FOR_LENGTH = 10
DEFAULT_SOFT_TOKENS = 12


class TwinError(Exception):
    """The twin could not answer; the message is fit for the user."""


@dataclass(frozen=True)
class ReplyRequest:
    owner: User
    speaker_name: str
    text: str
    history: list[Turn]
    platform: str
    chat_id: str
    is_dm: bool
    asker_is_owner: bool = False
    """The owner talks to their own twin: only then, and only in a private chat, are private lines recalled."""

    @property
    def may_recall_private(self) -> bool:
        return self.is_dm and self.asker_is_owner


@dataclass(frozen=True)
class ReplyLength:
    """How long the owner writes, in tokens: where the end of turn starts being pushed, and the cap."""

    soft: int
    cap: int


def reply_length(token_counts: list[int], max_new_tokens: int) -> ReplyLength:
    """A length that fits the owner: pushed to end past ~1.2x their median line, capped near their
    longest usual lines (1.5x the 90th percentile); an owner with few lines gets a short chat line."""
    if len(token_counts) < MIN_LINES_FOR_LENGTH:
        return ReplyLength(min(DEFAULT_SOFT_TOKENS, max_new_tokens), max_new_tokens)
    ordered = sorted(token_counts)
    median = ordered[len(ordered) // 2]
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    soft = max(3, min(max_new_tokens, round(1.2 * median) + 1))
    return ReplyLength(soft, max(soft, min(max_new_tokens, round(1.5 * p90) + 4)))


def clean_reply(text: str, owner_name: str) -> str:
    """Trim what the model wrote into one chat message (no echoed 'Name:' prefix, no runaway whitespace)."""
    text = text.strip()
    prefix = re.compile(rf"^\s*{re.escape(owner_name)}\s*:\s*", re.IGNORECASE) if owner_name else None
    if prefix is not None:
        text = prefix.sub("", text)
    # One chat message: the model sometimes goes on to write a second paragraph nobody asked for.
    return text.split("\n\n")[0].strip()


class TwinService:
    def __init__(self, settings: Settings, store: Store, worker: InferenceWorker | None = None) -> None:
        self.settings = settings
        self.store = store
        self.worker = worker or InferenceWorker.from_settings(settings)
        self._lengths: dict[int, tuple[float, ReplyLength]] = {}

    async def start(self) -> None:
        await self.worker.start()

    async def close(self) -> None:
        await self.worker.close()

    async def delete_adapter(self, user_id: int) -> None:
        """Forget the user's adapter in memory (after /forget, or when a new one was trained)."""
        await self.worker.delete_adapter(str(user_id))

    async def adapter_for(self, owner: User) -> AdapterRef | None:
        record = await self.store.adapters.get(owner.id)
        if record is None or not (Path(record.path) / "adapter_config.json").is_file():
            return None
        return AdapterRef(str(owner.id), record.path, record.created_at)

    async def length_for(self, owner: User) -> ReplyLength:
        """The owner's reply length, from the token counts of their recent lines (cached a while)."""
        cached = self._lengths.get(owner.id)
        if cached is not None and time.monotonic() - cached[0] < LENGTH_CACHE_S:
            return cached[1]
        lines = await self.store.messages.recent_own_texts(owner.id, LENGTH_LINES)
        assert self.worker.tokenizer is not None
        counts = [len(ids) for ids in self.worker.tokenizer(lines, add_special_tokens=False)["input_ids"]] if lines else []
        length = reply_length(counts, self.settings.max_new_tokens)
        self._lengths[owner.id] = (time.monotonic(), length)
        return length

    async def prompt_ids(self, req: ReplyRequest) -> list[int]:
        examples = await reply_examples(self.store, req.owner.id, req.text, self.settings.retrieval_examples,
                                        include_dm=req.may_recall_private)
        context = [*req.history, Turn(req.speaker_name, req.text, is_owner=False)]
        assert self.worker.tokenizer is not None
        return build_prompt_ids(self.worker.tokenizer, req.owner.display_name, context, examples, PROMPT_TOKENS)

    async def reply(self, req: ReplyRequest) -> str:
        """The twin's answer: never empty; TwinError if the model fails or says nothing twice."""
        try:
            ids = await self.prompt_ids(req)
            adapter = await self.adapter_for(req.owner)
            length = await self.length_for(req.owner)
            for sampling in (Sampling(), Sampling(do_sample=False)):
                text = clean_reply(
                    await self.worker.generate(ids, adapter, length.cap, sampling, length.soft),
                    req.owner.display_name,
                )
                if text:
                    return text
        except Exception as exc:
            log.exception("twin of user %s failed to reply", req.owner.id)
            raise TwinError(f"{req.owner.display_name}'s twin couldn't answer just now; please try again.") from exc
        raise TwinError(f"{req.owner.display_name}'s twin had nothing to say; try saying it differently.")
