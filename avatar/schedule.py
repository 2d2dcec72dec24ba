"""The step loop the upscaler's and encoder's trainers share: a step or time budget, cosine decay.

Whichever budget ends first sets the schedule, so a run cut short by its minutes still ends at a
learning rate near zero, with a tqdm bar showing the loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import torch
from tqdm import tqdm


class CosineSteps:
    """`for step in CosineSteps(...)`: sets the optimiser's rate before each step; `report(loss)` after it."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, minutes: float, steps: int | None,
                 desc: str, progress: bool = True) -> None:
        self.optimizer, self.lr, self.budget_s, self.steps = optimizer, lr, minutes * 60, steps
        self.bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress)
        self.done_steps = 0
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def __iter__(self) -> Iterator[int]:
        while (self.steps is None or self.done_steps < self.steps) and self.seconds < self.budget_s:
            done = self.seconds / self.budget_s if self.steps is None else self.done_steps / self.steps
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
            yield self.done_steps
            self.done_steps += 1
            self.bar.update(1)
        self.bar.close()

    def report(self, loss: torch.Tensor) -> None:
        self.bar.set_postfix(loss=f"{loss.item():.4f}")
