"""The face GAN's networks: shapes and size, style conditioning, batch-norm statistics, the mode-seeking penalty."""

from __future__ import annotations


import torch

from avatar.faces import DEFAULT_STYLES
from avatar.model import Discriminator, GanConfig, Generator, mode_seeking_penalty, param_count, standing_stats


def test_shapes_and_size_of_the_shipped_architecture() -> None:
    cfg = GanConfig(n_styles=len(DEFAULT_STYLES))
    g, d = Generator(cfg), Discriminator(cfg)
    assert 1.5e6 < param_count(g) < 3e6
    z = torch.randn(3, cfg.nz)
    images = g(z, torch.tensor([0, 1, 2]))
    assert images.shape == (3, 3, 64, 64) and images.min() >= -1 and images.max() <= 1
    assert d(images, torch.tensor([0, 1, 2])).shape == (3,)


def test_the_style_conditions_the_output() -> None:
    torch.manual_seed(0)
    g = Generator(GanConfig(n_styles=2, ngf=8)).eval()
    z = torch.randn(1, g.cfg.nz)
    with torch.no_grad():
        a, b = g(z, torch.tensor([0])), g(z, torch.tensor([1]))
    assert not torch.allclose(a, b)


def test_standing_stats_give_the_generator_its_own_batchnorm_statistics() -> None:
    torch.manual_seed(0)
    g = Generator(GanConfig(n_styles=2, ngf=8))
    for module in g.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.fill_(3.0)  # statistics that belong to other weights (like an EMA copy's)
    z, style = torch.randn(256, g.cfg.nz), torch.randint(2, (256,))
    with torch.no_grad():
        own = g.train()(z, style)
        assert (g.eval()(z, style) - own).abs().mean() > 0.1
        standing_stats(g, batches=8)
        assert not g.training and (g(z, style) - own).abs().mean() < 0.05


def test_mode_seeking_penalty_punishes_a_generator_that_ignores_z() -> None:
    z = torch.randn(8, 16)
    same = torch.zeros(8, 3, 4, 4)
    varied = torch.randn(8, 3, 4, 4)
    assert mode_seeking_penalty(same, z) > 1000 * mode_seeking_penalty(varied, z)


def test_drawing_a_code_is_the_forward_pass() -> None:
    torch.manual_seed(0)
    g = Generator(GanConfig(n_styles=3, ngf=8)).eval()
    z, style = torch.randn(4, g.cfg.nz), torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        code = g.code(z)
        assert code.shape == (4, g.code_dim)
        assert torch.allclose(g.draw(code, style), g(z, style), atol=1e-5)
        # The style is added back at drawing time: one code, another style, another face.
        assert not torch.allclose(g.draw(code, torch.zeros(4, dtype=torch.long)), g(z, style), atol=1e-3)
