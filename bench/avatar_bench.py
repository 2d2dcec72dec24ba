"""Speed and quality of the face generator; prints one JSON object.

`python bench/avatar_bench.py [--weights avatar/weights/generator.pt] [--n 2000]`

Keys: ms_per_face (one 256 px face of a drawn style, generator + learned upscaler), ms_per_grid16
(16 such faces in a bordered grid image; encoding that 1,040 px sheet as PNG is
ms_png_encode_grid16, reported apart), png_kb_face_max, fid, fid_real_floor, fid_untrained,
upscale_psnr_db / upscale_ssim (held-out 64 px renders of the drawn styles upscaled, against the
same faces rendered at 256 px; bicubic beside them), inversion_psnr_db / inversion_ssim (held-out
renders found again by the encoder and refined, as `/avatar like` does, against the 64 px render).
No Inception network can be downloaded here, so the FIDs use the features of a small style
classifier trained in this run on freshly rendered DiceBear faces (never the training set's seeds).
Read them side by side: `fid_real_floor` (real vs real) is the best a generator could score,
`fid_untrained` (a randomly initialised generator) the worst.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatar.checkpoint import load_encoder, load_generator, load_upscaler  # noqa: E402
from avatar.faces import PIXEL_STYLES, build_faces  # noqa: E402
from avatar.model import Generator, standing_stats  # noqa: E402
from avatar.quality import to_tensor  # noqa: E402
from avatar.render import FaceRenderer, grid, png_bytes  # noqa: E402
from avatar.service import BUNDLED_ENCODER, BUNDLED_UPSCALER, BUNDLED_WEIGHTS  # noqa: E402
from avatar.train_encoder import HELD_OUT_SEED as ENCODER_HELD_OUT_SEED, inversion_scores  # noqa: E402
from avatar.train_upscaler import HELD_OUT_SEED as UPSCALER_HELD_OUT_SEED, pairs, score  # noqa: E402
from avatar.upscale import bicubic  # noqa: E402

CLASSIFIER_STEPS = 400


def timed_ms(work, repeats: int) -> float:  # noqa: ANN001
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        runs.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(runs), 2)


class StyleNet(nn.Module):
    """A small CNN that tells the styles apart; its 128-d penultimate layer is the FID feature space."""

    def __init__(self, n_styles: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(), nn.Conv2d(128, 128, 3, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(128, n_styles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(images: np.ndarray, labels: np.ndarray, n_styles: int) -> StyleNet:
    torch.manual_seed(0)
    net = StyleNet(n_styles)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    x, y = to_tensor(images), torch.from_numpy(labels).long()
    for step in range(CLASSIFIER_STEPS):
        idx = torch.randint(len(x), (64,))
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def features(net: StyleNet, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([net.features(chunk) for chunk in x.split(256)]).double().numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(Ca + Cb - 2 (Ca^1/2 Cb Ca^1/2)^1/2), with symmetric square roots."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(ca)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    cross = np.linalg.eigvalsh(root_a @ cb @ root_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.sqrt(np.clip(cross, 0, None)).sum())


def generated(generator: Generator, labels: np.ndarray, seed: int) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    out = []
    with torch.inference_mode():
        for chunk in torch.from_numpy(labels).long().split(256):
            out.append(generator(torch.randn(len(chunk), generator.cfg.nz, generator=rng), chunk))
    return torch.cat(out).clamp(-1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=BUNDLED_WEIGHTS)
    parser.add_argument("--upscaler", type=Path, default=BUNDLED_UPSCALER)
    parser.add_argument("--encoder", type=Path, default=BUNDLED_ENCODER)
    parser.add_argument("--held-out", type=int, default=400, help="held-out renders for upscaling (100 for inversion)")
    parser.add_argument("--n", type=int, default=2000, help="faces per set in the FIDs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("bench/out/cache"))
    parser.add_argument("--sheets", type=Path, default=Path("bench/out/avatar"), help="per-style sample grids")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    loaded = load_generator(args.weights)
    upscaler = load_upscaler(args.upscaler)
    renderer = FaceRenderer(loaded, upscaler)
    styles = loaded.styles
    drawn = next(s for s in styles if s not in PIXEL_STYLES)
    latents = [renderer.latent(seed) for seed in range(16)]
    renderer.faces(latents[:1], drawn)  # warm-up
    ms_face = timed_ms(lambda: renderer.faces(latents[:1], drawn), 30)
    ms_grid = timed_ms(lambda: grid(renderer.faces(latents, drawn), 4), 10)
    sheet = grid(renderer.faces(latents, drawn), 4)
    ms_png = timed_ms(lambda: png_bytes(sheet), 5)

    args.sheets.mkdir(parents=True, exist_ok=True)
    sheet_latents = [renderer.latent(1000 + k) for k in range(16)]
    png_sizes = []
    for style in styles:
        faces = renderer.faces(sheet_latents, style)
        png_sizes += [len(png_bytes(face)) for face in faces]
        (args.sheets / f"{style}.png").write_bytes(png_bytes(grid(faces[:4], 4)))

    drawn_styles = tuple(s for s in styles if s not in PIXEL_STYLES)
    held_out = pairs(drawn_styles, args.held_out, UPSCALER_HELD_OUT_SEED, args.cache)
    # The held-out faces' style indices are the bench's; the upscaler's own order may differ.
    upscaled = score(lambda x, ids: upscaler.upscale(x, upscaler.style_ids([drawn_styles[i] for i in ids])), held_out)
    plain = score(lambda x, _: bicubic(x), held_out)
    test, _ = build_faces(styles, 100, seed=ENCODER_HELD_OUT_SEED, cache_dir=args.cache)
    inversion = inversion_scores(loaded, load_encoder(args.encoder).encoder, to_tensor(test))

    # Seeds 11, 12, 13: none of them is the training set's (seed 0).
    train_x, train_y = build_faces(styles, args.n, seed=11, cache_dir=args.cache)
    real_a, labels = build_faces(styles, args.n, seed=12, cache_dir=args.cache)
    real_b, labels_b = build_faces(styles, args.n, seed=13, cache_dir=args.cache)
    net = train_classifier(train_x, train_y, len(styles))
    with torch.inference_mode():
        accuracy = float((net(to_tensor(real_b)).argmax(1).numpy() == labels_b).mean())
    reference = features(net, to_tensor(real_a))
    untrained = Generator(loaded.generator.cfg)
    standing_stats(untrained)
    report = {
        "ms_per_face": ms_face,
        "ms_per_grid16": ms_grid,
        "ms_png_encode_grid16": ms_png,
        "png_kb_face_max": round(max(png_sizes) / 1024, 1),
        "upscale_psnr_db": upscaled["psnr_db"],
        "upscale_ssim": upscaled["ssim"],
        "upscale_bicubic_psnr_db": plain["psnr_db"],
        "upscale_bicubic_ssim": plain["ssim"],
        "inversion_psnr_db": inversion["psnr_db"],
        "inversion_ssim": inversion["ssim"],
        "fid": round(frechet(reference, features(net, generated(loaded.generator, labels, 1))), 3),
        "fid_real_floor": round(frechet(reference, features(net, to_tensor(real_b))), 3),
        "fid_untrained": round(frechet(reference, features(net, generated(untrained, labels, 1))), 3),
        "feature_net": f"style classifier, {CLASSIFIER_STEPS} steps on {args.n} rendered faces",
        "feature_net_accuracy": round(accuracy, 3),
        "faces_per_set": args.n,
        "threads": args.threads,
        "sample_sheets": str(args.sheets),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
