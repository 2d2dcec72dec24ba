"""The face GAN: a style-conditioned DCGAN at 64×64 (generator ~2.6M params) and a projection discriminator.

G: [z ; embed(style)] -> 4×4 -> 8 -> 16 -> 32 -> 64, BatchNorm + ReLU, tanh output.
D: spectral-normalized convs 64 -> 4, global sum pool, linear score + projection <embed(style), h>.
Trained with the hinge loss; an EMA copy of G is what ships.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import spectral_norm


@dataclass(frozen=True)
class GanConfig:
    n_styles: int
    nz: int = 128
    ngf: int = 48
    ndf: int = 48
    style_dim: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class Generator(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        g = cfg.ngf
        self.style = nn.Embedding(cfg.n_styles, cfg.style_dim)
        self.project = nn.Sequential(
            nn.Linear(cfg.nz + cfg.style_dim, g * 8 * 4 * 4, bias=False), nn.Unflatten(1, (g * 8, 4, 4)),
            nn.BatchNorm2d(g * 8), nn.ReLU(True),
        )
        self.body = nn.Sequential(
            _up(g * 8, g * 4), _up(g * 4, g * 2), _up(g * 2, g),
            nn.ConvTranspose2d(g, 3, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], shape (N, 3, 64, 64)."""
        return self.body(self.project(torch.cat([z, self.style(style)], dim=1)))


class Discriminator(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        d = cfg.ndf
        act = nn.LeakyReLU(0.2, True)
        self.body = nn.Sequential(
            spectral_norm(nn.Conv2d(3, d, 4, 2, 1)), act,
            spectral_norm(nn.Conv2d(d, d * 2, 4, 2, 1)), act,
            spectral_norm(nn.Conv2d(d * 2, d * 4, 4, 2, 1)), act,
            spectral_norm(nn.Conv2d(d * 4, d * 8, 4, 2, 1)), act,
        )
        self.score = spectral_norm(nn.Linear(d * 8, 1))
        self.style = spectral_norm(nn.Embedding(cfg.n_styles, d * 8))

    def forward(self, images: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = self.body(images).sum(dim=(2, 3))
        return self.score(h).squeeze(1) + (self.style(style) * h).sum(dim=1)


def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay·ema + (1-decay)·model for parameters; buffers (BatchNorm stats) copied."""
    with torch.no_grad():
        for e, m in zip(ema.parameters(), model.parameters(), strict=True):
            e.lerp_(m, 1 - decay)
        for e, m in zip(ema.buffers(), model.buffers(), strict=True):
            e.copy_(m)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
