"""The learned 4× upscaler: 64 px generator faces to 256 px faces that look drawn, not blown up.

An ESPCN-style network: every convolution runs at 64 px and a final pixel shuffle lays out the
4×4 sub-pixels, so a face costs a few milliseconds on one core; it predicts the difference from
a bicubic upscale, which it only has to sharpen. Each style it learned adds its own bias to every
layer: outlines, fills and hatching differ from style to style, and the bot always knows which style
it draws. Trained on DiceBear renders of the same seeds at 64 and 256 px
(`python -m avatar.train_upscaler`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

SCALE = 4


@dataclass(frozen=True)
class UpscalerConfig:
    channels: int = 64
    layers: int = 6
    styles: tuple[str, ...] = ()
    """The styles it learned a bias for; any other style gets their mean."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "styles", tuple(self.styles))  # a list when read back from a file

    def to_dict(self) -> dict:
        return {**asdict(self), "styles": list(self.styles)}


@cache
def bf16_is_native() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere it is emulated, slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def fast_inference() -> torch.autocast:
    """Drawing faces in bf16 where the CPU has it natively: the generator and upscaler take about half
    the time there, and faces differ from fp32 by a fraction of a grey level (docs/benchmarks.md)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_is_native())


def _cubic(t: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel at distance `t`, with PyTorch's bicubic coefficient."""
    t = abs(t)
    if t <= 1:
        return ((a + 2) * t - (a + 3)) * t * t + 1
    return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a if t < 2 else 0.0


@cache
def _bicubic_kernel() -> torch.Tensor:
    """(SCALE², 1, 5, 5): the weights of input pixels i-2..i+2 (each way) for each of the SCALE²
    output pixels that input pixel i becomes, as `F.interpolate(..., mode="bicubic",
    align_corners=False)` weighs them (output pixel SCALE*i + j samples the input at
    i + (j + 0.5) / SCALE - 0.5)."""
    taps = torch.zeros(SCALE, 5, dtype=torch.float64)
    for j in range(SCALE):
        where = (j + 0.5) / SCALE - 0.5
        for k in range(-2, 3):
            taps[j, k + 2] = _cubic(where - k)
    return (taps[:, None, :, None] * taps[None, :, None, :]).reshape(SCALE * SCALE, 1, 5, 5)


def bicubic_subpixels(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 3·SCALE², H, W): a bicubic upscale laid out as PixelShuffle's input, one
    5×5 depthwise convolution at the small size (borders repeated, as interpolate clamps them).
    Interpolating at the large size cost as much as the whole network on one core."""
    channels = images.shape[1]
    weight = _bicubic_kernel().repeat(channels, 1, 1, 1).to(images.dtype)
    return F.conv2d(F.pad(images, (2, 2, 2, 2), mode="replicate"), weight, groups=channels)


def bicubic(images: torch.Tensor) -> torch.Tensor:
    """The plain 4× bicubic upscale the network corrects (and the baseline it is measured against)."""
    return F.pixel_shuffle(bicubic_subpixels(images), SCALE)


class Upscaler(nn.Module):
    def __init__(self, cfg: UpscalerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.convs = nn.ModuleList([nn.Conv2d(3, c, 5, padding=2)]
                                   + [nn.Conv2d(c, c, 3, padding=1) for _ in range(cfg.layers - 1)])
        self.style_bias = nn.Parameter(torch.zeros(len(cfg.styles), cfg.layers, c))
        self.out = nn.Conv2d(c, 3 * SCALE * SCALE, 3, padding=1)
        """The correction to bicubic, as sub-pixels: one pixel shuffle lays out both."""

    def style_ids(self, styles: Sequence[str]) -> torch.Tensor:
        """Each style's index in `cfg.styles`, -1 for a style it did not learn."""
        known = self.cfg.styles
        return torch.tensor([known.index(style) if style in known else -1 for style in styles], dtype=torch.long)

    def _biases(self, style_ids: torch.Tensor) -> torch.Tensor:
        """(N, layers, channels, 1, 1): each face's style bias, the learned styles' mean for -1."""
        table = self.style_bias
        if len(self.cfg.styles):
            table = torch.cat([table, table.mean(0, keepdim=True)])  # index -1: the mean
        else:
            table = table.new_zeros(1, self.cfg.layers, self.cfg.channels)
            style_ids = torch.zeros_like(style_ids)
        return table[style_ids][..., None, None]

    def forward(self, images: torch.Tensor, style_ids: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] and (N,) style indices -> (N, 3, 4H, 4W) in [-1, 1]."""
        images = images.contiguous(memory_format=torch.channels_last)  # as loaded weights are (avatar.checkpoint)
        with torch.autocast("cpu", enabled=False):  # the bicubic part in fp32: exact, and no slower
            smooth = bicubic_subpixels(images.float())
        biases = self._biases(style_ids)
        if bool((style_ids == style_ids[0]).all()):
            biases = biases[:1]  # one style: folded into the convolutions' own biases, which costs nothing
        h = images
        for layer, conv in enumerate(self.convs):
            if len(biases) == 1:
                h = F.relu(F.conv2d(h, conv.weight, conv.bias + biases[0, layer].flatten(), padding=conv.padding))
            else:
                h = F.relu(conv(h) + biases[:, layer])
        return F.pixel_shuffle((smooth + self.out(h)).clamp_(-1, 1), SCALE)  # clamped before the shuffle: cheaper there

    def upscale(self, images: torch.Tensor, style_ids: torch.Tensor) -> torch.Tensor:
        """The forward pass as the bot runs it (`fast_inference`), in fp32 out."""
        with fast_inference():
            return self(images, style_ids).float()
