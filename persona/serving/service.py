"""The twin service the bot talks to: builds the prompt a twin sees and gets its reply from the worker.

The prompt holds our persona system prompt with the owner's name, a few of the owner's own past
lines (what they answered to messages like the new one, then their lines most like it: full-text
search in the store, an "instant twin" even before training), and the recent conversation. Replies
use the owner's adapter when one is trained, and come as the owner writes: about as long as their
lines, in bursts as often as theirs, each message as soon as the model has written it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from persona.assistant_voice import sounds_like_assistant
from persona.serving.strength import adapter_strength
from persona.serving.worker import AdapterRef, InferenceWorker, Sampling, WorkerBusy
from persona.prompt import Turn, build_prompt_ids
from persona.retrieval import reply_examples
from persona_store import Store, User
from twinbot.settings import Settings

log = logging.getLogger(__name__)

PROMPT_TOKENS = 448
RETRY_CANDIDATES = 3  # a reply that fails `acceptable` is drawn again, this many at once (one batch)
_SPEAKER_PREFIX = re.compile(r"^[A-Z][\w.'-]{0,20}( [A-Z][\w.'-]{0,20})?\s?:\s")
LENGTH_LINES = 300  # the owner's most recent lines that set a reply's length
LENGTH_CACHE_S = 600.0
MIN_LINES_FOR_LENGTH = 10
DEFAULT_SOFT_TOKENS = 12
BURST_GAP_S = 120.0
"""A line the owner sends within this long of their previous one, with nobody between, carries on a burst."""


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
    """How long the owner writes: in tokens a message, where the end of turn starts being pushed and the
    cap; and how often they send another message straight after one (`burst_rate`)."""

    soft: int
    cap: int
    go_on: float = 0.0


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


def burst_rate(followed: list[tuple[bool, float]]) -> float:
    """The share of the owner's lines followed by another of theirs within BURST_GAP_S (what the store
    says followed each: `Messages.what_followed_own`); 0 for an owner with too few lines to tell."""
    if len(followed) < MIN_LINES_FOR_LENGTH:
        return 0.0
    return sum(own and gap <= BURST_GAP_S for own, gap in followed) / len(followed)


def clean_reply(text: str, owner_name: str) -> str:
    """What the model wrote as one chat message: its first line, without an echoed 'Owner:' prefix;
    "" when the model wrote someone else's line ('Pam: ...'), as a script would."""
    prefix = re.compile(rf"^\s*{re.escape(owner_name)}\s*:\s*", re.IGNORECASE) if owner_name else None
    text = text.strip()
    if prefix is not None:
        text = prefix.sub("", text)
    # The model goes on to write the next lines of the chat, other people's included: one message.
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return "" if _SPEAKER_PREFIX.match(first) else first


def normalised(text: str) -> str:
    """Lower case, straight apostrophes, single spaces: two lines that differ only so are the same line
    (a parroted line, for the reply filter and the eval's copy measure alike)."""
    return " ".join(text.replace("\u2019", "'").casefold().split())


ECHO_WORDS = 3
"""A reply sharing this many consecutive words with a line of the chat repeats it: blind readers named
such echoes (a phrase said back, the question asked back) as what gave twins away most often, and
real replies do it far less often than twins' draws did (docs/benchmarks.md)."""
_WORD = re.compile(r"[\w']+")


def _word_runs(text: str, size: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(normalised(text))
    return {tuple(words[i: i + size]) for i in range(len(words) - size + 1)}


def echoes(text: str, chat: Sequence[str], size: int = ECHO_WORDS) -> bool:
    """Whether `text` repeats `size` or more consecutive words of one of the chat's lines."""
    runs = _word_runs(text, size)
    return bool(runs) and any(runs & _word_runs(line, size) for line in chat)


STUTTER_WORDS = 4
"""A reply saying one word this many times running has lost its thread ("OK. OK... ok. OK. OK!"):
twins served at 2x their strength did so in up to 2.5 % of Office replies, where 0.7 % of the Office's
real lines and 0.5 % of chitchat's do; three times running ("No, no, no") stays a person's own."""


def stutters(text: str, times: int = STUTTER_WORDS) -> bool:
    """Whether `text` says one word `times` or more times running (case and punctuation aside)."""
    return any(len(set(run)) == 1 for run in _word_runs(text, times))


def acceptable(text: str, recalled: list[str], chat: Sequence[str] = ()) -> bool:
    """A reply worth sending: something said, not in the assistant's voice, not a recalled line
    parroted, not a line of the chat or a run of its words said back (`echoes`), not one word said
    over and over (`stutters`)."""
    seen = {normalised(line) for line in (*recalled, *chat)}
    return (bool(text) and not sounds_like_assistant(text) and normalised(text) not in seen
            and not echoes(text, chat) and not stutters(text))


def burst(drawn: Sequence[str], owner_name: str, recalled: list[str], chat: Sequence[str]) -> list[str]:
    """A draw's messages as they go out: the first cleaned (perhaps ""), then each next one while it is
    acceptable against the chat and the messages before it (a repeat of the first ends the burst)."""
    messages = [clean_reply(drawn[0], owner_name) if drawn else ""]
    for text in drawn[1:]:
        text = clean_reply(text, owner_name)
        if not acceptable(text, recalled, [*chat, *messages]):
            break
        messages.append(text)
    return messages


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
        strength = adapter_strength(record.n_examples, few=self.settings.adapter_strength_few_lines,
                                    many=self.settings.adapter_strength)
        return AdapterRef(str(owner.id), record.path, record.created_at, strength)

    async def length_for(self, owner: User) -> ReplyLength:
        """The owner's reply length, from the token counts of their recent lines and what followed them
        (cached a while)."""
        cached = self._lengths.get(owner.id)
        if cached is not None and time.monotonic() - cached[0] < LENGTH_CACHE_S:
            return cached[1]
        lines = await self.store.messages.recent_own_texts(owner.id, LENGTH_LINES)
        tokenizer = self.worker.tokenizer
        assert tokenizer is not None
        # Hundreds of lines at once: tokenized off the event loop, which serves every chat meanwhile.
        ids = await asyncio.to_thread(tokenizer, lines, add_special_tokens=False) if lines else {"input_ids": []}
        counts = [len(row) for row in ids["input_ids"]]
        rate = burst_rate(await self.store.messages.what_followed_own(owner.id, LENGTH_LINES))
        length = replace(reply_length(counts, self.settings.max_new_tokens), go_on=rate)
        self._lengths[owner.id] = (time.monotonic(), length)
        return length

    async def prompt(self, req: ReplyRequest) -> tuple[list[int], list[str]]:
        """The prompt's ids, and the owner's lines it recalls."""
        examples = await reply_examples(self.store, req.owner.id, req.text, self.settings.retrieval_examples,
                                        include_dm=req.may_recall_private)
        context = [*req.history, Turn(req.speaker_name, req.text, is_owner=False)]
        assert self.worker.tokenizer is not None
        ids = build_prompt_ids(self.worker.tokenizer, req.owner.display_name, context, examples, PROMPT_TOKENS)
        return ids, examples

    async def prompt_ids(self, req: ReplyRequest) -> list[int]:
        return (await self.prompt(req))[0]

    async def reply(self, req: ReplyRequest) -> list[str]:
        """The twin's whole answer at once (`replies`, gathered)."""
        return [message async for message in self.replies(req)]

    async def replies(self, req: ReplyRequest) -> AsyncIterator[str]:
        """The twin's answer, message by message as the model writes them: one, or a burst of up to
        REPLY_MESSAGES. At least one; TwinError if the model fails or says nothing twice, WorkerBusy if
        too many replies are waiting.

        The first message goes out as soon as it is written, while the model writes the next, so a
        burst keeps the first reply as quick as a lone message. A first message that is empty, in the
        assistant's voice, or a recalled or chat line parroted is drawn again, RETRY_CANDIDATES at once;
        the first acceptable draw goes out, else any non-empty one. A burst ends at its first message
        that is not acceptable against the chat and the messages before it.
        """
        try:
            ids, recalled = await self.prompt(req)
            adapter = await self.adapter_for(req.owner)
            length = await self.length_for(req.owner)
            chat = [turn.text for turn in req.history] + [req.text]
            name = req.owner.display_name

            def draw(sampling: Sampling, on_message: Callable[[str], None] | None = None) -> Awaitable[list[str]]:
                return self.worker.generate(ids, adapter, length.cap, sampling, length.soft,
                                            self.settings.reply_messages, length.go_on, on_message)

            sent: list[str] = []
            rejected = ""  # the streamed draw's first message, when it was not acceptable
            async with contextlib.aclosing(streamed(draw)) as written:
                async for raw in written:
                    text = clean_reply(raw, name)
                    if not acceptable(text, recalled, [*chat, *sent]):
                        rejected = text  # read only when nothing was sent
                        break
                    sent.append(text)
                    yield text
            if sent:
                return
            drawn = [[rejected], *[burst(messages, name, recalled, chat) for messages in
                                await asyncio.gather(*(draw(Sampling()) for _ in range(RETRY_CANDIDATES)))]]
            fallback = [messages for messages in drawn if messages[0]] or [
                burst(await draw(Sampling(do_sample=False)), name, recalled, chat)]
            messages = next((messages for messages in drawn if acceptable(messages[0], recalled, chat)), fallback[0])
        except WorkerBusy:
            raise
        except Exception as exc:
            log.exception("twin of user %s failed to reply", req.owner.id)
            raise TwinError(f"{req.owner.display_name}'s twin couldn't answer just now; please try again.") from exc
        if not messages[0]:
            raise TwinError(f"{req.owner.display_name}'s twin had nothing to say; try saying it differently.")
        for message in messages:
            yield message


async def streamed(draw: Callable[[Sampling, Callable[[str], None]], Awaitable[list[str]]]) -> AsyncIterator[str]:
    """One sampled draw's messages as the worker writes them (`InferenceWorker.generate`'s on_message)."""
    arrived: asyncio.Queue[str] = asyncio.Queue()
    generating = asyncio.ensure_future(draw(Sampling(), arrived.put_nowait))
    generating.add_done_callback(lambda done: done.cancelled() or done.exception())  # read if left behind
    while True:
        waiting = asyncio.ensure_future(arrived.get())
        try:
            await asyncio.wait({waiting, generating}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiting.done():
                waiting.cancel()
        if waiting.done() and not waiting.cancelled():
            yield waiting.result()
            continue
        generating.result()  # the worker's error, if any
        while not arrived.empty():
            yield arrived.get_nowait()
        return
