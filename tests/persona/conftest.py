"""Fixtures of the persona tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.persona.served import save_random_adapters


@pytest.fixture(scope="module")
def adapter_dirs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two random adapters for the tiny Llama, saved by peft."""
    return save_random_adapters(tiny_model_dir, tmp_path_factory.mktemp("adapters"))
