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

from persona.serving.decoding import TOP_K, Sampling, candidates, decode, next_tokens, penalised


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
        free = decode(model, ids, mask, 6, greedy, [], pad_id=0)
        stop = free[0][2]
        cut = decode(model, ids, mask, 6, greedy, [stop], pad_id=0)
        alone = decode(model, ids[1:, 2:], mask[1:, 2:], 6, greedy, [stop], pad_id=0)
    assert [len(row) for row in free] == [6, 6]
    assert cut[0] == free[0][: free[0].index(stop)]
    assert cut[1] == alone[0]  # left padding changes nothing
