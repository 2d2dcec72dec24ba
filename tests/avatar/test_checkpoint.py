"""The generator file: fp16 round trip, clear errors for damaged files, the shipped weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avatar.checkpoint import WeightsError, load_generator, save_generator
from avatar.faces import DEFAULT_STYLES
from avatar.model import GanConfig, Generator
from avatar.service import BUNDLED_WEIGHTS


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


def test_shipped_generator_loads_and_the_face_weights_are_small() -> None:
    assert sum(p.stat().st_size for p in BUNDLED_WEIGHTS.parent.glob("*.pt")) <= 10 * 1024 * 1024
    loaded = load_generator(BUNDLED_WEIGHTS)
    assert set(loaded.styles) <= set(DEFAULT_STYLES) and len(loaded.styles) >= 5
