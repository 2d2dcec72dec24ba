"""The face GAN: shapes, conditioning, training data, checkpoints that resume, and the shipped file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.checkpoint import WeightsError, load_generator, save_generator
from avatar.faces import DEFAULT_STYLES, build_faces, licence_of, render_face
from avatar.model import Discriminator, GanConfig, Generator, mode_seeking_penalty, param_count, standing_stats
from avatar.service import BUNDLED_WEIGHTS
from avatar.train import train
from tests.avatar.gan_fixtures import TINY_STYLES


def test_shapes_and_size_of_the_shipped_architecture() -> None:
    cfg = GanConfig(n_styles=len(DEFAULT_STYLES))
    g, d = Generator(cfg), Discriminator(cfg)
    assert 1.5e6 < param_count(g) < 3e6
    z = torch.randn(3, cfg.nz)
    images = g(z, torch.tensor([0, 1, 2]))
    assert images.shape == (3, 3, 64, 64) and images.min() >= -1 and images.max() <= 1
    assert d(images, torch.tensor([0, 1, 2])).shape == (3,)


def test_the_style_conditions_the_output() -> None:
    torch.manual_seed(0)
    g = Generator(GanConfig(n_styles=2, ngf=8)).eval()
    z = torch.randn(1, g.cfg.nz)
    with torch.no_grad():
        a, b = g(z, torch.tensor([0])), g(z, torch.tensor([1]))
    assert not torch.allclose(a, b)


def test_standing_stats_give_the_generator_its_own_batchnorm_statistics() -> None:
    torch.manual_seed(0)
    g = Generator(GanConfig(n_styles=2, ngf=8))
    for module in g.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.fill_(3.0)  # statistics that belong to other weights (like an EMA copy's)
    z, style = torch.randn(256, g.cfg.nz), torch.randint(2, (256,))
    with torch.no_grad():
        own = g.train()(z, style)
        assert (g.eval()(z, style) - own).abs().mean() > 0.1
        standing_stats(g, batches=8)
        assert not g.training and (g(z, style) - own).abs().mean() < 0.05


def test_mode_seeking_penalty_punishes_a_generator_that_ignores_z() -> None:
    z = torch.randn(8, 16)
    same = torch.zeros(8, 3, 4, 4)
    varied = torch.randn(8, 3, 4, 4)
    assert mode_seeking_penalty(same, z) > 1000 * mode_seeking_penalty(varied, z)


def test_rendered_training_faces_are_deterministic_and_licensed(tmp_path: Path) -> None:
    face = render_face("lorelei", "seed-1")
    assert face.shape == (64, 64, 3) and face.dtype == np.uint8 and face.std() > 10
    assert np.array_equal(face, render_face("lorelei", "seed-1"))
    images, labels = build_faces(("lorelei", "thumbs"), 6, seed=3, cache_dir=tmp_path)
    assert images.shape == (6, 64, 64, 3) and list(labels) == [0, 1, 0, 1, 0, 1]
    cached, _ = build_faces(("lorelei", "thumbs"), 6, seed=3, cache_dir=tmp_path)
    assert np.array_equal(images, cached) and len(list(tmp_path.glob("faces-*.npz"))) == 1
    assert licence_of("lorelei").licence == "CC0 1.0" and licence_of("micah").licence == "CC BY 4.0"
    with pytest.raises(ValueError, match="unknown DiceBear style"):
        render_face("no-such-style", "x")


def test_training_writes_samples_checkpoint_and_generator(tiny_run: Path) -> None:
    loaded = load_generator(tiny_run / "generator.pt")
    assert loaded.styles == TINY_STYLES and loaded.meta["steps"] == 4
    assert (tiny_run / "checkpoint.pt").is_file() and (tiny_run / "samples.png").is_file()
    assert sorted(p.name for p in (tiny_run / "samples").iterdir()) == ["step000002.png", "step000004.png"]
    assert not list(tiny_run.glob("*.tmp"))


def test_training_resumes_from_its_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    shutil.copytree(tiny_run, out)
    summary = train(TINY_STYLES, 32, minutes=1, out=out, batch=8, steps=6, ngf=8, sample_every=100,
                    progress=False, cache=tiny_run / "cache")
    assert summary["steps"] == 6 and summary["images_seen"] == 6 * 8
    with pytest.raises(SystemExit, match="another configuration"):
        train(("lorelei",), 32, minutes=1, out=out, batch=8, steps=8, ngf=8, progress=False)


def test_generator_file_round_trips_in_fp16(tmp_path: Path) -> None:
    g = Generator(GanConfig(n_styles=2, ngf=8)).eval()
    save_generator(tmp_path / "g.pt", g, ("a", "b"), {"note": 1})
    loaded = load_generator(tmp_path / "g.pt")
    z = torch.randn(2, g.cfg.nz)
    with torch.no_grad():
        assert torch.allclose(g(z, torch.tensor([0, 1])), loaded.generator(z, torch.tensor([0, 1])), atol=2e-2)


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04garbage"])
def test_a_corrupt_weights_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "generator.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="generator.pt"):
        load_generator(path)
    with pytest.raises(WeightsError, match="not found"):
        load_generator(tmp_path / "missing.pt")


def test_shipped_generator_loads_and_is_small() -> None:
    assert BUNDLED_WEIGHTS.stat().st_size <= 10 * 1024 * 1024
    loaded = load_generator(BUNDLED_WEIGHTS)
    assert set(loaded.styles) <= set(DEFAULT_STYLES) and len(loaded.styles) >= 5
