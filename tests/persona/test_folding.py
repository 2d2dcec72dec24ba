"""Folded serving: an adapter's folds compute what peft's unfolded LoRA does, in every serving dtype,
for decoding steps (few rows) and prompts (many rows) alike, and switching never alters the base."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel, get_peft_model
from torch import nn
from transformers import AutoModelForCausalLM

from persona.attention import FP32_ATTENTION
from persona.folding import AdapterFolds, FoldableLinear, make_foldable
from persona.model import LORA_TARGETS, lora_config
from persona.quantize import INT8_MAX_ROWS, quantize_for_serving


def serving_model(tiny_model_dir: Path, dtype: str) -> tuple[PeftModel, AdapterFolds]:
    """The tiny Llama prepared as the inference worker prepares its base, with two random adapters."""
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=FP32_ATTENTION,
                                                dtype=torch.float32 if dtype == "float32" else torch.bfloat16)
    if dtype == "int8":
        quantize_for_serving(base, set(LORA_TARGETS))
    make_foldable(base, LORA_TARGETS)
    model = get_peft_model(base, lora_config(8), adapter_name="one")
    model.add_adapter("two", lora_config(8))
    for name, param in model.named_parameters():
        if "lora_" in name:
            nn.init.normal_(param, std=0.3)
    return model.eval(), AdapterFolds(model)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
@pytest.mark.parametrize("rows", [1, INT8_MAX_ROWS + 4])
def test_folds_compute_what_unfolded_lora_does(tiny_model_dir: Path, dtype: str, rows: int) -> None:
    model, folds = serving_model(tiny_model_dir, dtype)
    ids = torch.randint(10, 1000, (1, rows))
    q = model.get_base_model().model.layers[0].self_attn.q_proj.get_base_layer()
    assert isinstance(q, FoldableLinear) and (q.int8 is not None) == (dtype == "int8")
    pristine = q.weight.detach().clone()
    with torch.inference_mode():
        with model.disable_adapter():
            plain = model(ids).logits.float()
        for name in ("one", "two"):
            model.set_adapter(name)
            want = model(ids).logits.float()
            folds.use(name)
            with model.disable_adapter():
                got = model(ids).logits.float()
            folds.use(None)
            assert (want - plain).abs().max() > 0.1  # the adapter moves the output
            tolerance = 1e-4 if dtype == "float32" else 0.05 * want.abs().max()
            assert (got - want).abs().max() < tolerance, name
    assert torch.equal(q.weight, pristine)


def test_forgetting_the_adapter_in_use_serves_the_base_again(tiny_model_dir: Path) -> None:
    model, folds = serving_model(tiny_model_dir, "float32")
    q = model.get_base_model().model.layers[0].self_attn.q_proj.get_base_layer()
    with torch.inference_mode():
        folds.use("one")
        first = q.fold
        folds.use("two")
        folds.use("one")
        assert q.fold is first  # made once, switched to by reference
        folds.forget("one")
    assert q.fold is None and folds.current is None


def test_folding_needs_foldable_layers_and_bias_free_ones(tiny_model_dir: Path) -> None:
    plain = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora_config(8))
    with pytest.raises(TypeError, match="make_foldable"):
        AdapterFolds(plain)
    biased = nn.Sequential()
    biased.add_module("q_proj", nn.Linear(4, 4))
    with pytest.raises(ValueError, match="bias"):
        make_foldable(biased, LORA_TARGETS)
