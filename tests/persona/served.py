"""The tiny Llama served as the inference worker serves its base, with two random adapters saved by peft."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import get_peft_model
from torch import nn
from transformers import AutoModelForCausalLM

from persona.serving.attention import FP32_ATTENTION
from persona.serving.folding import ServedAdapters, make_foldable
from persona.model import LORA_TARGETS, lora_config
from persona.serving.quantize import quantize_for_serving


def load(tiny_model_dir: Path, dtype: str) -> nn.Module:
    """The tiny base in a serving dtype: float32, bfloat16 or int8."""
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=FP32_ATTENTION,
                                                dtype=torch.float32 if dtype == "float32" else torch.bfloat16)
    if dtype == "int8":
        quantize_for_serving(base, set(LORA_TARGETS))
    return base.eval()


def save_random_adapters(tiny_model_dir: Path, root: Path) -> dict[str, Path]:
    """Two adapters ("one", "two") with weights large enough to move the output, saved as training saves them."""
    dirs = {}
    for seed, name in enumerate(("one", "two")):
        torch.manual_seed(seed)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora_config(8))
        for param_name, param in model.named_parameters():
            if "lora_" in param_name:
                nn.init.normal_(param, std=0.3)
        model.save_pretrained(root / name)
        dirs[name] = root / name
    return dirs


def served_model(tiny_model_dir: Path, dtype: str, adapter_dirs: dict[str, Path],
                 strength: float = 1.0) -> tuple[nn.Module, ServedAdapters]:
    """The tiny Llama prepared as the inference worker prepares its base, both adapters loaded."""
    model = load(tiny_model_dir, dtype)
    make_foldable(model, LORA_TARGETS)
    served = ServedAdapters(model)
    for name, path in adapter_dirs.items():
        served.load_adapter(name, path, strength)
    return model, served
