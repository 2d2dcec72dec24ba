"""Serving users' adapters on one base model: folded in for a lone adapter, per row for a mixed batch.

Unfolded, LoRA adds small matrix products to every adapted layer and token, a large share of a
one-row decoding step; so a batch on one adapter (every lone reply) runs on weights W + s·B·A made
once per loaded adapter and kept with it (int8 for an int8 model), which makes switching twins a
pointer swap. The base weights are never modified: a mixed batch adds each row's own low-rank term
to the base output of that row, as prompts (many rows) do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from persona.serving.adapter_files import LowRank, read_adapter
from persona.serving.quantize import Int8Linear, Int8Weight, few_rows


@dataclass(frozen=True)
class Fold:
    """One adapter folded into one projection: the folded weight, or (int8 serving) its int8 copy."""

    weight: torch.Tensor | None
    int8: Int8Weight | None
    low_rank: LowRank


class FoldableLinear(nn.Linear):
    """A bias-free Linear (q or v) that serves its `fold` when one is set, its own weight otherwise,
    plus, in a mixed batch, each listed row's own low-rank term (`rows`).

    With `int8` set, few-row calls use the int8 copies, as Int8Linear does.
    """

    int8: Int8Weight | None = None
    fold: Fold | None = None
    rows: tuple[tuple[torch.Tensor, LowRank], ...] = ()

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
            out = packed.linear(x)
        elif fold is None:
            out = functional.linear(x, self.weight)
        elif fold.weight is not None:
            out = functional.linear(x, fold.weight)
        else:
            out = functional.linear(x, self.weight) + fold.low_rank.delta(x)
        for index, low_rank in self.rows:
            out = out.index_add(0, index, low_rank.delta(x.index_select(0, index)))
        return out


def make_foldable(model: nn.Module, targets: tuple[str, ...]) -> None:
    """Turn the `targets` Linears into FoldableLinears; int8 ones if the rest of the model is int8."""
    int8 = any(isinstance(m, Int8Linear) for m in model.modules())
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if name in targets and type(child) is nn.Linear:
                if child.bias is not None:
                    raise ValueError(f"{name} has a bias: folding takes bias-free projections")
                setattr(module, name, FoldableLinear.of(child, int8))


class ServedAdapters:
    """The adapters loaded into a serving model (after `make_foldable`), and which of them it serves.

    `set_adapter(name)` serves one adapter folded in (its folds made on first use); `mixed(names)` serves
    row i with adapter names[i] (None: the base) for the duration of a batch. Each adapter's low-rank
    term is served `strength` times as strong as trained (given when it is loaded): above 1 it amplifies
    what the twin learned from its owner over the shared base, as CoPe's persona-contrastive decoding
    does with a second forward pass (logits of twin + (strength - 1) * (twin - base), to first order),
    for free.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, FoldableLinear)}
        if not self.layers:
            raise TypeError("the model has no FoldableLinear layers: call make_foldable first")
        self._low_rank: dict[str, dict[str, LowRank]] = {}
        self._folds: dict[str, dict[str, Fold]] = {}
        self.current: str | None = None
        self.folds_made = 0

    def load_adapter(self, name: str, path: Path, strength: float = 1.0) -> None:
        """Read adapter `name` from its files (AdapterFileError if they do not fit), to serve it `strength`
        times as strong as trained; replaces a loaded one."""
        dtype = next(iter(self.layers.values())).weight.dtype
        low_rank = read_adapter(path, self.layers, dtype)
        self.delete_adapter(name)
        self._low_rank[name] = {module: replace(layer, scaling=layer.scaling * strength)
                                for module, layer in low_rank.items()}

    @property
    def loaded(self) -> list[str]:
        return list(self._low_rank)

    def set_adapter(self, name: str | None) -> None:
        """Serve adapter `name` folded in (None: the base's own weights)."""
        if name == self.current:
            return
        folds = {} if name is None else self._folds.get(name) or self._make(name)
        for module, layer in self.layers.items():
            layer.fold = folds.get(module)
        self.current = name

    @contextmanager
    def mixed(self, names: list[str | None]) -> Iterator[None]:
        """Serve row i of the next forward calls with adapter names[i], unfolded, over the base."""
        self.set_adapter(None)
        groups = {name: torch.tensor([i for i, n in enumerate(names) if n == name])
                  for name in set(names) if name is not None}
        for module, layer in self.layers.items():
            layer.rows = tuple((index, self._low_rank[name][module]) for name, index in groups.items()
                               if module in self._low_rank[name])
        try:
            yield
        finally:
            for layer in self.layers.values():
                layer.rows = ()

    def delete_adapter(self, name: str) -> None:
        """Drop an adapter and its folds (evicted or retrained); the base is served if it was in use."""
        if self.current == name:
            self.set_adapter(None)
        self._low_rank.pop(name, None)
        self._folds.pop(name, None)

    def _make(self, name: str) -> dict[str, Fold]:
        folds = {}
        for module, low_rank in self._low_rank[name].items():
            base = self.layers[module]
            if base.int8 is not None:  # quantize the sum taken in fp32; prompts add the low-rank term instead
                folded = torch.addmm(base.weight.float(), low_rank.b.float(), low_rank.a.float(), alpha=low_rank.scaling)
                folds[module] = Fold(None, Int8Weight.of(folded), low_rank)
            else:
                folded = torch.addmm(base.weight, low_rank.b, low_rank.a, alpha=low_rank.scaling)
                folds[module] = Fold(folded, None, low_rank)
        self._folds[name] = folds
        self.folds_made += 1
        return folds
