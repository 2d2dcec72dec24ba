"""Offline trainer of the face GAN: `python -m avatar.train --styles ... --images N --minutes M --out DIR`.

Renders (and caches) the DiceBear data set, trains with the hinge loss, a lazy R1 penalty on real
faces and an EMA generator, writes sample grids as it goes, checkpoints so an interrupted run
resumes, and writes the final generator atomically to DIR/generator.pt. `--init` starts the
generator from a shipped one (the styles both share), so a model can go on learning in later
sessions, or shed a style it draws badly, without starting over.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from avatar.checkpoint import load_generator, save_generator
from avatar.faces import DEFAULT_STYLES, build_faces
from avatar.model import Discriminator, GanConfig, Generator, ema_update, mode_seeking_penalty, standing_stats
from avatar.render import grid, png_bytes, to_images
from twinbot.atomic import save_torch_atomically

EMA_DECAY = 0.998
MODE_SEEKING_WEIGHT = 1.0
CHECKPOINT_EVERY_S = 120.0
R1_EVERY = 16  # lazy regularisation (StyleGAN2): the penalty every 16 D steps, scaled by 16


def warm_start(g: Generator, ema: Generator, init: Path, styles: tuple[str, ...]) -> None:
    """Copy a trained generator into `g` and `ema`, its style rows picked (and ordered) by `styles`."""
    loaded = load_generator(init)
    missing = [s for s in styles if s not in loaded.styles]
    if missing:
        raise ValueError(f"{init} has no style {missing[0]!r} to start from")
    state = loaded.generator.state_dict()
    state["style.weight"] = state["style.weight"][[loaded.styles.index(s) for s in styles]]
    g.load_state_dict(state)
    ema.load_state_dict(state)


def r1_penalty(d: Discriminator, real: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Mean squared gradient norm of D at real faces (Mescheder et al., 2018)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(real, style).sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def sample_sheet(generator: Generator, styles: tuple[str, ...], per_style: int = 8, seed: int = 1234) -> bytes:
    """A PNG with one row per style, the same latents in every row (to see what the style does)."""
    z = torch.from_numpy(np.random.default_rng(seed).standard_normal((per_style, generator.cfg.nz)).astype(np.float32))
    images = []
    standing_stats(generator)
    with torch.inference_mode():
        for index in range(len(styles)):
            images += to_images(generator(z, torch.full((per_style,), index, dtype=torch.long)))
    return png_bytes(grid(images, per_style, border=2))


def train(styles: tuple[str, ...], images: int, minutes: float, out: Path, *, batch: int = 64, steps: int | None = None,
          seed: int = 0, cache: Path | None = None, ngf: int = 48, sample_every: int = 500,
          progress: bool = True, init: Path | None = None, r1_gamma: float = 0.0, lr_g: float = 2e-4,
          lr_d: float = 2e-4) -> dict:
    """Train (or resume) in `out`; returns the run's summary, also stored in the generator's metadata."""
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    data, labels = build_faces(styles, images, seed=seed, cache_dir=cache or out / "cache", progress=progress)
    real_all = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()
    label_all = torch.from_numpy(labels).long()

    cfg = GanConfig(n_styles=len(styles), ngf=ngf, ndf=ngf)
    g, d = Generator(cfg), Discriminator(cfg)
    ema = copy.deepcopy(g).eval()
    if init is not None:
        warm_start(g, ema, init, styles)
    opt_g = torch.optim.Adam(g.parameters(), lr=lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr_d, betas=(0.0, 0.9))
    step, seconds = 0, 0.0
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state["styles"] != list(styles) or state["config"] != cfg.to_dict():
            raise SystemExit(f"{ckpt_path} belongs to another configuration; use another --out")
        g.load_state_dict(state["g"]), d.load_state_dict(state["d"]), ema.load_state_dict(state["ema"])
        opt_g.load_state_dict(state["opt_g"]), opt_d.load_state_dict(state["opt_d"])
        step, seconds = state["step"], state["seconds"]
        torch.set_rng_state(state["rng"])

    def checkpoint() -> None:
        save_torch_atomically({"styles": list(styles), "config": cfg.to_dict(), "g": g.state_dict(), "d": d.state_dict(),
                     "ema": ema.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                     "step": step, "seconds": seconds, "rng": torch.get_rng_state()}, ckpt_path)

    budget_s = minutes * 60
    started = time.monotonic() - seconds
    last_ckpt = time.monotonic()
    bar = tqdm(total=steps, initial=step, desc="training faces", unit="step", disable=not progress)
    generator = torch.Generator().manual_seed(seed + step)
    d_loss = g_loss = torch.tensor(0.0)
    while (steps is None or step < steps) and time.monotonic() - started < budget_s:
        g.train()
        idx = torch.randint(len(real_all), (batch,), generator=generator)
        real = real_all[idx].float().div(127.5).sub(1)
        real = torch.where(torch.rand(batch, 1, 1, 1, generator=generator) < 0.5, real, real.flip(3))
        style = label_all[idx]
        fake_style = style[: batch // 2].repeat(2)  # pairs sharing a style, for the mode-seeking term
        z = torch.randn(batch, cfg.nz)
        fake = g(z, fake_style)
        d_loss = F.relu(1 - d(real, style)).mean() + F.relu(1 + d(fake.detach(), fake_style)).mean()
        if r1_gamma and step % R1_EVERY == 0:
            d_loss = d_loss + r1_gamma / 2 * R1_EVERY * r1_penalty(d, real, style)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = -d(fake, fake_style).mean() + MODE_SEEKING_WEIGHT * mode_seeking_penalty(fake, z)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        ema_update(ema, g, EMA_DECAY if step > 200 or init is not None else 0.0)
        step += 1
        seconds = time.monotonic() - started
        bar.update(1)
        bar.set_postfix(d=f"{d_loss.item():.3f}", g=f"{g_loss.item():.3f}", img_s=f"{step * batch / seconds:.0f}")
        if step % sample_every == 0:
            (out / "samples").mkdir(exist_ok=True)
            (out / "samples" / f"step{step:06d}.png").write_bytes(sample_sheet(ema, styles))
        if time.monotonic() - last_ckpt > CHECKPOINT_EVERY_S:
            checkpoint()
            last_ckpt = time.monotonic()
    bar.close()
    checkpoint()
    summary = {"steps": step, "seconds": round(seconds, 1), "images_seen": step * batch, "batch": batch,
               "dataset_images": images, "seed": seed, "d_loss": round(d_loss.item(), 4),
               "g_loss": round(g_loss.item(), 4), "init": str(init) if init else None, "r1_gamma": r1_gamma,
               "lr_g": lr_g, "lr_d": lr_d}
    standing_stats(ema)
    save_generator(out / "generator.pt", ema, styles, summary)
    (out / "samples.png").write_bytes(sample_sheet(ema, styles))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avatar.train", description=__doc__.splitlines()[0])
    parser.add_argument("--styles", default=",".join(DEFAULT_STYLES), help="comma-separated DiceBear styles")
    parser.add_argument("--images", type=int, default=20_000, help="size of the rendered data set")
    parser.add_argument("--minutes", type=float, default=30.0, help="training time budget")
    parser.add_argument("--steps", type=int, help="stop after this many steps (default: time budget only)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--init", type=Path, help="start the generator from these weights (shared styles)")
    parser.add_argument("--r1", type=float, default=0.0, help="R1 penalty weight (gamma) on real faces")
    parser.add_argument("--lr-g", type=float, default=2e-4)
    parser.add_argument("--lr-d", type=float, default=2e-4)
    parser.add_argument("--cache", type=Path, help="where the rendered data set is cached (default OUT/cache)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    styles = tuple(s.strip() for s in args.styles.split(",") if s.strip())
    try:
        summary = train(styles, args.images, args.minutes, args.out, batch=args.batch, steps=args.steps,
                        seed=args.seed, cache=args.cache, ngf=args.ngf, sample_every=args.sample_every,
                        init=args.init, r1_gamma=args.r1, lr_g=args.lr_g, lr_d=args.lr_d)
    except ValueError as exc:
        raise SystemExit(f"avatar.train: {exc}") from None
    print(f"wrote {args.out / 'generator.pt'}: {summary}")


if __name__ == "__main__":
    main()
