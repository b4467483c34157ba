"""SimSiam's negative cosine similarity with stop-gradient (Chen & He 2021)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``D(p, z) = -mean_i cos(p_i, stopgrad(z_i))``: no gradient ever reaches ``z``."""
    if p.shape != z.shape:
        raise ValueError(f"p and z must have the same shape, got {tuple(p.shape)} and {tuple(z.shape)}")
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()
