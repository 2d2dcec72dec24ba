"""The replies people read, measured: length, copying, assistant voice, relevance, and attribution over windows.

Pure functions over texts, losses and scores. persona.evaluation.suite makes the replies through the
product's own reply path and computes the losses; these turn them into the report's numbers.
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from persona.prompt import Turn
from persona.serving.service import echoes, normalised

WINDOW = 5
"""Held-out lines of one speaker attributed together: a per-author language model needs more than
the few tokens of one chat line to tell authors apart."""


def words(text: str) -> int:
    return len(text.split())


def median_words(texts: Iterable[str]) -> float:
    counts = [words(text) for text in texts]
    return float(statistics.median(counts)) if counts else 0.0


def share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 0.0


def copied(reply: str, stored: frozenset[str]) -> bool:
    """Whether the reply repeats one of the owner's stored lines (`stored` holds them normalised)."""
    return normalised(reply) in stored


def mismatched_contexts(chats: Sequence[str], seed: int) -> list[int]:
    """For each held-out line, another one whose context to read it in: from another chat where there is one."""
    rng = random.Random(seed)
    picks = []
    for i, chat in enumerate(chats):
        others = [j for j, other in enumerate(chats) if other != chat] or [j for j in range(len(chats)) if j != i]
        picks.append(rng.choice(others) if others else i)
    return picks


def relevance(true_context: Sequence[tuple[float, int]], other_context: Sequence[tuple[float, int]]) -> float:
    """Pointwise mutual information of replies and their contexts, in nats per reply token: how much
    likelier the true context makes each reply than another line's context does (about 0 for a reply
    that ignores the chat). Each pair is a reply's (summed negative log-likelihood, token count)."""
    tokens = sum(count for _, count in true_context)
    gained = sum(other - true for (true, _), (other, _) in zip(true_context, other_context, strict=True))
    return gained / tokens if tokens else 0.0


def windows(scores: Sequence[Sequence[float]], owners: Sequence[int], size: int = WINDOW
            ) -> tuple[list[list[float]], list[int]]:
    """Each speaker's consecutive held-out lines in windows of `size` (a last shorter window is left
    out), with each window's scores summed line by line: (window scores, window owners).

    `scores[line][twin]` as persona.evaluation.suite.attribute takes them; `owners[line]` is whose line it is.
    """
    summed: list[list[float]] = []
    window_owners: list[int] = []
    for owner in dict.fromkeys(owners):
        own = [scores[i] for i, k in enumerate(owners) if k == owner]
        for start in range(0, len(own) - size + 1, size):
            summed.append([sum(column) for column in zip(*own[start: start + size], strict=True)])
            window_owners.append(owner)
    return summed, window_owners


@dataclass(frozen=True, slots=True)
class Answer:
    """A twin's reply to the context of one of its owner's held-out lines, beside the real line."""

    owner: int
    speaker: str
    context: tuple[Turn, ...]
    real: str
    twin: str
    """The twin's first message: the measures compare it with `real`, one message with one."""
    real_after: tuple[str, ...] = ()
    """The owner's next lines when the real line opened a burst."""
    twin_after: tuple[str, ...] = ()
    """The twin's next messages when its reply was a burst."""


def echoed(answer: Answer, reply: str) -> bool:
    """Whether `reply` to the answer's context says a run of a chat line's words back (service.echoes)."""
    return echoes(reply, [turn.text for turn in answer.context])


def sample(answer: Answer) -> dict:
    """One line of the samples file, for people to read and to build blind tests from: a burst's
    messages one per line, the real one's and the twin's alike."""
    return {"speaker": answer.speaker, "context": [f"{turn.speaker}: {turn.text}" for turn in answer.context],
            "real": "\n".join((answer.real, *answer.real_after)), "twin": "\n".join((answer.twin, *answer.twin_after))}


def write_samples(path: Path, answers: Iterable[Answer]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(sample(answer), ensure_ascii=False) + "\n" for answer in answers),
                    encoding="utf-8")
