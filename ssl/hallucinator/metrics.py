"""Representation diagnostics of Sec 3.4: positive-pair similarity (Eq 5), uniformity (Eq 6)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def positive_similarity(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Eq 5: mean cosine similarity ``q.k / (|q||k|)`` over the rows of ``q``, ``k`` (N x D)."""
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape, got {tuple(q.shape)} and {tuple(k.shape)}")
    return F.cosine_similarity(q.float(), k.float(), dim=1).mean()


@torch.no_grad()
def uniformity(x: torch.Tensor, t: float = 2.0, chunk: int = 4096) -> torch.Tensor:
    """Eq 6: the Gaussian potential ``G_t = mean_{i<j} exp(-t |x_i - x_j|^2)`` of l2-normalised rows.

    Lower is more uniform; points uniform on the unit circle give ``e^{-2t} I0(2t)``
    (0.2070 for t = 2). Computed in row chunks so 10^4-10^5 points fit in memory.
    """
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"need an N x D matrix with N >= 2, got shape {tuple(x.shape)}")
    x = F.normalize(x.double(), dim=1)
    n = x.shape[0]
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for start in range(0, n, chunk):
        block = x[start:start + chunk]
        sq = (2.0 - 2.0 * block @ x.T).clamp_min(0.0)  # |a-b|^2 of unit vectors
        pot = torch.exp(-t * sq)
        # keep only pairs j > i so each unordered pair counts once and i == j is excluded
        rows = torch.arange(start, start + block.shape[0], device=x.device)[:, None]
        pot = pot.masked_fill(torch.arange(n, device=x.device)[None, :] <= rows, 0.0)
        total += pot.sum()
    return (total / (n * (n - 1) / 2)).float()
