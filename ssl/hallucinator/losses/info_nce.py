"""InfoNCE with a queue of negatives (MoCo v1/v2, He et al. 2020; Chen et al. 2020)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over rows of ``-log softmax([q.k, q.queue] / T)[0]``.

    Args:
        q: N x D queries (normalised here; the Hallucinator's un-normalised output is fine).
        k: N x D positive keys, one per query (normalised here; no gradient is expected).
        queue: K x D negative keys, already normalised.
        temperature: softmax temperature T (> 0).

    Rows are independent, so the loss over ``cat([q1, q2])`` against ``cat([k, k])`` is exactly
    the mean of the two pairs' losses: the Hallucinator uses that to fuse its second call.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    pos = (q * k).sum(dim=1, keepdim=True)                 # N x 1
    neg = q @ queue.to(q.dtype).T                          # N x K
    logits = torch.cat([pos, neg], dim=1) / temperature    # N x (1+K)
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits.float(), labels)
