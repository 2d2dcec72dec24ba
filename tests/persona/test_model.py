"""The real bundled SmolLM2: convert, load, generate, train a few steps, save, reload, see it change."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file

from bench.shared import in_child, random_adapters, rss_mb
from persona.examples import Example
from persona.serving.worker import AdapterRef, InferenceWorker
from persona.training.lora import TrainConfig, encode, train_adapter, write_adapter
from persona.model import CHAT_VOICE_DIR, ModelUnavailable, base_model_id, chat_voice, load_base_model, model_source
from persona.prompt import Turn, build_prompt_ids
from twinbot.settings import Settings, load_settings

pytestmark = pytest.mark.slow


def test_bundled_conversion_is_a_reusable_safetensors_dir(bundled_model_dir: Path) -> None:
    assert (bundled_model_dir / "config.json").is_file()
    assert list(bundled_model_dir.glob("*.safetensors")) and (bundled_model_dir / "tokenizer.json").is_file()
    assert not [p for p in bundled_model_dir.parent.iterdir() if p.name.startswith(".")]  # no staging left
    assert base_model_id(load_settings(chat_voice=False)) == "bundled:SmolLM2-135M-Instruct"


def test_the_chat_voice_is_merged_into_the_bundled_base_and_can_be_turned_off(bundled_model_dir: Path,
                                                                               tmp_path: Path) -> None:
    voiced = load_settings(data_dir=bundled_model_dir.parents[1])  # the session's conversion: voice on
    plain = load_settings(data_dir=tmp_path, chat_voice=False)
    assert chat_voice(voiced) == CHAT_VOICE_DIR and chat_voice(plain) is None
    assert base_model_id(voiced).startswith("bundled:SmolLM2-135M-Instruct+voice-")
    assert Path(model_source(voiced)) == bundled_model_dir
    plain_dir = Path(model_source(plain))
    assert plain_dir.name == "SmolLM2-135M-Instruct"
    with_voice, without = (load_file(next(d.glob("*.safetensors"))) for d in (bundled_model_dir, plain_dir))
    voice = load_file(CHAT_VOICE_DIR / "adapter_model.safetensors")
    layer = "model.layers.3.mlp.down_proj"
    a = voice[f"base_model.model.{layer}.lora_A.weight"].float()
    b = voice[f"base_model.model.{layer}.lora_B.weight"].float()
    merged = without[f"{layer}.weight"] + (b @ a) * 2.0  # lora_alpha / r = 16 / 8
    assert torch.allclose(with_voice[f"{layer}.weight"], merged, atol=1e-5)
    assert not torch.equal(with_voice[f"{layer}.weight"], without[f"{layer}.weight"])


def test_hub_ids_need_explicit_permission(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, base_model="HuggingFaceTB/SmolLM2-360M-Instruct")
    with pytest.raises(ModelUnavailable, match="ALLOW_HUB_DOWNLOAD"):
        load_base_model(settings)


def test_real_base_generates_and_an_adapter_changes_it(bundled_model_dir: Path, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    settings = load_settings(data_dir=tmp_path, base_model=str(bundled_model_dir), model_dtype="float32")
    base, tokenizer = load_base_model(settings)
    prompt = build_prompt_ids(tokenizer, "Ana", [Turn("Bo", "what's your favourite fruit?", False)], [], 200)
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = base.generate(ids, max_new_tokens=6, do_sample=False)
        before = base(ids).logits[0, -1]
    assert out.shape[1] > ids.shape[1]
    assert tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()

    examples = [Example((Turn("Bo", f"question {i}?", False),), "durian, always durian!!") for i in range(8)]
    cfg = TrainConfig(max_steps=4, epochs=2.0, learning_rate=2e-3, batch_lines=4, bf16=True)
    model, result = train_adapter(base, tokenizer, encode(tokenizer, "Ana", examples, 96), cfg)
    assert result.steps == 4
    adapter = write_adapter(model, tmp_path / "adapter")

    fresh, _ = load_base_model(settings)
    reloaded = PeftModel.from_pretrained(fresh, adapter).eval()
    with torch.no_grad():
        after = reloaded(ids).logits[0, -1]
    assert not torch.allclose(before, after, atol=1e-3)
    durian = tokenizer("durian", add_special_tokens=False)["input_ids"][0]
    assert torch.log_softmax(after, -1)[durian] > torch.log_softmax(before, -1)[durian]


async def worker_memory_over_cold_adapters(settings: Settings, sources: list[Path], count: int) -> tuple[float, float]:
    """In a fresh process: resident MB once the worker has answered, and after `count` new twins'
    first replies (each adapter read from disk, folded, later evicted)."""
    worker = InferenceWorker.from_settings(settings)
    await worker.start()
    prompt = build_prompt_ids(worker.tokenizer, "Ana", [Turn("Bo", "hi there", False)], [], 200)
    await worker.generate(prompt, None, 2)
    before = rss_mb()
    for k in range(count):
        await worker.generate(prompt, AdapterRef(f"u{k}", str(sources[k % len(sources)]), 1.0), 2)
    after = rss_mb()
    await worker.close()
    assert worker.stats.adapter_loads == count
    return before, after


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the worker trims glibc's heap")
def test_cold_adapters_through_the_lru_leave_the_workers_memory_where_it_was(bundled_model_dir: Path,
                                                                             tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, base_model=str(bundled_model_dir), model_dtype="int8",
                             adapter_cache_size=8)
    sources = random_adapters(settings, tmp_path / "adapters", 8)
    before, after = in_child(worker_memory_over_cold_adapters, (settings, sources, 24), 2)
    # Eight adapters' int8 folds are ~105 MB, and the trims gave back more than that (-30 MB); untrimmed,
    # glibc kept their temporaries and the memory grew ~350 MB.
    assert after - before < 150, f"resident memory grew from {before:.0f} to {after:.0f} MB"
