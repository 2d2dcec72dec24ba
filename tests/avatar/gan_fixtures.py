"""A tiny generator trained for real in a few seconds, shared by the avatar tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avatar.train import train

TINY_STYLES = ("lorelei", "pixel-art")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("gan")
    train(TINY_STYLES, 32, minutes=1, out=out, batch=8, steps=4, ngf=8, sample_every=2, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_face_weights(tiny_run: Path) -> Path:
    return tiny_run / "generator.pt"
