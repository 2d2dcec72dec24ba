"""PSNR and SSIM on cases whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avatar.quality import psnr_db, ssim, to_tensor


def test_identical_faces_score_perfectly() -> None:
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim(a, a), torch.ones(2), atol=1e-5)
    assert psnr_db(a, a) == math.inf


def test_psnr_of_a_known_error() -> None:
    a = torch.zeros(1, 3, 16, 16)
    b = a + 0.2  # 0.1 of the [0, 1] range everywhere: MSE 0.01, PSNR 20 dB
    assert abs(psnr_db(a, b) - 20.0) < 1e-6


def test_ssim_falls_with_noise_and_ignores_nothing_structural() -> None:
    torch.manual_seed(0)
    a = torch.rand(1, 3, 32, 32) * 2 - 1
    slight = (a + 0.05 * torch.randn_like(a)).clamp(-1, 1)
    heavy = (a + 0.5 * torch.randn_like(a)).clamp(-1, 1)
    assert 1 > ssim(a, slight).item() > ssim(a, heavy).item() > 0
    assert ssim(a, -a).item() < 0  # inverted structure correlates negatively


def test_to_tensor_maps_uint8_to_the_generator_range() -> None:
    images = np.array([[[[0, 255, 128]]]], dtype=np.uint8)
    t = to_tensor(images)
    assert t.shape == (1, 3, 1, 1)
    assert t.flatten().tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6)
