"""Optimizer choice and the learning-rate schedule: linear warm-up, then step decay or cosine.

The schedule is a pure function of the iteration, so resuming only needs the iteration number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    kind: str = "sgd",
    lr: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
) -> torch.optim.Optimizer:
    """SGD (with momentum) or AdamW over the trainable ``params``."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("No trainable parameters: everything is frozen.")
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"Unknown optimizer {kind!r}; choose 'sgd' or 'adamw'.")


@dataclass(frozen=True)
class LRSchedule:
    """lr(iteration) = base_lr x warm-up factor x decay factor.

    Warm-up goes linearly from ``warmup_factor`` to 1 over ``warmup_iters``. Then ``step`` multiplies
    by ``gamma`` at each milestone (fractions of ``total_iters``), and ``cosine`` falls from 1 to
    ``min_factor`` at ``total_iters``.
    """

    base_lr: float
    total_iters: int
    kind: str = "cosine"
    warmup_iters: int = 0
    warmup_factor: float = 0.001
    milestones: Sequence[float] = (0.7, 0.9)
    gamma: float = 0.1
    min_factor: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("step", "cosine", "constant"):
            raise ValueError(f"Unknown schedule {self.kind!r}; choose 'step', 'cosine' or 'constant'.")

    def factor(self, iteration: int) -> float:
        warm = 1.0
        if iteration < self.warmup_iters:
            alpha = iteration / max(self.warmup_iters, 1)
            warm = self.warmup_factor * (1 - alpha) + alpha
        total = max(self.total_iters, 1)
        if self.kind == "step":
            passed = sum(1 for m in self.milestones if iteration >= round(m * total))
            decay = self.gamma**passed
        elif self.kind == "cosine":
            t = min(max(iteration - self.warmup_iters, 0) / max(total - self.warmup_iters, 1), 1.0)
            decay = self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * t))
        else:
            decay = 1.0
        return warm * decay

    def lr(self, iteration: int) -> float:
        return self.base_lr * self.factor(iteration)

    def apply(self, optimizer: torch.optim.Optimizer, iteration: int) -> float:
        """Set every param group's lr for ``iteration`` (groups may scale it by ``lr_scale``)."""
        lr = self.lr(iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr
