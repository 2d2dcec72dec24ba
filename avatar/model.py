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

    @property
    def code_dim(self) -> int:
        return self.project[0].out_features

    def code(self, z: torch.Tensor) -> torch.Tensor:
        """A face's code: z's share of the first (linear, bias-free) layer, without the style's.

        Codes hold more faces than z does (what `/avatar like` finds lives here), and any style can be
        added back to one, so a found face can be restyled, varied and morphed like any other.
        """
        return z @ self.project[0].weight[:, : self.cfg.nz].T

    def draw(self, code: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The faces of codes in a style: `draw(code(z), s)` equals `forward(z, s)`."""
        styled = code + self.style(style) @ self.project[0].weight[:, self.cfg.nz:].T
        return self.body(self.project[1:](styled))


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
    """ema <- decay·ema + (1-decay)·model, parameters only (see `standing_stats` for BatchNorm)."""
    with torch.no_grad():
        for e, m in zip(ema.parameters(), model.parameters(), strict=True):
            e.lerp_(m, 1 - decay)


def standing_stats(generator: Generator, batches: int = 16, batch: int = 64, seed: int = 0) -> None:
    """Recompute BatchNorm statistics for the generator's own weights.

    The running statistics of the trained G belong to G's weights, not to the EMA average of them;
    sampling the EMA with borrowed statistics washes faces out into noise. Averaging the batch
    statistics of a few batches the EMA itself generates (as BigGAN does) fixes that.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches below
    rng = torch.Generator().manual_seed(seed)
    generator.train()
    with torch.no_grad():
        for _ in range(batches):
            generator(torch.randn(batch, generator.cfg.nz, generator=rng),
                      torch.randint(generator.cfg.n_styles, (batch,), generator=rng))
    for norm in norms:
        norm.momentum = 0.1
    generator.eval()


def mode_seeking_penalty(images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """MSGAN's term (Mao et al., 2019) on pairs (first half, second half) that share a style.

    A conditional G readily learns one face per style and ignores z; this grows as the distance
    between two faces shrinks relative to the distance between their latents, so it pushes G to
    let z matter.
    """
    half = images.shape[0] // 2
    apart = (images[:half] - images[half:2 * half]).abs().flatten(1).mean(1)
    latent = (z[:half] - z[half:2 * half]).abs().mean(1)
    return (1 / (apart / latent + 1e-5)).mean()


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
