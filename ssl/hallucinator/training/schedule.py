"""Per-iteration learning-rate schedule: linear warmup then cosine annealing to zero."""
from __future__ import annotations

import math

import torch


def warmup_cosine(base_lr: float, total_steps: int, warmup_steps: int = 0) -> torch.Tensor:
    """The learning rate of every iteration, precomputed (float64, ``total_steps`` long)."""
    if total_steps < 1 or warmup_steps < 0:
        raise ValueError(f"need total_steps >= 1 and warmup_steps >= 0, got {total_steps}, {warmup_steps}")
    warmup_steps = min(warmup_steps, total_steps)
    lrs = torch.empty(total_steps, dtype=torch.float64)
    for s in range(total_steps):
        if s < warmup_steps:
            lrs[s] = base_lr * (s + 1) / warmup_steps
        else:
            progress = (s - warmup_steps) / max(1, total_steps - warmup_steps)
            lrs[s] = 0.5 * base_lr * (1.0 + math.cos(math.pi * progress))
    return lrs
