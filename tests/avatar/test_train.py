"""The GAN trainer on a tiny run: what it writes, and resuming from its checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from avatar.checkpoint import load_generator
from avatar.train import train
from tests.avatar.gan_fixtures import TINY_STYLES


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
