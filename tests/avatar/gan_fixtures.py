"""A tiny generator trained for real in a few seconds, and an encoder to match, shared by the avatar tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avatar.checkpoint import load_generator, save_encoder
from avatar.encoder import EncoderConfig, FaceEncoder
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


@pytest.fixture(scope="session")
def tiny_encoder_weights(tiny_face_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained encoder of the tiny generator's shape: `/avatar like` runs end to end, likeness aside."""
    nz = load_generator(tiny_face_weights).generator.cfg.nz
    path = tmp_path_factory.mktemp("encoder") / "encoder.pt"
    save_encoder(path, FaceEncoder(EncoderConfig(n_styles=len(TINY_STYLES), nz=nz, width=8)), TINY_STYLES, {})
    return path
