"""The learned 4× upscaler: 64 px generator faces to 256 px faces that look drawn, not blown up.

An ESPCN-style network: every convolution runs at 64 px and a final pixel shuffle lays out the
4×4 sub-pixels, so a face costs a few milliseconds on one core; it predicts the difference from
a bicubic upscale, which it only has to sharpen. Trained on DiceBear renders of the same seeds at
64 and 256 px (`python -m avatar.train_upscaler`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

SCALE = 4


@dataclass(frozen=True)
class UpscalerConfig:
    channels: int = 32
    layers: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def bf16_is_native() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere it is emulated, slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def fast_inference() -> torch.autocast:
    """Drawing faces in bf16 where the CPU has it natively: the generator and upscaler take about half
    the time there, and faces differ from fp32 by a fraction of a grey level (docs/benchmarks.md)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_is_native())


def bicubic(images: torch.Tensor) -> torch.Tensor:
    """The plain 4× bicubic upscale the network corrects (and the baseline it is measured against)."""
    return F.interpolate(images, scale_factor=SCALE, mode="bicubic", align_corners=False)


class Upscaler(nn.Module):
    def __init__(self, cfg: UpscalerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        body: list[nn.Module] = [nn.Conv2d(3, c, 5, padding=2), nn.ReLU(True)]
        for _ in range(cfg.layers - 1):
            body += [nn.Conv2d(c, c, 3, padding=1), nn.ReLU(True)]
        body += [nn.Conv2d(c, 3 * SCALE * SCALE, 3, padding=1), nn.PixelShuffle(SCALE)]
        self.body = nn.Sequential(*body)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 3, 4H, 4W) in [-1, 1]."""
        return (bicubic(images) + self.body(images)).clamp(-1, 1)

    def upscale(self, images: torch.Tensor) -> torch.Tensor:
        """The forward pass as the bot runs it (`fast_inference`), in fp32 out."""
        with fast_inference():
            return self(images).float()
