"""Int8 serving: the quantized layer computes what the Linear did, and on the real base the model keeps
its choices and still takes LoRA adapters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel, get_peft_model
from torch import nn

from persona.model import LORA_TARGETS, load_base_model, lora_config
from persona.serving.quantize import INT8_MAX_ROWS, Int8Linear, quantize_for_serving
from twinbot.settings import load_settings


def test_int8_linear_matches_the_linear_it_replaces() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(96, 40, bias=False).to(torch.bfloat16)
    quantized = Int8Linear(linear)
    assert quantized.int8.values.dtype == torch.int8
    for rows in (1, 3, INT8_MAX_ROWS + 1):  # the int8 kernel, and the bf16 one for long prompts
        x = torch.randn(rows, 5, 96, dtype=torch.bfloat16)
        got, want = quantized(x[:, :1]).float(), linear(x[:, :1]).float()
        assert got.shape == want.shape == (rows, 1, 40)
        assert (got - want).abs().max() < 0.05 * want.abs().max()


def test_quantize_keeps_the_named_layers_and_refuses_biases() -> None:
    model = nn.Sequential()
    model.add_module("q_proj", nn.Linear(8, 8, bias=False))
    model.add_module("down_proj", nn.Linear(8, 8, bias=False))
    assert quantize_for_serving(model, {"q_proj"}) == 1
    assert type(model.q_proj) is nn.Linear and isinstance(model.down_proj, Int8Linear)
    with pytest.raises(ValueError, match="bias-free"):
        Int8Linear(nn.Linear(4, 4))


@pytest.mark.slow
def test_int8_serving_of_the_real_base_agrees_with_bf16_and_takes_adapters(bundled_model_dir: Path,
                                                                           tmp_path: Path) -> None:
    torch.set_num_threads(2)
    base = load_settings(data_dir=tmp_path, base_model=str(bundled_model_dir))
    bf16, tokenizer = load_base_model(base.model_copy(update={"model_dtype": "bfloat16"}))
    int8, _ = load_base_model(base.model_copy(update={"model_dtype": "int8"}))
    layer = int8.model.layers[0]
    assert isinstance(int8.lm_head, Int8Linear) and isinstance(layer.mlp.down_proj, Int8Linear)
    assert all(type(getattr(layer.self_attn, name)) is nn.Linear for name in LORA_TARGETS)

    ids = torch.tensor([tokenizer("Jim: did you see what Dwight did to my stapler? Pam: yes, jello again")["input_ids"]])
    with torch.inference_mode():
        want, got = bf16(ids).logits.float().log_softmax(-1), int8(ids).logits.float().log_softmax(-1)
    kl = torch.nn.functional.kl_div(got, want, log_target=True, reduction="none").sum(-1).mean()
    assert kl < 0.05
    assert (want.argmax(-1) == got.argmax(-1)).float().mean() >= 0.8

    # An adapter (random but non-zero) moves both models the same way.
    torch.manual_seed(0)
    trained = get_peft_model(load_base_model(base, dtype=torch.float32)[0], lora_config(8))
    for name, param in trained.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(param, std=0.05)
    trained.save_pretrained(tmp_path / "adapter")
    with torch.inference_mode():
        shifted_bf16 = PeftModel.from_pretrained(bf16, tmp_path / "adapter")(ids).logits.float().log_softmax(-1)
        shifted_int8 = PeftModel.from_pretrained(int8, tmp_path / "adapter")(ids).logits.float().log_softmax(-1)
    assert (shifted_int8 - got).abs().max() > 0.5  # the adapter does something
    assert torch.nn.functional.kl_div(shifted_int8, shifted_bf16, log_target=True, reduction="none").sum(-1).mean() < 0.05
