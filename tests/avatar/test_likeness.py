"""From a picture to a face: squaring and shrinking, transparency, and the encoder-generator pairing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avatar.checkpoint import LoadedEncoder, load_generator
from avatar.encoder import EncoderConfig, FaceEncoder
from avatar.likeness import FaceFinder, face_input
from tests.avatar.gan_fixtures import TINY_STYLES


def test_face_input_takes_the_centre_square_on_white() -> None:
    picture = Image.new("RGBA", (300, 100), (0, 0, 0, 0))  # transparent, wide
    picture.paste((255, 0, 0, 255), (100, 0, 200, 100))  # the centre square is red
    x = face_input(picture)
    assert x.shape == (1, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    centre = x[0, :, 32, 32].tolist()
    assert centre == pytest.approx([1.0, -1.0, -1.0], abs=0.02)
    edge = face_input(Image.new("RGBA", (80, 80), (0, 0, 0, 0)))
    assert torch.allclose(edge, torch.ones_like(edge))  # transparency composited on white


def test_finder_refuses_an_encoder_of_other_styles(tiny_face_weights: Path) -> None:
    loaded = load_generator(tiny_face_weights)
    enc = FaceEncoder(EncoderConfig(n_styles=2, nz=loaded.generator.cfg.nz, width=8))
    with pytest.raises(ValueError, match="styles"):
        FaceFinder(loaded, LoadedEncoder(enc, ("micah", "thumbs"), {}))


def test_finder_gives_a_latent_and_one_of_the_styles(tiny_face_weights: Path) -> None:
    torch.manual_seed(0)
    loaded = load_generator(tiny_face_weights)
    enc = FaceEncoder(EncoderConfig(n_styles=len(TINY_STYLES), nz=loaded.generator.cfg.nz, width=8)).eval()
    finder = FaceFinder(loaded, LoadedEncoder(enc, TINY_STYLES, {}), steps=3)
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    likeness = finder.find(picture)
    assert likeness.latent.shape == (loaded.generator.code_dim,) and likeness.latent.dtype == np.float32
    assert likeness.style in TINY_STYLES and -1 <= likeness.ssim <= 1
