"""The chat voice: each sender's own lines as examples, as /train makes a twin's, and the adapter as it ships."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from persona.model import ALL_LINEAR, lora_config
from persona.training.lora import TrainConfig
from persona.training.voice import ChatLine, ship, voice_examples


async def test_each_sender_learns_only_their_own_lines_even_under_a_shared_first_name() -> None:
    lines = [
        ChatLine("c1", "Person 1", "hey how are you", "Sam"),
        ChatLine("c1", "Person 2", "good, just got back from the lake", "Sam"),
        ChatLine("c1", "Person 1", "nice! was the lake cold", "Sam"),
        ChatLine("c2", "Person 1", "the lake again? lol", "Sam"),
        ChatLine("c2", "Person 3", "always the lake", "Ana"),
    ]
    per_sender = await voice_examples(lines, TrainConfig(recalled_lines=1))
    assert sorted(name for name, _ in per_sender) == ["Ana", "Sam", "Sam"]  # three people, two names
    targets = sorted(sorted(e.target for e in examples) for _, examples in per_sender)
    assert targets == [["always the lake"], ["good, just got back from the lake"],
                       ["hey how are you", "nice! was the lake cold", "the lake again? lol"]]
    person_1 = next(examples for _, examples in per_sender if len(examples) == 3)
    answered = {e.target: e.answered for e in person_1}
    assert answered["nice! was the lake cold"] == "good, just got back from the lake"
    # Their prompt recalls another of their own lines, never the line being learned.
    assert all(e.target not in e.recalled for e in person_1)
    assert any(e.recalled for e in person_1)


def test_the_shipped_adapter_is_bf16_without_peft_s_model_card_and_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                           lora_config(4, ALL_LINEAR))
    ship(model, tmp_path / "adapter")
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == ["adapter_config.json",
                                                                         "adapter_model.safetensors"]
    weights = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert weights and all(tensor.dtype == torch.bfloat16 for tensor in weights.values())
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    PeftModel.from_pretrained(base, tmp_path / "adapter").merge_and_unload()  # as persona.model merges it
