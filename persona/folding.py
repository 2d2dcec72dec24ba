"""Serving with one adapter folded into the layers it adapts, cached per adapter.

Unfolded, LoRA costs a few small matrix products per adapted layer and token, a third of a one-row
decoding step of the bundled model. So a batch whose rows all use one adapter (every lone reply)
runs on folded weights W + s·B·A instead, computed once per loaded adapter and kept with it:
switching twins is then a pointer swap per layer (tens of microseconds) where re-folding in place
read and wrote all q/v weights (~5-10 ms). The base weights themselves are never modified, so the
base and mixed batches (peft's per-row `adapter_names`) see them exactly as loaded.

Cost: one folded copy per loaded adapter, bounded by the adapter LRU. For an int8 serving model the
copy is int8 (13 MB for the bundled model's q/v), and q/v then decode in int8 like every other
layer; prompts (many rows) run on the bf16 base weights plus the unfolded low-rank term, exactly.
For a bf16/fp32 serving model the copy is a folded weight in that dtype (26/53 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from torch import nn
from torch.nn import functional

from persona.quantize import Int8Linear, Int8Weight, few_rows


@dataclass(frozen=True)
class Fold:
    """One adapter folded into one projection: the folded weight, or (int8 serving) its int8 copy."""

    weight: torch.Tensor | None
    int8: Int8Weight | None
    a: torch.Tensor
    b: torch.Tensor
    scaling: float


class FoldableLinear(nn.Linear):
    """A bias-free Linear (q or v) that serves its `fold` when one is set, and its own weight otherwise.

    It stays an `nn.Linear` so that peft wraps it like any other; peft's per-row LoRA runs on top of
    `fold=None` for mixed batches. With `int8` set, few-row calls use the int8 copies, as Int8Linear does.
    """

    int8: Int8Weight | None = None
    fold: Fold | None = None

    @classmethod
    def of(cls, linear: nn.Linear, int8: bool) -> FoldableLinear:
        layer = cls(linear.in_features, linear.out_features, bias=False, device="meta")
        layer.weight = linear.weight
        layer.int8 = Int8Weight.of(linear.weight) if int8 else None
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fold = self.fold
        packed = self.int8 if fold is None else fold.int8
        if packed is not None and few_rows(x):
            return packed.linear(x)
        if fold is None:
            return functional.linear(x, self.weight)
        if fold.weight is not None:
            return functional.linear(x, fold.weight)
        return functional.linear(x, self.weight) + functional.linear(functional.linear(x, fold.a), fold.b) * fold.scaling


def make_foldable(model: nn.Module, targets: tuple[str, ...]) -> None:
    """Turn the `targets` Linears into FoldableLinears (before peft wraps them); int8 ones if the rest is int8."""
    int8 = any(isinstance(m, Int8Linear) for m in model.modules())
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if name in targets and type(child) is nn.Linear:
                if child.bias is not None:
                    raise ValueError(f"{name} has a bias: folding takes bias-free projections")
                setattr(module, name, FoldableLinear.of(child, int8))


class AdapterFolds:
    """Each loaded adapter's folds, made on its first lone use; `use` switches the model between them."""

    def __init__(self, model: PeftModel) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
        self.bases: list[FoldableLinear] = [layer.get_base_layer() for layer in self.layers]
        if not all(isinstance(base, FoldableLinear) for base in self.bases):
            raise TypeError("the adapted layers must be FoldableLinear: call make_foldable before get_peft_model")
        self._folds: dict[str, list[Fold]] = {}
        self.current: str | None = None

    def use(self, name: str | None) -> None:
        """Serve adapter `name` folded in (None: the base's own weights)."""
        if name == self.current:
            return
        folds = [None] * len(self.bases) if name is None else self._folds.get(name) or self._make(name)
        for base, fold in zip(self.bases, folds, strict=True):
            base.fold = fold
        self.current = name

    def forget(self, name: str) -> None:
        """Drop an adapter's folds (evicted or retrained); the base is served if it was in use."""
        if self.current == name:
            self.use(None)
        self._folds.pop(name, None)

    def _make(self, name: str) -> list[Fold]:
        folds = []
        for layer, base in zip(self.layers, self.bases, strict=True):
            a, b, scaling = layer.lora_A[name].weight, layer.lora_B[name].weight, layer.scaling[name]
            dtype = base.weight.dtype
            if base.int8 is not None:  # quantize the sum taken in fp32; prompts add the low-rank term instead
                folded = torch.addmm(base.weight.float(), b.float(), a.float(), alpha=scaling)
                folds.append(Fold(None, Int8Weight.of(folded), a.to(dtype), b.to(dtype), scaling))
            else:
                folded = torch.addmm(base.weight, b.to(dtype), a.to(dtype), alpha=scaling)
                folds.append(Fold(folded, None, a.to(dtype), b.to(dtype), scaling))
        self._folds[name] = folds
        return folds
