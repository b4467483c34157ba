"""Per-iteration learning-rate schedules, precomputed (float64, one value per step).

``lr_schedule`` names them: ``cosine`` (default) is a linear warmup then cosine annealing per
iteration; ``epoch_cosine`` is the authors' released schedule (ContrastiveCrop's ``_get_lr``): a
cosine per EPOCH with no warmup, the value held for every step of the epoch. Both anneal from
``lr`` towards ``min_ratio * lr`` (the released small-scale configs use 0.1, ImageNet 0).
``multistep`` is the released ``MultiStep`` type (MoCo v1 ImageNet configs): ``lr x decay^j`` in
an epoch that has passed j milestones, held per epoch, no warmup.
"""
from __future__ import annotations

import math
from typing import get_args

import torch

from ..config import LrSchedule

LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)


def _cosine(base_lr: float, progress: float, min_ratio: float) -> float:
    eta = min_ratio * base_lr
    return eta + (base_lr - eta) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(base_lr: float, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> torch.Tensor:
    """The learning rate of every iteration, precomputed (float64, ``total_steps`` long)."""
    if total_steps < 1 or warmup_steps < 0 or not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"need total_steps >= 1, warmup_steps >= 0 and 0 <= min_ratio <= 1, "
                         f"got {total_steps}, {warmup_steps}, {min_ratio}")
    warmup_steps = min(warmup_steps, total_steps)
    lrs = torch.empty(total_steps, dtype=torch.float64)
    for s in range(total_steps):
        if s < warmup_steps:
            lrs[s] = base_lr * (s + 1) / warmup_steps
        else:
            lrs[s] = _cosine(base_lr, (s - warmup_steps) / max(1, total_steps - warmup_steps), min_ratio)
    return lrs


def epoch_cosine(base_lr: float, epochs: int, steps_per_epoch: int, min_ratio: float = 0.0) -> torch.Tensor:
    """Released schedule: every step of epoch e (0-based) runs at ``eta + (lr - eta)(1 + cos(pi e / E)) / 2``
    with ``eta = min_ratio * lr``: epoch 0 at ``lr``, the last epoch just above ``eta``."""
    if epochs < 1 or steps_per_epoch < 1 or not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"need epochs, steps_per_epoch >= 1 and 0 <= min_ratio <= 1, "
                         f"got {epochs}, {steps_per_epoch}, {min_ratio}")
    per_epoch = torch.tensor([_cosine(base_lr, e / epochs, min_ratio) for e in range(epochs)], dtype=torch.float64)
    return per_epoch.repeat_interleave(steps_per_epoch)


def multistep(base_lr: float, epochs: int, steps_per_epoch: int, milestones: tuple[int, ...] = (60, 80),
              decay: float = 0.1) -> torch.Tensor:
    """Released ``MultiStep``: every step of epoch e (0-based) runs at ``lr * decay ** j``, j the number
    of milestones ``<= e`` (the released 1-based rule ``#{m : epoch > m}``): with milestones (60, 80)
    and decay 0, epochs 0-59 at ``lr`` and 0 from epoch 60 (the released epoch 61) on."""
    if epochs < 1 or steps_per_epoch < 1 or not 0.0 <= decay <= 1.0:
        raise ValueError(f"need epochs, steps_per_epoch >= 1 and 0 <= decay <= 1, got {epochs}, {steps_per_epoch}, {decay}")
    per_epoch = torch.tensor([base_lr * decay ** sum(m <= e for m in milestones) for e in range(epochs)],
                             dtype=torch.float64)
    return per_epoch.repeat_interleave(steps_per_epoch)


def build_schedule(name: str, base_lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.0,
                   min_ratio: float = 0.0, milestones: tuple[int, ...] = (60, 80), decay: float = 0.1) -> torch.Tensor:
    """The schedule called ``name`` (one of ``LR_SCHEDULES``) for a whole run."""
    if name == "cosine":
        return warmup_cosine(base_lr, epochs * steps_per_epoch, int(round(warmup_epochs * steps_per_epoch)), min_ratio)
    if name in ("epoch_cosine", "multistep") and warmup_epochs:
        raise ValueError(f"lr_schedule={name} has no warmup; set warmup_epochs=0")
    if name == "epoch_cosine":
        return epoch_cosine(base_lr, epochs, steps_per_epoch, min_ratio)
    if name == "multistep":
        return multistep(base_lr, epochs, steps_per_epoch, milestones, decay)
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {name!r}")
