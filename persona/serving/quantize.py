"""Weight-only int8 for decoding: the layers no adapter touches read half the bytes of bf16.

Decoding a token reads every weight once, and on a CPU that memory traffic, not arithmetic, sets
the speed, so int8 weights (one scale per output row) decode faster while the next-token
distribution barely moves. Over a long prompt the int8 kernel is slower than a bf16 matrix product,
so each layer keeps its bf16 weight for those; the layers adapters change are left to
`persona.serving.folding`, and training and scoring never quantize.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

INT8_MAX_ROWS = 16
"""Up to this many rows (tokens) per call the int8 kernel is faster than bf16; above it, slower."""


@dataclass(frozen=True)
class Int8Weight:
    """A weight matrix as int8 with one bf16 scale per output row."""

    values: torch.Tensor
    scales: torch.Tensor

    @classmethod
    def of(cls, weight: torch.Tensor) -> Int8Weight:
        weight = weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        return cls(torch.round(weight / scale[:, None]).to(torch.int8), scale.to(torch.bfloat16))

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """`x` (..., in) times the weight's transpose, computed in bf16, returned in x's dtype."""
        flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        out = torch._weight_int8pack_mm(flat, self.values, self.scales)
        return out.reshape(*x.shape[:-1], out.shape[-1]).to(x.dtype)


def few_rows(x: torch.Tensor) -> bool:
    """Whether a call is decoding-sized (the int8 kernel's side of INT8_MAX_ROWS)."""
    return x.numel() <= INT8_MAX_ROWS * x.shape[-1]


class Int8Linear(nn.Module):
    """A bias-free Linear that decodes with an int8 copy of its weight (one bf16 scale per output row)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if linear.bias is not None:
            raise ValueError("Int8Linear takes bias-free layers (every Linear of the Llama family is)")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.int8 = Int8Weight.of(linear.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if few_rows(x):
            return self.int8.linear(x)
        return torch.nn.functional.linear(x.to(torch.bfloat16), self.weight.to(torch.bfloat16)).to(x.dtype)


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
