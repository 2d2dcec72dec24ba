"""The decoding loop: its sampling distribution is transformers' own (temperature, top-k 50, top-p,
repetition penalty), and it stops rows at their end of turn."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
)

from persona.serving.decoding import (
    TOP_K, RowPlan, Sampling, candidates, decode, goes_on, next_tokens, penalised,
)


@pytest.mark.parametrize("top_p", [0.5, 0.92, 1.0])
def test_the_distribution_is_the_one_transformers_samples_from(top_p: float) -> None:
    torch.manual_seed(0)
    sampling = Sampling(temperature=0.7, top_p=top_p, repetition_penalty=1.3)
    logits = torch.randn(3, 500) * 3
    history = torch.randint(0, 500, (3, 40))
    seen = torch.zeros(3, 500, dtype=torch.bool).scatter_(1, history, True)

    hf = RepetitionPenaltyLogitsProcessor(1.3)(history, logits.clone())
    for warp in (TemperatureLogitsWarper(0.7), TopKLogitsWarper(TOP_K), TopPLogitsWarper(top_p)):
        hf = warp(history, hf)
    want = hf.softmax(-1)

    ids, probs = candidates(penalised(logits, seen, 1.3), sampling)
    got = torch.zeros_like(want).scatter_(1, ids, probs / probs.sum(-1, keepdim=True))
    assert torch.allclose(got, want, atol=1e-6)


def test_sampling_only_picks_candidates_and_greedy_takes_the_penalised_best() -> None:
    torch.manual_seed(0)
    logits = torch.zeros(1, 200)
    logits[0, 7], logits[0, 9] = 2.0, 1.9
    seen = torch.zeros(1, 200, dtype=torch.bool)
    greedy = Sampling(do_sample=False)
    assert next_tokens(logits, seen, greedy).item() == 7
    seen[0, 7] = True
    assert next_tokens(logits, seen, greedy).item() == 9  # 2.0 / 1.15 < 1.9
    picks = {next_tokens(torch.linspace(0, 1, 200)[None], seen, Sampling(top_p=1.0)).item() for _ in range(300)}
    assert picks <= set(range(200 - TOP_K, 200)) and len(picks) > 10


def test_decode_stops_each_row_at_its_end_of_turn(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    greedy = Sampling(do_sample=False, repetition_penalty=1.0)
    ids = torch.tensor([[5, 6, 7, 8], [0, 0, 9, 10]])
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    with torch.inference_mode():
        free = firsts(decode(model, ids, mask, [RowPlan(6)] * 2, greedy, [], pad_id=0))
        stop = free[0][2]
        cut = firsts(decode(model, ids, mask, [RowPlan(6)] * 2, greedy, [stop], pad_id=0))
        alone = firsts(decode(model, ids[1:, 2:], mask[1:, 2:], [RowPlan(6)], greedy, [stop], pad_id=0))
    assert [len(row) for row in free] == [6, 6]
    assert cut[0] == free[0][: free[0].index(stop)]
    assert cut[1] == alone[0]  # left padding changes nothing


def firsts(rows: list[list[list[int]]]) -> list[list[int]]:
    """Each row's only message (no burst was allowed)."""
    assert all(len(row) == 1 for row in rows)
    return [row[0] for row in rows]


def tiny(tiny_model_dir: Path) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def greedy_rows(model: torch.nn.Module, prompt: list[int], new: int, penalty: float, stop_ids: list[int],
                soft: list[int] | None = None, push: float = 0.0) -> list[list[int]]:
    ids = torch.tensor([prompt])
    sampling = Sampling(do_sample=False, repetition_penalty=penalty, length_push=push)
    with torch.inference_mode():
        return firsts(decode(model, ids, torch.ones_like(ids), [RowPlan(new, soft[0] if soft else None)], sampling,
                             stop_ids, pad_id=0))


def test_prompt_tokens_and_the_end_of_turn_are_never_penalised(tiny_model_dir: Path) -> None:
    model = tiny(tiny_model_dir)
    prompt = [11, 12, 13, 14]
    first = greedy_rows(model, prompt, 1, 1.0, [])[0][0]
    # The model's favourite next token fills the prompt and is the end of turn: a penalty that
    # counted the prompt would push it down and the reply would run on.
    crowded = [*prompt, first, first, first]
    want = greedy_rows(model, crowded, 1, 1.0, [])[0][0]
    assert greedy_rows(model, crowded, 1, 100.0, [])[0][0] == want
    assert greedy_rows(model, crowded, 8, 100.0, [want]) == [[]]


def test_the_replys_own_tokens_are_penalised(tiny_model_dir: Path) -> None:
    model = tiny(tiny_model_dir)
    free = greedy_rows(model, [21, 22, 23], 24, 1.0, [])[0]
    assert len(set(free)) < len(free)  # a random toy model loops when nothing stops it
    penalised = greedy_rows(model, [21, 22, 23], 24, 1e6, [])[0]
    assert len(set(penalised)) == len(penalised)


def test_each_row_is_pushed_to_end_its_turn_at_its_soft_length(tiny_model_dir: Path) -> None:
    model = tiny(tiny_model_dir)
    ids = torch.tensor([[31, 32, 33], [41, 42, 43]])
    sampling = Sampling(do_sample=False, repetition_penalty=1.0, length_push=1e4)
    with torch.inference_mode():
        plans = [RowPlan(12, 2), RowPlan(12, 5)]
        unpushed = firsts(decode(model, ids, torch.ones_like(ids), plans,
                                 Sampling(do_sample=False, repetition_penalty=1.0), [], pad_id=0))
        stop = next(t for t in range(100, 200) if all(t not in row for row in unpushed))  # never said unpushed
        rows = firsts(decode(model, ids, torch.ones_like(ids), plans, sampling, [stop], pad_id=0))
    assert [len(row) for row in rows] == [2, 5]
    assert rows[1] == unpushed[1][:5]  # before its soft length a row is sampled as if unpushed


def burst_case(model: torch.nn.Module, prompt: list[int]) -> tuple[int, list[int], list[list[int]]]:
    """A stop token for the tiny model's greedy first message, what to feed between messages, and the
    two messages a burst must hold: worked out with plain one-message decodes of longer prompts."""
    greedy = Sampling(do_sample=False, repetition_penalty=1.0)
    ids = torch.tensor([prompt])
    free = firsts(decode(model, ids, torch.ones_like(ids), [RowPlan(12)], greedy, [], pad_id=0))[0]
    stop = next(token for k, token in enumerate(free) if k >= 2 and token not in free[:k])
    first = free[: free.index(stop)]
    between = [198, 1, 520, 9531, 198]
    rest = torch.tensor([[*prompt, *first, stop, *between]])
    second = firsts(decode(model, rest, torch.ones_like(rest), [RowPlan(6)], greedy, [stop], pad_id=0))[0]
    return stop, between, [first, second]


@pytest.mark.parametrize("rate", [1.0, 0.0])
def test_a_burst_goes_on_at_the_rows_rate_with_what_follows_a_line_fed_between(tiny_model_dir: Path,
                                                                               rate: float) -> None:
    model = tiny(tiny_model_dir)
    prompt = [11, 12, 13, 14]
    stop, between, (first, second) = burst_case(model, prompt)
    ids = torch.tensor([prompt, prompt])
    greedy = Sampling(do_sample=False, repetition_penalty=1.0)
    with torch.inference_mode():
        rows = decode(model, ids, torch.ones_like(ids), [RowPlan(6, messages=2, go_on=rate), RowPlan(6, go_on=1.0)],
                      greedy, [stop], pad_id=0, between=between)
    assert rows[0] == ([first, second] if rate else [first])
    assert rows[1] == [first]  # a row whose plan allows one message never goes on


def test_a_message_cut_at_its_cap_ends_the_burst(tiny_model_dir: Path) -> None:
    model = tiny(tiny_model_dir)
    stop, between, _ = burst_case(model, [11, 12, 13, 14])
    ids = torch.tensor([[11, 12, 13, 14]])
    with torch.inference_mode():
        rows = decode(model, ids, torch.ones_like(ids), [RowPlan(2, messages=3, go_on=1.0)],
                      Sampling(do_sample=False, repetition_penalty=1.0), [stop], pad_id=0, between=between)
    assert len(rows[0]) == 1 and len(rows[0][0]) == 2


def test_a_row_goes_on_at_its_owners_rate() -> None:
    torch.manual_seed(0)
    draws = [goes_on(0.3, do_sample=True) for _ in range(4000)]
    assert abs(sum(draws) / len(draws) - 0.3) < 0.03
    assert not goes_on(0.3, do_sample=False) and goes_on(0.6, do_sample=False)
