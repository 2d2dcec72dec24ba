"""Offline trainer of the 4× face upscaler: `python -m avatar.train_upscaler --out DIR`.

The pairs cost nothing: each DiceBear face rendered at 64 and at 256 px from the same seed. The
network learns on random crops, with each face's style, by squared error (what PSNR scores; where
a thin outline's place is uncertain, L1 picks one place and loses more when it is wrong), is scored
on whole held-out faces (other seeds) with PSNR and SSIM, and is written atomically to
DIR/upscaler.pt. `--init` goes on from an earlier upscaler of the same shape, or narrows a wider
one to its most used channels. Pixel-art styles are left out: nearest neighbour already upscales
them exactly.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from avatar.checkpoint import WeightsError, load_upscaler, save_upscaler
from avatar.faces import DEFAULT_STYLES, PIXEL_STYLES, build_faces
from avatar.quality import psnr_db, ssim
from avatar.schedule import CosineSteps
from avatar.upscale import SCALE, Upscaler, UpscalerConfig, bicubic

HELD_OUT_SEED = 21


@dataclass(frozen=True)
class Pairs:
    """The same faces at 64 and 256 px, uint8 (N, 3, H, W), and each face's index in `styles`."""

    small: torch.Tensor
    large: torch.Tensor
    style_ids: torch.Tensor
    styles: tuple[str, ...]


def pairs(styles: tuple[str, ...], count: int, seed: int, cache: Path | None) -> Pairs:
    small, labels = build_faces(styles, count, seed=seed, size=64, cache_dir=cache)
    large, _ = build_faces(styles, count, seed=seed, size=64 * SCALE, cache_dir=cache)
    return Pairs(torch.from_numpy(small).permute(0, 3, 1, 2), torch.from_numpy(large).permute(0, 3, 1, 2),
                 torch.from_numpy(labels).long(), styles)


def score(upscaler: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], faces: Pairs) -> dict:
    """PSNR (dB) and mean SSIM of the upscaled faces against the real 256 px renders; `upscaler`
    takes the 64 px faces and their style indices."""
    with torch.inference_mode():
        out = torch.cat([upscaler(chunk.float().div(127.5).sub(1), ids)
                         for chunk, ids in zip(faces.small.split(64), faces.style_ids.split(64))])
        out = out.clamp(-1, 1).add(1).mul(127.5).round().div(127.5).sub(1)  # what a saved PNG holds
        real = faces.large.float().div(127.5).sub(1)
        return {"psnr_db": round(psnr_db(out, real), 2), "ssim": round(float(ssim(out, real).mean()), 4)}


def start_from(init: Path, cfg: UpscalerConfig) -> Upscaler:
    """A trainable copy of an earlier upscaler of this shape and styles, to go on training; from a
    wider one, each layer keeps its most used channels (a narrower net costs less a face)."""
    earlier = load_upscaler(init)
    if replace(earlier.cfg, channels=cfg.channels) != cfg or earlier.cfg.channels < cfg.channels:
        raise ValueError(f"{init} is an upscaler of another shape or other styles: {earlier.cfg}")
    net = Upscaler(cfg)
    with torch.no_grad():
        kept = torch.arange(3)  # the image's channels go in whole
        for layer, (old, new) in enumerate(zip(earlier.convs, net.convs)):
            following = earlier.convs[layer + 1] if layer + 1 < len(earlier.convs) else earlier.out
            # A channel's use: the weights that make it (from the channels kept) times those that read it.
            use = old.weight[:, kept].abs().sum((1, 2, 3)) * following.weight.abs().sum((0, 2, 3))
            chosen = use.topk(cfg.channels).indices.sort().values
            new.weight.copy_(old.weight[chosen][:, kept])
            new.bias.copy_(old.bias[chosen])
            net.style_bias[:, layer].copy_(earlier.style_bias[:, layer][:, chosen])
            kept = chosen
        net.out.weight.copy_(earlier.out.weight[:, kept])
        net.out.bias.copy_(earlier.out.bias)
    return net


def train(styles: tuple[str, ...], images: int, minutes: float, out: Path, *, cfg: UpscalerConfig = UpscalerConfig(),
          batch: int = 16, crop: int = 32, lr: float = 1e-3, noise: float = 0.0, held_out: int = 400, seed: int = 0,
          cache: Path | None = None, steps: int | None = None, progress: bool = True, init: Path | None = None) -> dict:
    torch.manual_seed(seed)
    styles = tuple(s for s in styles if s not in PIXEL_STYLES)
    cfg = replace(cfg, styles=styles)
    faces = pairs(styles, images, seed, cache or out / "cache")
    test = pairs(styles, held_out, HELD_OUT_SEED, cache or out / "cache")
    net = start_from(init, cfg) if init is not None else Upscaler(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loop = CosineSteps(opt, lr, minutes, steps, "training upscaler", progress)
    for _ in loop:
        idx = torch.randint(len(faces.small), (batch,))
        y0, x0 = torch.randint(64 - crop + 1, (2,)).tolist()
        x = faces.small[idx, :, y0:y0 + crop, x0:x0 + crop].float().div(127.5).sub(1)
        y = faces.large[idx, :, y0 * SCALE:(y0 + crop) * SCALE, x0 * SCALE:(x0 + crop) * SCALE].float().div(127.5).sub(1)
        if torch.rand(()) < 0.5:
            x, y = x.flip(3), y.flip(3)
        if noise > 0:
            speckled = torch.rand(batch, 1, 1, 1) < 0.5
            x = torch.where(speckled, x + noise * torch.rand(batch, 1, 1, 1) * torch.randn_like(x), x)
        loss = F.mse_loss(net(x, faces.style_ids[idx]), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loop.report(loss)
    net.eval()
    summary = {"steps": loop.done_steps, "seconds": round(loop.seconds, 1), "styles": list(styles),
               "train_faces": images, "input_noise": noise, "held_out_faces": held_out, "held_out_seed": HELD_OUT_SEED,
               "config": cfg.to_dict(), "init": str(init) if init else None, "loss": "squared error",
               "held_out": score(net, test), "bicubic": score(lambda x, _: bicubic(x), test)}
    save_upscaler(out / "upscaler.pt", net, summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avatar.train_upscaler", description=__doc__.splitlines()[0])
    parser.add_argument("--styles", default=",".join(DEFAULT_STYLES), help="comma-separated DiceBear styles")
    parser.add_argument("--images", type=int, default=4000, help="training pairs")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--channels", type=int, default=UpscalerConfig.channels)
    parser.add_argument("--layers", type=int, default=UpscalerConfig.layers)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=16, help="32-px crops a step")
    parser.add_argument("--noise", type=float, default=0.0, help="largest noise σ added to half the inputs")
    parser.add_argument("--init", type=Path, help="go on from this upscaler (same styles and layers, as many channels or more)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    styles = tuple(s.strip() for s in args.styles.split(",") if s.strip())
    try:
        summary = train(styles, args.images, args.minutes, args.out, cfg=UpscalerConfig(args.channels, args.layers),
                        noise=args.noise, steps=args.steps, cache=args.cache, lr=args.lr, init=args.init,
                        batch=args.batch)
    except (ValueError, WeightsError) as exc:
        raise SystemExit(f"avatar.train_upscaler: {exc}") from None
    print(f"wrote {args.out / 'upscaler.pt'}: {summary}")


if __name__ == "__main__":
    main()
