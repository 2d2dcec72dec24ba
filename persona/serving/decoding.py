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
owner does. The prompt runs through the model's forward; the one-token steps after it through
`persona.serving.decoding_steps`.
"""

from __future__ import annotations

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


def pushed_to_end(logits: torch.Tensor, stops: torch.Tensor, written: int, soft_lengths: torch.Tensor | None,
                  push: float) -> torch.Tensor:
    """Logits with the end-of-turn tokens raised by `push` per token each row has written past its soft length."""
    if soft_lengths is None or push == 0.0:
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


def decode(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int,
           sampling: Sampling, stop_ids: list[int], pad_id: int, soft_lengths: list[int] | None = None
           ) -> list[list[int]]:
    """Up to `max_new_tokens` new ids per row (left-padded `ids`/`mask`), each row cut before its stop token.

    `soft_lengths` (tokens, per row) is where each row's end of turn starts being pushed.
    """
    rows = ids.shape[0]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True,
                logits_to_keep=1)
    logits = out.logits[:, -1].float()
    steps: Steps | None = None  # made at the first step: a one-token reply never copies the prompt's cache
    seen = torch.zeros(rows, logits.shape[-1], dtype=torch.bool)  # the reply's own tokens only
    stops = torch.tensor(stop_ids, dtype=torch.long)
    lengths = torch.tensor(soft_lengths) if soft_lengths is not None else None
    done = torch.zeros(rows, dtype=torch.bool)
    chosen = []
    for step in range(max_new_tokens):
        logits = pushed_to_end(logits, stops, step, lengths, sampling.length_push)
        token = next_tokens(logits, seen, sampling).masked_fill(done, pad_id)
        chosen.append(token)
        done |= torch.isin(token, stops)
        if done.all() or step == max_new_tokens - 1:
            break
        seen[torch.arange(rows), token] = True
        seen[:, stops] = False  # the end of turn is never penalised
        mask = torch.cat([mask, torch.ones(rows, 1, dtype=mask.dtype)], dim=1)
        positions = positions[:, -1:] + 1
        if steps is None:
            steps = steps_for(model, cache, capacity=ids.shape[1] + max_new_tokens)
        logits = steps(token, positions, mask)
    generated = torch.stack(chosen, dim=1).tolist()
    return [row[: next((i for i, t in enumerate(row) if t in stop_ids), len(row))] for row in generated]
