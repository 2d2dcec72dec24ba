"""The lean decoding steps of Llama models compute the model's own forward: in every serving dtype, with
an adapter folded in or one per row, over left-padded rows; other model families step through their forward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache, Qwen2Config, Qwen2ForCausalLM

from persona.serving.decoding import RowPlan, Sampling, decode
from persona.serving.decoding_steps import LlamaSteps, Steps, TransformersSteps, steps_for
from tests.persona.served import served_model

STEPS = 5


def fed(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor, lean: bool
        ) -> torch.Tensor:
    """The logits of every step (steps x rows x vocab) after the prompt, feeding the same `tokens` each step."""
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True)
    steps: Steps = LlamaSteps(model, cache, ids.shape[1] + len(tokens)) if lean else TransformersSteps(model, cache)
    logits = []
    for token in tokens:
        mask = torch.cat([mask, torch.ones(len(ids), 1, dtype=mask.dtype)], dim=1)
        positions = positions[:, -1:] + 1
        logits.append(steps(token, positions, mask))
    return torch.stack(logits)


def padded_prompts(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    ids = torch.randint(10, 1000, (rows, 12))
    mask = torch.ones_like(ids)
    for row in range(1, rows):
        mask[row, : 3 * row] = 0
        ids[row, : 3 * row] = 0
    return ids, mask


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
@pytest.mark.parametrize("names", [["one"], ["one", "one", "one"], ["two", None, "one"]])
def test_llama_steps_give_the_forward_logits(tiny_model_dir: Path, adapter_dirs: dict[str, Path], dtype: str,
                                             names: list[str | None]) -> None:
    model, served = served_model(tiny_model_dir, dtype, adapter_dirs)
    ids, mask = padded_prompts(len(names))
    tokens = torch.randint(10, 1000, (STEPS, len(names)))
    with torch.inference_mode():
        if len(set(names)) == 1:
            served.set_adapter(names[0])
            want, got = fed(model, ids, mask, tokens, lean=False), fed(model, ids, mask, tokens, lean=True)
        else:
            with served.mixed(names):
                want, got = fed(model, ids, mask, tokens, lean=False), fed(model, ids, mask, tokens, lean=True)
    assert (want[1:] - want[:-1]).abs().max() > 0.01  # each step's token moves the logits
    assert (got - want).abs().max() <= 1e-5 * max(1.0, float(want.abs().max()))


def tiny_qwen2(vocab_size: int) -> Qwen2ForCausalLM:
    """A model of another family (biased q/k/v projections): it steps through its own forward."""
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    return Qwen2ForCausalLM(config).eval()


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_greedy_decoding_is_what_transformers_generates(tiny_model_dir: Path, family: str) -> None:
    llama = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    model = llama if family == "llama" else tiny_qwen2(llama.config.vocab_size)
    ids, mask = padded_prompts(1)
    greedy = Sampling(do_sample=False, repetition_penalty=1.0)
    with torch.inference_mode():
        cache = DynamicCache()
        model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True)
        assert isinstance(steps_for(model, cache, 20), LlamaSteps if family == "llama" else TransformersSteps)
        ours = decode(model, ids, mask, [RowPlan(12)], greedy, [], pad_id=0)
        theirs = model.generate(ids, attention_mask=mask, max_new_tokens=12, min_new_tokens=12, do_sample=False)
    assert ours == [[theirs[0, ids.shape[1]:].tolist()]]
