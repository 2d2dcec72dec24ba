"""Offline trainer of the 4× face upscaler: `python -m avatar.train_upscaler --out DIR`.

The pairs cost nothing: each DiceBear face rendered at 64 and at 256 px from the same seed. The
network learns on random crops (L1), is scored on whole held-out faces (other seeds) with PSNR
and SSIM, and is written atomically to DIR/upscaler.pt. Pixel-art styles are left out: nearest
neighbour already upscales them exactly.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from avatar.checkpoint import save_upscaler
from avatar.faces import DEFAULT_STYLES, PIXEL_STYLES, build_faces
from avatar.quality import psnr_db, ssim
from avatar.schedule import CosineSteps
from avatar.upscale import SCALE, Upscaler, UpscalerConfig, bicubic

HELD_OUT_SEED = 21


def pairs(styles: tuple[str, ...], count: int, seed: int, cache: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(64 px faces, the same faces at 256 px), uint8 (N, 3, H, W)."""
    small, _ = build_faces(styles, count, seed=seed, size=64, cache_dir=cache)
    large, _ = build_faces(styles, count, seed=seed, size=64 * SCALE, cache_dir=cache)
    return torch.from_numpy(small).permute(0, 3, 1, 2), torch.from_numpy(large).permute(0, 3, 1, 2)


def score(upscaler: Callable[[torch.Tensor], torch.Tensor], small: torch.Tensor, large: torch.Tensor) -> dict:
    """PSNR (dB) and mean SSIM of the upscaled faces against the real 256 px renders."""
    with torch.inference_mode():
        out = torch.cat([upscaler(chunk.float().div(127.5).sub(1)) for chunk in small.split(64)])
        out = out.clamp(-1, 1).add(1).mul(127.5).round().div(127.5).sub(1)  # what a saved PNG holds
        real = large.float().div(127.5).sub(1)
        return {"psnr_db": round(psnr_db(out, real), 2), "ssim": round(float(ssim(out, real).mean()), 4)}


def train(styles: tuple[str, ...], images: int, minutes: float, out: Path, *, cfg: UpscalerConfig = UpscalerConfig(),
          batch: int = 16, crop: int = 32, lr: float = 1e-3, noise: float = 0.06, held_out: int = 400, seed: int = 0,
          cache: Path | None = None, steps: int | None = None, progress: bool = True) -> dict:
    torch.manual_seed(seed)
    styles = tuple(s for s in styles if s not in PIXEL_STYLES)
    small, large = pairs(styles, images, seed, cache or out / "cache")
    test_small, test_large = pairs(styles, held_out, HELD_OUT_SEED, cache or out / "cache")
    net = Upscaler(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loop = CosineSteps(opt, lr, minutes, steps, "training upscaler", progress)
    for _ in loop:
        idx = torch.randint(len(small), (batch,))
        y0, x0 = torch.randint(64 - crop + 1, (2,)).tolist()
        x = small[idx, :, y0:y0 + crop, x0:x0 + crop].float().div(127.5).sub(1)
        y = large[idx, :, y0 * SCALE:(y0 + crop) * SCALE, x0 * SCALE:(x0 + crop) * SCALE].float().div(127.5).sub(1)
        if torch.rand(()) < 0.5:
            x, y = x.flip(3), y.flip(3)
        speckled = torch.rand(batch, 1, 1, 1) < 0.5
        x = torch.where(speckled, x + noise * torch.rand(batch, 1, 1, 1) * torch.randn_like(x), x)
        loss = F.l1_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loop.report(loss)
    net.eval()
    summary = {"steps": loop.done_steps, "seconds": round(loop.seconds, 1), "styles": list(styles),
               "train_faces": images, "input_noise": noise, "held_out_faces": held_out, "held_out_seed": HELD_OUT_SEED,
               "config": cfg.to_dict(), "held_out": score(net, test_small, test_large),
               "bicubic": score(bicubic, test_small, test_large)}
    save_upscaler(out / "upscaler.pt", net, summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avatar.train_upscaler", description=__doc__.splitlines()[0])
    parser.add_argument("--styles", default=",".join(DEFAULT_STYLES), help="comma-separated DiceBear styles")
    parser.add_argument("--images", type=int, default=4000, help="training pairs")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--noise", type=float, default=0.06, help="largest noise σ added to half the inputs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    styles = tuple(s.strip() for s in args.styles.split(",") if s.strip())
    try:
        summary = train(styles, args.images, args.minutes, args.out, cfg=UpscalerConfig(args.channels, args.layers),
                        noise=args.noise, steps=args.steps, cache=args.cache)
    except ValueError as exc:
        raise SystemExit(f"avatar.train_upscaler: {exc}") from None
    print(f"wrote {args.out / 'upscaler.pt'}: {summary}")


if __name__ == "__main__":
    main()
