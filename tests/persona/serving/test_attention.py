"""fp32 attention: what every loaded base uses; it agrees with bf16 SDPA and trains under autocast."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from persona.serving.attention import FP32_ATTENTION
from persona.model import load_base_model
from twinbot.settings import Settings


def test_the_loaded_base_attends_in_fp32_and_agrees_with_bf16_sdpa(tiny_model_dir: Path, settings: Settings) -> None:
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": "bfloat16"})
    model, _ = load_base_model(s)
    assert model.config._attn_implementation == FP32_ATTENTION
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16, attn_implementation="sdpa")
    ids = torch.randint(10, 1000, (2, 30))
    with torch.inference_mode():
        got, want = model(ids).logits.float(), reference(ids).logits.float()
    assert got.dtype == want.dtype and (got - want).abs().max() < 0.05 * want.abs().max()


def test_gradients_flow_through_fp32_attention_under_bf16_autocast(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation=FP32_ATTENTION)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    ids = torch.randint(10, 1000, (2, 30))
    grads = []
    for m in (model, reference):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m(ids, labels=ids).loss
        loss.backward()
        grads.append(m.model.layers[0].self_attn.q_proj.weight.grad)
    assert grads[0].abs().sum() > 0
    assert (grads[0] - grads[1]).abs().max() < 0.1 * grads[1].abs().max()
