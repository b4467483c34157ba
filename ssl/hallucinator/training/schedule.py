"""Per-iteration learning-rate schedules, precomputed (float64, one value per step).

``lr_schedule`` names them: ``cosine`` (default) is a linear warmup then cosine annealing to zero,
per iteration; ``released`` is the authors' released small-scale schedule (ContrastiveCrop's
``_get_lr``): a cosine per EPOCH from ``lr`` down towards ``decay_rate * lr`` (0.1), no warmup, the
value held for every step of the epoch.
"""
from __future__ import annotations

import math

import torch

LR_SCHEDULES = ("cosine", "released")
RELEASED_DECAY_RATE = 0.1  # eta_min = 0.1 x lr in every released small-scale config


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


def epoch_cosine(base_lr: float, epochs: int, steps_per_epoch: int,
                 decay_rate: float = RELEASED_DECAY_RATE) -> torch.Tensor:
    """Released schedule: epoch e (0-based) runs at ``eta + (lr - eta)(1 + cos(pi e / E)) / 2``,
    ``eta = decay_rate * lr``; so epoch 0 uses ``lr`` and the last epoch just above ``eta``."""
    if epochs < 1 or steps_per_epoch < 1 or not 0.0 <= decay_rate <= 1.0:
        raise ValueError(f"need epochs, steps_per_epoch >= 1 and 0 <= decay_rate <= 1, "
                         f"got {epochs}, {steps_per_epoch}, {decay_rate}")
    eta = decay_rate * base_lr
    per_epoch = torch.tensor([eta + (base_lr - eta) * (1.0 + math.cos(math.pi * e / epochs)) / 2
                              for e in range(epochs)], dtype=torch.float64)
    return per_epoch.repeat_interleave(steps_per_epoch)


def build_schedule(name: str, base_lr: float, epochs: int, steps_per_epoch: int,
                   warmup_epochs: float = 0.0) -> torch.Tensor:
    """The schedule called ``name`` (one of ``LR_SCHEDULES``) for a whole run."""
    if name == "cosine":
        return warmup_cosine(base_lr, epochs * steps_per_epoch, int(round(warmup_epochs * steps_per_epoch)))
    if name == "released":
        if warmup_epochs:
            raise ValueError("lr_schedule=released has no warmup; set warmup_epochs=0")
        return epoch_cosine(base_lr, epochs, steps_per_epoch)
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {name!r}")
