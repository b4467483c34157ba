"""Fast linear probe for small profiles: features extracted once, then multinomial logistic
regression (L-BFGS, full batch, 300 iterations) on standardised features. Deterministic.

The solve runs in float32 by default. On the demo's raw-pixel reference (60,000 x 784, 2-core
CPU, 2026-11-28) float64 cost 1.2 s per function evaluation against 0.33 s in float32, and the two
gave 84.04 % and 84.09 % top-1. ``tests/engine/test_evaluation.py`` checks the two dtypes agree."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def balanced_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n`` labelled items, as equal a number per class as possible (fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels[labels >= 0])
    per = n // len(classes)
    picks = []
    for c in classes:
        idx = torch.nonzero(labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per]])
    out = torch.cat(picks)
    if len(out) < n:  # remainder, drawn from what is left
        rest = torch.ones(len(labels), dtype=torch.bool)
        rest[out] = False
        rest &= labels >= 0
        extra = torch.nonzero(rest).flatten()
        out = torch.cat([out, extra[torch.randperm(len(extra), generator=g)[:n - len(out)]]])
    return out.sort().values


def logistic_regression_top1(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                             test_y: torch.Tensor, weight_decay: float = 1e-4, max_iter: int = 300,
                             train_idx: Optional[torch.Tensor] = None, dtype: torch.dtype = torch.float32) -> float:
    """Top-1 (%) of a linear softmax classifier fit by L-BFGS on (a subset of) the training set,
    standardised with the training mean and std, solved in ``dtype``."""
    keep = train_y >= 0
    if train_idx is not None:
        mask = torch.zeros_like(keep)
        mask[train_idx] = True
        keep &= mask
    x, y = train_x[keep].to(dtype), train_y[keep]
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / std
    xt = (test_x.to(dtype) - mean) / std
    num_classes = int(max(y.max(), test_y.max())) + 1
    w = torch.zeros(x.shape[1], num_classes, dtype=dtype, requires_grad=True)
    b = torch.zeros(num_classes, dtype=dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + 0.5 * weight_decay * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return 100.0 * ((xt @ w + b).argmax(1) == test_y).double().mean().item()
