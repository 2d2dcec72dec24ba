"""The face encoder: a picture (64 px) to the generator's latent and style, for `/avatar like`.

A convolutional encoder predicts (z, style) in one pass; `find_face` then refines the face's code
(`Generator.code`, a richer space than z's) for a few Adam steps so that the generator's face
matches the picture in pixels and local structure (L1 + SSIM). Trained on
the generator's own faces (whose z is known) and on DiceBear renders reconstructed through the
frozen generator (`python -m avatar.train_encoder`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avatar.model import Generator
from avatar.quality import ssim


@dataclass(frozen=True)
class EncoderConfig:
    n_styles: int
    nz: int = 128
    width: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


class FaceEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        act = nn.LeakyReLU(0.2, True)
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), act,
            nn.Conv2d(w, w * 2, 4, 2, 1), nn.BatchNorm2d(w * 2), act,
            nn.Conv2d(w * 2, w * 4, 4, 2, 1), nn.BatchNorm2d(w * 4), act,
            nn.Conv2d(w * 4, w * 8, 4, 2, 1), nn.BatchNorm2d(w * 8), act,
            nn.Flatten(),
        )
        self.latent = nn.Linear(w * 8 * 16, cfg.nz)
        self.style = nn.Linear(w * 8 * 16, cfg.n_styles)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 64, 64) in [-1, 1] -> (z (N, nz), style logits (N, n_styles))."""
        h = self.body(images)
        return self.latent(h), self.style(h)


@dataclass(frozen=True)
class FoundFace:
    code: torch.Tensor
    style: int
    ssim: float


def find_face(generator: Generator, encoder: FaceEncoder, target: torch.Tensor, steps: int = 40,
              lr: float = 0.2) -> FoundFace:
    """The (code, style) whose face looks most like `target` (1, 3, 64, 64) in [-1, 1]. The generator
    is only read: loaded weights are frozen (`avatar.checkpoint`), so no gradient lands on them."""
    with torch.no_grad():
        z, logits = encoder(target)
        style = logits.argmax(1)
        code = generator.code(z)
    if steps:
        code.requires_grad_(True)
        opt = torch.optim.Adam([code], lr=lr)
        for _ in range(steps):
            face = generator.draw(code, style)
            loss = F.l1_loss(face, target) + (1 - ssim(face, target)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        score = float(ssim(generator.draw(code, style), target)[0])
    return FoundFace(code.detach()[0], int(style[0]), score)
