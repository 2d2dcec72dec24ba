"""Preference tuning of the chat voice: the DPO loss, which drawn replies make pairs, and a real run on a tiny model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from peft import get_peft_model
from transformers import AutoModelForCausalLM

from persona.examples import Example
from persona.model import ALL_LINEAR, lora_config
from persona.prompt import Turn
from persona.training.lora import TrainConfig
from persona.training.preference import dpo_loss, pair_scores, pairs_from, train_preference

torch.set_num_threads(1)


def test_the_loss_is_log_two_where_the_policy_is_the_reference_and_falls_as_it_prefers_the_real_line() -> None:
    reference = torch.tensor([[-10.0, -8.0], [-5.0, -6.0]])
    same, accuracy = dpo_loss(reference.clone(), reference, torch.tensor(0.0), beta=0.1, sft_weight=1.0)
    assert same.item() == pytest.approx(math.log(2))
    assert accuracy.item() == 0.0
    # Both pairs' real lines 5 nats likelier, the drawn ones unchanged: margin 0.5 each.
    better, accuracy = dpo_loss(reference + torch.tensor([5.0, 0.0]), reference, torch.tensor(0.0), 0.1, 1.0)
    assert better.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.5))))
    assert accuracy.item() == 1.0
    # The chosen lines' own loss is added at its weight.
    with_sft, _ = dpo_loss(reference.clone(), reference, torch.tensor(3.0), 0.1, 0.5)
    assert with_sft.item() == pytest.approx(math.log(2) + 1.5)


def test_only_sendable_replies_that_differ_from_the_real_line_make_pairs(tokenizer) -> None:  # noqa: ANN001
    example = Example((Turn("Bo", "are you coming to lunch?", False),), "omw", recalled=("brb",))
    drawn = ["Bo: yes", "I'm sorry, as an AI assistant I can't", "OMW", "brb", "are you coming to lunch?",
             "", "sure, give me 5"]
    pairs = pairs_from(tokenizer, ["Ana"] * len(drawn), [example] * len(drawn), drawn, 96)
    assert len(pairs) == 1
    ids, labels = pairs[0].rejected
    taught = tokenizer.decode([token for token, label in zip(ids, labels) if label != -100], skip_special_tokens=True)
    assert taught == "sure, give me 5"
    real_ids, real_labels = pairs[0].chosen
    assert tokenizer.decode([t for t, label in zip(real_ids, real_labels) if label != -100],
                            skip_special_tokens=True) == "omw"
    # Both sides see the same prompt.
    assert real_ids[: real_labels.index(next(x for x in real_labels if x != -100))] == \
        ids[: labels.index(next(x for x in labels if x != -100))]


def test_a_run_makes_the_real_lines_likelier_than_the_drawn_ones_against_where_it_started(
        tiny_model_dir: Path, tokenizer) -> None:  # noqa: ANN001
    examples = [Example((Turn("Bo", f"what's up {i}?", False),), "nm lol u") for i in range(16)]
    drawn = [f"I think it is really important to stay positive {i}!" for i in range(16)]
    pairs = pairs_from(tokenizer, ["Ana"] * 16, examples, drawn, 64)
    assert len(pairs) == 16
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                           lora_config(8, ALL_LINEAR))
    pad = tokenizer.pad_token_id
    with torch.no_grad():
        before, _ = pair_scores(model.get_base_model(), pairs, pad)
    cfg = TrainConfig(learning_rate=2e-2, bf16=False, max_minutes=5)
    report = train_preference(model, pairs * 4, pad, cfg, beta=0.1, sft_weight=0.0, batch_pairs=4, progress=False)
    with torch.no_grad():
        after, _ = pair_scores(model.get_base_model(), pairs, pad)
    assert report["steps"] == 16
    assert report["last_loss"] < report["first_loss"]
    gained = (after[:, 0] - before[:, 0]) - (after[:, 1] - before[:, 1])
    assert bool((gained > 1.0).all()), gained
