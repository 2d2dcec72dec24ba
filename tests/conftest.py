"""Fixtures shared by every test folder: settings on a temp data dir, with no stray .env or tokens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twinbot.settings import Settings, load_settings

pytest_plugins = ["tests.avatar.gan_fixtures"]

# Tests must never see an operator's .env or platform tokens from the environment.
for _var in ("DISCORD_TOKEN", "TELEGRAM_TOKEN", "DISCORD_CAPTURE_MESSAGES", "BASE_MODEL", "DATA_DIR"):
    os.environ.pop(_var, None)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # no .env here
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def bundled_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled SmolLM2 converted once per test session, exactly as the bot does on first start."""
    from persona.model import model_source

    data = tmp_path_factory.mktemp("bundled")
    return Path(model_source(load_settings(data_dir=data, base_model="bundled")))


@pytest.fixture(scope="session")
def tokenizer(bundled_model_dir: Path):  # noqa: ANN201 - a transformers tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_model_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:  # noqa: ANN001
    """A random-init 3M-parameter Llama with the real tokenizer, saved like any local base model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    path = tmp_path_factory.mktemp("tiny-model")
    LlamaForCausalLM(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
