"""Offline trainer of the face encoder: `python -m avatar.train_encoder --generator G.pt --out DIR`.

The encoder learns two things at once against one frozen generator: the latent and style of the
generator's own faces (known exactly, since it drew them), and faces of real DiceBear renders
that the generator redraws as closely as it can (L1 + SSIM through the generator). It is scored
on held-out renders (other seeds) reconstructed as `/avatar like` does it (encode, then refine)
and written atomically to DIR/encoder.pt with the generator's styles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from avatar.checkpoint import LoadedGenerator, WeightsError, load_encoder, load_generator, save_encoder
from avatar.encoder import EncoderConfig, FaceEncoder, find_face
from avatar.faces import build_faces
from avatar.likeness import REFINE_STEPS
from avatar.quality import psnr_db, ssim, to_tensor
from avatar.schedule import CosineSteps

HELD_OUT_SEED = 31


def inversion_scores(loaded: LoadedGenerator, encoder: FaceEncoder, faces: torch.Tensor,
                     steps: int = REFINE_STEPS) -> dict:
    """PSNR and mean SSIM of held-out faces (N, 3, 64, 64) in [-1, 1] against their reconstructions."""
    encoder.eval()
    found = [find_face(loaded.generator, encoder, face[None], steps=steps) for face in faces]
    with torch.no_grad():
        out = torch.cat([loaded.generator.draw(f.code[None], torch.tensor([f.style])) for f in found]).clamp(-1, 1)
    return {"psnr_db": round(psnr_db(out, faces), 2), "ssim": round(float(ssim(out, faces).mean()), 4),
            "refine_steps": steps}


def train(generator_path: Path, images: int, minutes: float, out: Path, *, width: int = 32, batch: int = 32,
          lr: float = 1e-3, held_out: int = 100, seed: int = 0, cache: Path | None = None,
          steps: int | None = None, progress: bool = True, init: Path | None = None) -> dict:
    torch.manual_seed(seed)
    loaded = load_generator(generator_path)
    g = loaded.generator  # frozen by load_generator
    data, labels = build_faces(loaded.styles, images, seed=seed, cache_dir=cache or out / "cache")
    real_all, label_all = to_tensor(data), torch.from_numpy(labels).long()
    encoder = FaceEncoder(EncoderConfig(n_styles=len(loaded.styles), nz=g.cfg.nz, width=width))
    if init is not None:  # an encoder of an earlier state of this generator: it only has to catch up
        start = load_encoder(init)
        if start.styles != loaded.styles or start.encoder.cfg != encoder.cfg:
            raise ValueError(f"{init} is an encoder of other styles or another shape")
        encoder.load_state_dict(start.encoder.state_dict())
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    loop = CosineSteps(opt, lr, minutes, steps, "training encoder", progress)
    for _ in loop:
        encoder.train()
        z = torch.randn(batch, g.cfg.nz)
        style = torch.randint(len(loaded.styles), (batch,))
        with torch.no_grad():
            drawn = g(z, style)
        z_hat, logits = encoder(drawn)
        loss = F.mse_loss(z_hat, z) + F.cross_entropy(logits, style)
        idx = torch.randint(len(real_all), (batch,))
        real, real_style = real_all[idx], label_all[idx]
        z_real, logits_real = encoder(real)
        redrawn = g(z_real, real_style)
        loss = loss + F.cross_entropy(logits_real, real_style) + F.l1_loss(redrawn, real) \
            + (1 - ssim(redrawn, real)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loop.report(loss)
    test, test_labels = build_faces(loaded.styles, held_out, seed=HELD_OUT_SEED, cache_dir=cache or out / "cache")
    test_faces = to_tensor(test)
    encoder.eval()
    with torch.no_grad():
        style_accuracy = float((encoder(test_faces)[1].argmax(1).numpy() == test_labels).mean())
    summary = {"steps": loop.done_steps, "seconds": round(loop.seconds, 1), "batch": batch,
               "train_faces": images, "held_out_faces": held_out, "held_out_seed": HELD_OUT_SEED,
               "generator": generator_path.name, "init": str(init) if init else None,
               "style_accuracy": round(style_accuracy, 3),
               "encoded_only": inversion_scores(loaded, encoder, test_faces, steps=0),
               "refined": inversion_scores(loaded, encoder, test_faces)}
    save_encoder(out / "encoder.pt", encoder, loaded.styles, summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avatar.train_encoder", description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path, required=True, help="the generator this encoder serves")
    parser.add_argument("--images", type=int, default=8000, help="real renders to learn from")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--init", type=Path, help="start from this encoder (of an earlier state of the generator)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        summary = train(args.generator, args.images, args.minutes, args.out, width=args.width, steps=args.steps,
                        cache=args.cache, init=args.init)
    except (ValueError, WeightsError) as exc:
        raise SystemExit(f"avatar.train_encoder: {exc}") from None
    print(f"wrote {args.out / 'encoder.pt'}: {summary}")


if __name__ == "__main__":
    main()
