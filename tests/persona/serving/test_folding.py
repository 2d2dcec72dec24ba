"""Serving adapters without peft: read from peft's own files, folded in (lone) or per row (mixed), they
compute what peft's LoRA does, in every serving dtype, for decoding steps (few rows) and prompts
(many rows) alike; switching never alters the base; files that do not fit are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from torch import nn
from transformers import AutoModelForCausalLM

from persona.serving.adapter_files import AdapterFileError
from persona.serving.folding import FoldableLinear, ServedAdapters, make_foldable
from persona.model import LORA_TARGETS, lora_config
from persona.serving.quantize import INT8_MAX_ROWS
from tests.persona.served import load, served_model


def peft_logits(tiny_model_dir: Path, dtype: str, adapter_dirs: dict[str, Path], ids: torch.Tensor,
                names: list[str | None]) -> torch.Tensor:
    """The reference: peft's own loading and LoRA layers, row i with adapter names[i] (None: base)."""
    model = PeftModel.from_pretrained(load(tiny_model_dir, dtype), adapter_dirs["one"], adapter_name="one")
    model.load_adapter(adapter_dirs["two"], adapter_name="two")
    with torch.inference_mode():
        if len(set(names)) == 1 and names[0] is not None:
            model.set_adapter(names[0])
            return model(ids).logits.float()
        return model(ids, adapter_names=[n or "__base__" for n in names]).logits.float()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
@pytest.mark.parametrize("length", [1, INT8_MAX_ROWS + 4])
def test_served_adapters_compute_what_peft_does(tiny_model_dir: Path, adapter_dirs: dict[str, Path], dtype: str,
                                                length: int) -> None:
    model, served = served_model(tiny_model_dir, dtype, adapter_dirs)
    q = model.model.layers[0].self_attn.q_proj
    assert isinstance(q, FoldableLinear) and (q.int8 is not None) == (dtype == "int8")
    pristine = q.weight.detach().clone()
    torch.manual_seed(0)
    ids = torch.randint(10, 1000, (4, length))
    tolerance = 1e-4 if dtype == "float32" else 0.05
    with torch.inference_mode():
        plain = model(ids).logits.float()
        for name in ("one", "two"):
            want = peft_logits(tiny_model_dir, dtype, adapter_dirs, ids, [name] * 4)
            served.set_adapter(name)
            got = model(ids).logits.float()
            served.set_adapter(None)
            assert (want - plain).abs().max() > 0.1  # the adapter moves the output
            assert (got - want).abs().max() < tolerance * max(1.0, float(want.abs().max())), name
        names = ["two", None, "one", "two"]
        want = peft_logits(tiny_model_dir, dtype, adapter_dirs, ids, names)
        with served.mixed(names):
            got = model(ids).logits.float()
        assert (got - want).abs().max() < tolerance * max(1.0, float(want.abs().max()))
        assert torch.equal(model(ids).logits.float(), plain)  # the mix ends with its batch
    assert torch.equal(q.weight, pristine)


def test_strength_scales_the_adapters_term_folded_and_mixed(tiny_model_dir: Path,
                                                            adapter_dirs: dict[str, Path]) -> None:
    model, served = served_model(tiny_model_dir, "float32", adapter_dirs, strength=2.5)
    reference = PeftModel.from_pretrained(load(tiny_model_dir, "float32"), adapter_dirs["one"], adapter_name="one")
    for module in reference.modules():
        if isinstance(module, LoraLayer):
            module.scale_layer(2.5)
    torch.manual_seed(0)
    ids = torch.randint(10, 1000, (2, 6))
    with torch.inference_mode():
        plain = model(ids).logits
        once = peft_logits(tiny_model_dir, "float32", adapter_dirs, ids, ["one"] * 2)
        want = reference(ids).logits
        served.set_adapter("one")
        folded = model(ids).logits
        served.set_adapter(None)
        with served.mixed(["one", None]):
            mixed = model(ids).logits
    assert (want - once).abs().max() > 0.1  # stronger is not the same as as-trained
    assert torch.allclose(folded, want, atol=1e-4) and torch.allclose(mixed[0], want[0], atol=1e-4)
    assert torch.allclose(mixed[1], plain[1], atol=1e-5)
    zero, served_zero = served_model(tiny_model_dir, "float32", adapter_dirs, strength=0.0)
    with torch.inference_mode():
        served_zero.set_adapter("one")
        assert torch.allclose(zero(ids).logits, plain, atol=1e-5)


def test_forgetting_the_adapter_in_use_serves_the_base_again(tiny_model_dir: Path,
                                                               adapter_dirs: dict[str, Path]) -> None:
    model, served = served_model(tiny_model_dir, "float32", adapter_dirs)
    q = model.model.layers[0].self_attn.q_proj
    with torch.inference_mode():
        served.set_adapter("one")
        first = q.fold
        served.set_adapter("two")
        served.set_adapter("one")
        assert q.fold is first  # made once, switched to by reference
        served.delete_adapter("one")
    assert q.fold is None and served.current is None and served.loaded == ["two"]


def test_adapter_files_that_do_not_fit_are_refused_with_a_reason(tiny_model_dir: Path, adapter_dirs: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    _, served = served_model(tiny_model_dir, "float32", adapter_dirs)
    with pytest.raises(AdapterFileError, match="cannot read"):
        served.load_adapter("missing", tmp_path / "nowhere")

    def variant(name: str, config: dict | None = None, weights: bytes | None = None) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        original = json.loads((adapter_dirs["one"] / "adapter_config.json").read_text())
        (folder / "adapter_config.json").write_text(json.dumps({**original, **(config or {})}))
        (folder / "adapter_model.safetensors").write_bytes(
            weights if weights is not None else (adapter_dirs["one"] / "adapter_model.safetensors").read_bytes())
        return folder

    with pytest.raises(AdapterFileError, match="use_dora"):
        served.load_adapter("dora", variant("dora", {"use_dora": True}))
    with pytest.raises(AdapterFileError, match="cannot read"):
        served.load_adapter("torn", variant("torn", weights=b"\x00" * 40))
    other = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           lora_config(8).__class__(r=8, target_modules=["k_proj"]))
    other.save_pretrained(tmp_path / "k_proj")
    with pytest.raises(AdapterFileError, match="no matching layer"):
        served.load_adapter("other", tmp_path / "k_proj")
    assert served.loaded == ["one", "two"]  # refused adapters leave nothing behind


def test_serving_needs_foldable_layers_and_bias_free_ones(tiny_model_dir: Path) -> None:
    with pytest.raises(TypeError, match="make_foldable"):
        ServedAdapters(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    biased = nn.Sequential()
    biased.add_module("q_proj", nn.Linear(4, 4))
    with pytest.raises(ValueError, match="bias"):
        make_foldable(biased, LORA_TARGETS)
