"""The 4× upscaler: shapes, determinism, its file, and the shipped one beating bicubic on new renders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avatar.checkpoint import WeightsError, load_upscaler, save_upscaler
from avatar.faces import DEFAULT_STYLES, PIXEL_STYLES
from avatar.service import BUNDLED_UPSCALER
from avatar.train_upscaler import pairs, score, train
from avatar.upscale import Upscaler, UpscalerConfig, bicubic


def test_upscaler_quadruples_and_is_deterministic() -> None:
    torch.manual_seed(0)
    net = Upscaler(UpscalerConfig(channels=8, layers=2)).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        a, b = net(x), net(x)
    assert a.shape == (2, 3, 256, 256) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1


@pytest.mark.parametrize("size", [(64, 64), (5, 7), (1, 3)])
def test_bicubic_by_subpixels_is_torchs_bicubic(size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size) * 2 - 1
    expected = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(bicubic(x), expected, atol=1e-5)


def test_upscaler_is_a_correction_of_bicubic() -> None:
    net = Upscaler(UpscalerConfig(channels=8, layers=2)).eval()
    with torch.no_grad():
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
        x = torch.rand(1, 3, 16, 16) * 1.6 - 0.8
        assert torch.allclose(net(x), bicubic(x).clamp(-1, 1))


def test_upscaler_file_round_trips_and_refuses_other_files(tmp_path: Path) -> None:
    net = Upscaler(UpscalerConfig(channels=8, layers=2)).eval()
    save_upscaler(tmp_path / "u.pt", net, {"note": 1})
    loaded = load_upscaler(tmp_path / "u.pt")
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(net(x), loaded(x), atol=2e-2)
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(WeightsError, match="bad.pt"):
        load_upscaler(tmp_path / "bad.pt")


def test_a_short_training_run_writes_a_scored_upscaler(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    summary = train(("lorelei", "pixel-art"), 8, minutes=1, out=tmp_path, steps=3, held_out=4,
                    cfg=UpscalerConfig(channels=8, layers=2), progress=False)
    assert summary["styles"] == ["lorelei"]  # nearest neighbour is exact for pixel art
    assert {"psnr_db", "ssim"} <= summary["held_out"].keys() and summary["steps"] == 3
    assert load_upscaler(tmp_path / "upscaler.pt").cfg == UpscalerConfig(channels=8, layers=2)


def test_shipped_upscaler_beats_bicubic_on_held_out_renders(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    styles = tuple(s for s in DEFAULT_STYLES if s not in PIXEL_STYLES and s != "thumbs")
    small, large = pairs(styles, 24, seed=97, cache=tmp_path)
    learned, plain = score(load_upscaler(BUNDLED_UPSCALER), small, large), score(bicubic, small, large)
    assert learned["psnr_db"] > plain["psnr_db"] + 1.0 and learned["ssim"] > plain["ssim"]


def test_the_bots_upscale_agrees_with_the_fp32_pass() -> None:
    torch.manual_seed(0)
    net = Upscaler(UpscalerConfig(channels=8, layers=2)).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.inference_mode():
        fast, exact = net.upscale(x), net(x)
    assert fast.dtype == torch.float32 and (fast - exact).abs().max() < 4 / 127.5
