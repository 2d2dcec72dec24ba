"""Weight-only int8 for decoding: the layers no adapter touches read half the bytes of bf16.

Decoding one token reads every weight of the model once, and on a CPU that memory traffic, not
arithmetic, sets the speed: int8 weights with a per-output-channel scale decode ~1.4x faster than
bf16 on this project's 2-core reference machine (measured in one run, same prompt), while the
next-token distribution barely moves (KL ~0.01 nats/token). Activations stay bf16.

The int8 kernel only wins for a few rows at a time (decode steps of a batch); on a prompt of
hundreds of tokens it is 2-3x slower than a bf16 matrix product, so each layer keeps its bf16
weight for those (+135 MB resident for SmolLM2-135M; the tied output layer shares the embedding's).
The layers that LoRA adapters wrap (`LORA_TARGETS`) stay plain bf16 Linears, so adapters load, mix
and switch exactly as before; training always uses the full-precision base.
"""

from __future__ import annotations

import torch
from torch import nn


class Int8Linear(nn.Module):
    """A bias-free Linear that decodes with an int8 copy of its weight (one bf16 scale per output row)."""

    INT8_MAX_ROWS = 16
    """Up to this many rows (tokens) per call the int8 kernel is faster than bf16; above it, slower."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if linear.bias is not None:
            raise ValueError("Int8Linear takes bias-free layers (every Linear of the Llama family is)")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        self.register_buffer("weight_int8", torch.round(weight / scale[:, None]).to(torch.int8))
        self.register_buffer("scales", scale.to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        if flat.shape[0] > self.INT8_MAX_ROWS:
            out = torch.nn.functional.linear(flat, self.weight.to(torch.bfloat16))
        else:
            out = torch._weight_int8pack_mm(flat, self.weight_int8, self.scales)
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)


def quantize_for_serving(model: nn.Module, keep: set[str]) -> int:
    """Swap every Linear not named in `keep` (by attribute name, e.g. "q_proj") for an Int8Linear.

    Returns how many layers were swapped. The model should be bf16: the swapped layers compute in bf16.
    """
    swapped = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear and name not in keep:
                setattr(module, name, Int8Linear(child))
                swapped += 1
    return swapped
