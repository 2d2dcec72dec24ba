"""The face encoder and the search behind `/avatar like`: shapes, determinism, refinement, training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avatar.checkpoint import load_encoder, load_generator, save_encoder
from avatar.encoder import EncoderConfig, FaceEncoder, find_face
from avatar.faces import build_faces
from avatar.likeness import FaceFinder
from avatar.quality import ssim, to_tensor
from avatar.service import BUNDLED_ENCODER, BUNDLED_WEIGHTS
from avatar.train_encoder import inversion_scores, train
from tests.avatar.gan_fixtures import TINY_STYLES


def test_encoder_shapes_and_determinism() -> None:
    torch.manual_seed(0)
    enc = FaceEncoder(EncoderConfig(n_styles=3, nz=16, width=8)).eval()
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        (z, logits), (z2, _) = enc(x), enc(x)
    assert z.shape == (4, 16) and logits.shape == (4, 3) and torch.equal(z, z2)


def test_encoder_file_round_trips_with_its_styles(tmp_path: Path) -> None:
    enc = FaceEncoder(EncoderConfig(n_styles=2, nz=16, width=8)).eval()
    save_encoder(tmp_path / "e.pt", enc, ("a", "b"), {"steps": 0})
    loaded = load_encoder(tmp_path / "e.pt")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(enc(x)[0], loaded.encoder(x)[0], atol=3e-2)
    assert loaded.styles == ("a", "b") and loaded.meta == {"steps": 0}


def test_refinement_brings_the_face_closer_to_the_target(tiny_face_weights: Path) -> None:
    torch.manual_seed(0)
    loaded = load_generator(tiny_face_weights)
    g = loaded.generator
    enc = FaceEncoder(EncoderConfig(n_styles=len(TINY_STYLES), nz=g.cfg.nz, width=8)).eval()
    with torch.no_grad():
        target = g(torch.randn(1, g.cfg.nz), torch.tensor([1]))
    rough = find_face(g, enc, target, steps=0)
    refined = find_face(g, enc, target, steps=30)
    again = find_face(g, enc, target, steps=30)
    assert refined.ssim > rough.ssim and torch.equal(refined.code, again.code)
    with torch.no_grad():
        redrawn = g.draw(refined.code[None], torch.tensor([refined.style]))
    assert abs(ssim(redrawn, target).item() - refined.ssim) < 1e-5


def test_a_short_training_run_writes_a_scored_encoder(tiny_face_weights: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    summary = train(tiny_face_weights, 16, minutes=1, out=tmp_path, width=8, batch=4, held_out=2, steps=3,
                    progress=False)
    assert summary["steps"] == 3 and 0 <= summary["style_accuracy"] <= 1
    assert summary["refined"]["refine_steps"] > 0 and summary["encoded_only"]["refine_steps"] == 0
    assert load_encoder(tmp_path / "encoder.pt").styles == TINY_STYLES
    again = train(tiny_face_weights, 16, minutes=1, out=tmp_path / "again", width=8, batch=4, held_out=2, steps=1,
                  progress=False, init=tmp_path / "encoder.pt")
    assert again["init"] == str(tmp_path / "encoder.pt")
    with pytest.raises(ValueError, match="another shape"):
        train(tiny_face_weights, 16, minutes=1, out=tmp_path / "wide", width=16, steps=1, progress=False,
              init=tmp_path / "encoder.pt")


def test_shipped_encoder_finds_new_renders_again(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    loaded, encoder = load_generator(BUNDLED_WEIGHTS), load_encoder(BUNDLED_ENCODER)
    FaceFinder(loaded, encoder)  # trained against the shipped generator: the same styles
    faces, _ = build_faces(loaded.styles, len(loaded.styles), seed=98, cache_dir=tmp_path)
    refined = inversion_scores(loaded, encoder.encoder, to_tensor(faces))
    rough = inversion_scores(loaded, encoder.encoder, to_tensor(faces), steps=0)
    assert refined["ssim"] > rough["ssim"] and refined["ssim"] > 0.6
