"""The 4× upscaler: shapes, determinism, style biases, its file, and the shipped one beating bicubic on new renders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avatar.checkpoint import WeightsError, load_upscaler, save_upscaler
from avatar.faces import DEFAULT_STYLES, PIXEL_STYLES
from avatar.service import BUNDLED_UPSCALER
from avatar.train_upscaler import main, pairs, score, start_from, train
from avatar.upscale import Upscaler, UpscalerConfig, bicubic

TINY = UpscalerConfig(channels=8, layers=2, styles=("lorelei", "micah"))


def tiny(seed: int = 0) -> Upscaler:
    torch.manual_seed(seed)
    net = Upscaler(TINY).eval()
    with torch.no_grad():
        net.style_bias.normal_(0, 0.5)  # as if trained: each style moves the output its own way
    return net


def test_upscaler_quadruples_and_is_deterministic() -> None:
    net = tiny()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    ids = net.style_ids(["lorelei", "micah"])
    with torch.inference_mode():
        a, b = net(x, ids), net(x, ids)
    assert a.shape == (2, 3, 256, 256) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1


def test_each_style_has_its_own_bias_and_unknown_styles_get_their_mean() -> None:
    net = tiny()
    assert net.style_ids(["micah", "lorelei", "notionists"]).tolist() == [1, 0, -1]
    x = (torch.rand(1, 3, 16, 16) * 2 - 1).expand(3, -1, -1, -1)
    with torch.inference_mode():
        lorelei, micah, unknown = net(x, torch.tensor([0, 1, -1]))
    assert not torch.allclose(lorelei, micah)
    with torch.no_grad():
        net.style_bias.copy_(net.style_bias.mean(0, keepdim=True).expand_as(net.style_bias))
        assert torch.allclose(net(x[:1], torch.tensor([0]))[0], unknown, atol=1e-6)


def test_an_upscaler_of_no_styles_upscales_any() -> None:
    net = Upscaler(UpscalerConfig(channels=8, layers=2)).eval()
    with torch.inference_mode():
        assert net(torch.zeros(1, 3, 8, 8), net.style_ids(["lorelei"])).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("size", [(64, 64), (5, 7), (1, 3)])
def test_bicubic_by_subpixels_is_torchs_bicubic(size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size) * 2 - 1
    expected = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(bicubic(x), expected, atol=1e-5)


def test_upscaler_is_a_correction_of_bicubic() -> None:
    net = tiny()
    with torch.no_grad():
        net.out.weight.zero_()
        net.out.bias.zero_()
        x = torch.rand(1, 3, 16, 16) * 1.6 - 0.8
        assert torch.allclose(net(x, net.style_ids(["micah"])), bicubic(x).clamp(-1, 1))


def test_upscaler_file_round_trips_and_refuses_other_files(tmp_path: Path) -> None:
    net = tiny()
    save_upscaler(tmp_path / "u.pt", net, {"note": 1})
    loaded = load_upscaler(tmp_path / "u.pt")
    assert loaded.cfg == TINY
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    ids = torch.tensor([1, -1])
    with torch.no_grad():
        assert torch.allclose(net(x, ids), loaded(x, ids), atol=2e-2)
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(WeightsError, match="bad.pt"):
        load_upscaler(tmp_path / "bad.pt")


def test_a_short_training_run_writes_a_scored_upscaler_and_goes_on_from_it(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = UpscalerConfig(channels=8, layers=2)
    summary = train(("lorelei", "pixel-art", "micah"), 8, minutes=1, out=tmp_path, steps=3, held_out=4,
                    cfg=cfg, progress=False)
    assert summary["styles"] == ["lorelei", "micah"]  # nearest neighbour is exact for pixel art
    assert {"psnr_db", "ssim"} <= summary["held_out"].keys() and summary["steps"] == 3
    first = load_upscaler(tmp_path / "upscaler.pt")
    assert first.cfg == UpscalerConfig(channels=8, layers=2, styles=("lorelei", "micah"))
    assert first.style_bias.abs().sum() > 0  # the styles' biases were trained

    (tmp_path / "first.pt").write_bytes((tmp_path / "upscaler.pt").read_bytes())
    again = train(("lorelei", "micah"), 8, minutes=1, out=tmp_path, steps=2, held_out=4, cfg=cfg, progress=False,
                  init=tmp_path / "first.pt")
    assert again["init"].endswith("first.pt") and again["steps"] == 2


def test_a_wider_upscaler_is_narrowed_to_its_used_channels(tmp_path: Path) -> None:
    wide = Upscaler(UpscalerConfig(channels=8, layers=3, styles=TINY.styles)).eval()
    with torch.no_grad():
        wide.style_bias.normal_(0, 0.5)
        for conv in wide.convs:  # two channels of each layer are dead: nothing makes them, ReLU gives 0
            conv.weight[[2, 5]] = 0
            conv.bias[[2, 5]] = -1
        wide.style_bias[:, :, [2, 5]] = 0
    save_upscaler(tmp_path / "wide.pt", wide, {})
    narrow = start_from(tmp_path / "wide.pt", UpscalerConfig(channels=6, layers=3, styles=TINY.styles)).eval()
    x, ids = torch.rand(2, 3, 8, 8) * 2 - 1, torch.tensor([0, -1])
    with torch.no_grad():
        assert torch.allclose(narrow(x, ids), load_upscaler(tmp_path / "wide.pt")(x, ids), atol=1e-5)


def test_going_on_from_an_upscaler_of_another_shape_is_refused(tmp_path: Path) -> None:
    save_upscaler(tmp_path / "other.pt", tiny(), {})
    with pytest.raises(SystemExit, match="another shape or other styles"):
        main(["--styles", "lorelei,micah", "--images", "4", "--steps", "1", "--channels", "16", "--layers", "2",
              "--init", str(tmp_path / "other.pt"), "--out", str(tmp_path), "--cache", str(tmp_path)])
    with pytest.raises(SystemExit, match="not found"):
        main(["--styles", "lorelei", "--images", "4", "--steps", "1", "--init", str(tmp_path / "missing.pt"),
              "--out", str(tmp_path), "--cache", str(tmp_path)])


def test_shipped_upscaler_beats_bicubic_on_held_out_renders(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    shipped = load_upscaler(BUNDLED_UPSCALER)
    styles = tuple(s for s in DEFAULT_STYLES if s not in PIXEL_STYLES | {"thumbs", "big-smile"})
    assert set(shipped.cfg.styles) == set(styles)  # each drawn style it is offered for has its own bias
    held_out = pairs(styles, 24, seed=97, cache=tmp_path)
    learned = score(lambda x, ids: shipped.upscale(x, shipped.style_ids([styles[i] for i in ids])), held_out)
    plain = score(lambda x, _: bicubic(x), held_out)
    assert learned["psnr_db"] > plain["psnr_db"] + 1.0 and learned["ssim"] > plain["ssim"]


def test_the_bots_upscale_agrees_with_the_fp32_pass() -> None:
    net = tiny()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    ids = net.style_ids(["micah", "lorelei"])
    with torch.inference_mode():
        fast, exact = net.upscale(x, ids), net(x, ids)
    assert fast.dtype == torch.float32 and (fast - exact).abs().max() < 4 / 127.5
