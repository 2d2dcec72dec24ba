"""The decoding loop of the inference worker: a batch of left-padded prompts in, new token ids out.

transformers' `generate` spent ~3 ms of a ~24 ms decoding step of the bundled model on sampling
(measured on the 2-core reference machine): a sort of the whole 49k vocabulary for top-p, and an
exponential draw over all of it for the multinomial, although its top-k of 50 had already
discarded all but 50 tokens. Here top-p and the draw run on those 50 alone, which is the same
distribution.

The repetition penalty counts only the reply's own tokens, never the prompt's and never the end of
turn: the prompt holds the owner's recalled lines and ends every turn with the end-of-turn token,
and penalising those made replies run on to the cap. A row's soft length (the owner's usual line
length) makes ending the turn likelier with every token past it, so a twin writes as long as its
owner does. A reply may be a burst of short messages, as people send them: after each message a
row goes on at its owner's own rate of bursts, and the model writes the next message (the model's
own odds of the owner speaking again told real bursts from single lines no better than chance:
docs/benchmarks.md). The prompt runs through the model's forward; the one-token steps after it
through `persona.serving.decoding_steps`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache

from persona.serving.decoding_steps import Steps, steps_for

TOP_K = 50


@dataclass(frozen=True, slots=True)
class Sampling:
    do_sample: bool = True
    temperature: float = 0.8
    top_p: float = 0.92
    repetition_penalty: float = 1.15
    length_push: float = 0.5
    """Logit added to the end-of-turn tokens per token written from a row's soft length on."""


def penalised(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """Logits of the tokens each row has seen made less likely (CTRL's repetition penalty)."""
    if penalty == 1.0:
        return logits
    return torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)


def candidates(logits: torch.Tensor, sampling: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """The tokens sampling may pick (rows x TOP_K ids) and their probabilities (zero past top_p)."""
    values, ids = (logits / sampling.temperature).topk(min(TOP_K, logits.shape[-1]), dim=-1)
    probs = values.softmax(-1)
    before = probs.cumsum(-1) - probs  # mass of the likelier tokens: keep each until top_p is reached
    return ids, probs.masked_fill(before >= sampling.top_p, 0.0)


def pushed_to_end(logits: torch.Tensor, stops: torch.Tensor, written: torch.Tensor, soft_lengths: torch.Tensor,
                  push: float) -> torch.Tensor:
    """Logits with the end-of-turn tokens raised by `push` per token each row has written (in its
    current message) past its soft length."""
    if push == 0.0:
        return logits
    over = (written - soft_lengths + 1).clamp(min=0).to(logits.dtype) * push
    logits = logits.clone()
    logits[:, stops] += over[:, None]
    return logits


def next_tokens(logits: torch.Tensor, seen: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """One token per row from fp32 `logits` (rows x vocab); `seen` marks each row's reply tokens so far."""
    logits = penalised(logits, seen, sampling.repetition_penalty)
    if not sampling.do_sample:
        return logits.argmax(-1)
    ids, probs = candidates(logits, sampling)
    return ids.gather(-1, torch.multinomial(probs, 1)).squeeze(-1)


@dataclass(frozen=True, slots=True)
class RowPlan:
    """What one row may write: up to `max_new_tokens` a message, pushed to end past `soft_length`, and
    up to `messages` messages in a row (a burst), each next one with probability `go_on`."""

    max_new_tokens: int
    soft_length: int | None = None
    messages: int = 1
    go_on: float = 0.0


def goes_on(rate: float, do_sample: bool) -> bool:
    """Whether a row sends another message: drawn at its owner's rate; without sampling, when likelier than not."""
    return bool(torch.rand(()) < rate) if do_sample else rate >= 0.5


class _Row:
    """One row's messages so far, and the tokens between two messages still to feed."""

    def __init__(self, plan: RowPlan) -> None:
        self.plan = plan
        self.messages: list[list[int]] = [[]]
        self.forced: list[int] = []
        self.done = False

    @property
    def written(self) -> int:
        return len(self.messages[-1])


def decode(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, plans: list[RowPlan], sampling: Sampling,
           stop_ids: list[int], pad_id: int, between: list[int] | None = None,
           on_message: Callable[[int, list[int]], None] | None = None) -> list[list[list[int]]]:
    """Each row's messages (token ids, without stop tokens) for left-padded `ids`/`mask`, one RowPlan a row.

    A message ends at a stop token or its cap. With `between` (persona.prompt.between_messages), a row
    whose plan allows more messages may go on after the end of turn (stop_ids[0]): `between` is fed,
    as consecutive lines of one speaker are in training, and the next message is written in the same
    cache. A capped message ends the burst. Fed tokens never count as the reply's own.
    `on_message(row, ids)` gets each non-empty message as soon as it ends, while the others go on.
    """

    def finish(r: int, row: _Row) -> None:
        if row.messages[-1] and on_message is not None:
            on_message(r, row.messages[-1])

    count = ids.shape[0]
    rows = [_Row(plan) for plan in plans]
    gap = 1 + len(between) if between is not None else 0  # the end of turn and what follows it
    limit = max(p.max_new_tokens * p.messages + gap * (p.messages - 1) for p in plans)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True,
                logits_to_keep=1)
    logits = out.logits[:, -1].float()
    steps: Steps | None = None  # made at the first step: a one-token reply never copies the prompt's cache
    seen = torch.zeros(count, logits.shape[-1], dtype=torch.bool)  # the reply's own tokens only
    stops = torch.tensor(stop_ids, dtype=torch.long)
    soft = torch.tensor([p.soft_length if p.soft_length is not None else p.max_new_tokens for p in plans])
    for step in range(limit):
        written = torch.tensor([row.written for row in rows])
        sampled = next_tokens(pushed_to_end(logits, stops, written, soft, sampling.length_push), seen, sampling)
        tokens = []
        for r, row in enumerate(rows):
            token = int(sampled[r])
            if row.done:
                token = pad_id
            elif row.forced:
                token = row.forced.pop(0)
            elif token in stop_ids:
                finish(r, row)
                if (between is not None and token == stop_ids[0] and row.written > 0
                        and len(row.messages) < row.plan.messages and goes_on(row.plan.go_on, sampling.do_sample)):
                    row.forced = list(between)
                    row.messages.append([])
                else:
                    row.done = True
            else:
                row.messages[-1].append(token)
                seen[r, token] = True
                if row.written >= row.plan.max_new_tokens:
                    finish(r, row)
                    row.done = True
            tokens.append(token)
        if all(row.done for row in rows) or step == limit - 1:
            for r, row in enumerate(rows):
                if not row.done:
                    finish(r, row)
            break
        mask = torch.cat([mask, torch.ones(count, 1, dtype=mask.dtype)], dim=1)
        positions = positions[:, -1:] + 1
        if steps is None:
            steps = steps_for(model, cache, capacity=ids.shape[1] + limit)
        logits = steps(torch.tensor(tokens), positions, mask)
    return [[message for message in row.messages if message] or [[]] for row in rows]
