"""How close one face is to another: PSNR and SSIM, on tensors in [-1, 1].

SSIM follows Wang et al. (2004): an 11-px Gaussian window (σ 1.5), constants for a dynamic range
of 1, the mean over the image; it is differentiable, so the encoder's refinement can climb it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _window(channels: int, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-(torch.arange(size, dtype=torch.float32) - size // 2) ** 2 / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of each pair of images (N, C, H, W) in [-1, 1]; shape (N,)."""
    x, y = (a + 1) / 2, (b + 1) / 2
    window = _window(x.shape[1]).to(x)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=x.shape[1])

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    value = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return value.flatten(1).mean(1)


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of a whole set (the mean squared error over every pixel of every image), in dB."""
    mse = ((a - b) / 2).double().pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    return torch.as_tensor(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)
