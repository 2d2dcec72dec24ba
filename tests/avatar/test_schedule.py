"""The trainers' step loop: it stops at its step budget and decays the rate on a cosine."""

from __future__ import annotations

import math

import torch

from avatar.schedule import CosineSteps


def test_steps_budget_and_cosine_rates() -> None:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    loop = CosineSteps(opt, 0.5, minutes=10, steps=4, desc="test", progress=False)
    rates = []
    for step in loop:
        rates.append(opt.param_groups[0]["lr"])
        loop.report(torch.tensor(float(step)))
    assert loop.done_steps == 4
    assert rates == [0.5 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]


def test_the_time_budget_ends_a_loop_without_a_step_budget() -> None:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    loop = CosineSteps(opt, 0.1, minutes=0.0, steps=None, desc="test", progress=False)
    assert list(loop) == [] and loop.done_steps == 0
