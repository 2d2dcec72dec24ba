"""A trained twin's adapter read straight from the files peft saved, for serving without peft.

Serving needs only each adapted layer's A and B matrices and the scale, and peft's `load_adapter`
spends most of a cold switch walking the model's modules in Python. The files stay peft's format,
so training keeps peft and `/export` hands users a standard adapter; anything this reader does not
understand is refused with a reason, never half-applied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch.nn import functional

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
_PREFIX = "base_model.model."
_SUFFIXES = {".lora_A.weight": "a", ".lora_B.weight": "b"}


class AdapterFileError(ValueError):
    """The adapter's files are missing, unreadable, or made for another model or recipe."""


@dataclass(frozen=True)
class LowRank:
    """One adapted layer of one adapter: its output moves by scaling * B(A(x))."""

    a: torch.Tensor
    b: torch.Tensor
    scaling: float

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        return functional.linear(functional.linear(x, self.a), self.b) * self.scaling


def _scaling(config: dict) -> float:
    if config.get("peft_type") != "LORA":
        raise AdapterFileError(f"not a LoRA adapter (peft_type {config.get('peft_type')!r})")
    unsupported = [key for key in ("use_dora", "rank_pattern", "alpha_pattern", "modules_to_save") if config.get(key)]
    if config.get("bias", "none") != "none":
        unsupported.append("bias")
    if unsupported:
        raise AdapterFileError(f"adapter uses {', '.join(unsupported)}, which serving does not support")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def read_adapter(path: Path, layers: Mapping[str, torch.nn.Linear], dtype: torch.dtype) -> dict[str, LowRank]:
    """Each adapted layer's LowRank (keyed like `layers`, by module name in the base model), in `dtype`.

    Raises AdapterFileError when a file is missing or unreadable, or when a weight names a layer the
    serving model does not have or has the wrong shape for it (an adapter of another base model).
    """
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        scaling = _scaling(config)
        tensors = load_file(path / WEIGHTS_FILE)
    except AdapterFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise AdapterFileError(f"cannot read the adapter in {path}: {exc}") from exc
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        suffix = next((s for s in _SUFFIXES if key.endswith(s)), None)
        module = key.removeprefix(_PREFIX).removesuffix(suffix or "")
        if suffix is None or not key.startswith(_PREFIX) or module not in layers:
            raise AdapterFileError(f"{path}: weight {key!r} has no matching layer in the serving model")
        pairs.setdefault(module, {})[_SUFFIXES[suffix]] = tensor
    adapted: dict[str, LowRank] = {}
    for module, pair in pairs.items():
        layer = layers[module]
        a, b = pair.get("a"), pair.get("b")
        if a is None or b is None or a.shape[1] != layer.in_features or b.shape != (layer.out_features, a.shape[0]):
            raise AdapterFileError(f"{path}: the weights of {module} do not fit the serving model "
                                   "(an adapter of another base model?)")
        adapted[module] = LowRank(a.to(dtype), b.to(dtype), scaling)
    if not adapted:
        raise AdapterFileError(f"{path}: the adapter has no weights")
    return adapted
