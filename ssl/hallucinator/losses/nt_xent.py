"""NT-Xent, the normalised temperature-scaled cross entropy of SimCLR (Chen et al. 2020)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .. import distributed


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float, gather: bool = True,
            base_temperature: Optional[float] = None) -> torch.Tensor:
    """Mean over the 2N views of ``-log softmax(sim(v, .) / T)[partner(v)]``, self excluded.

    Args:
        a: N x D embeddings of the first views (row i pairs with ``b[i]``).
        b: N x D embeddings of the second views.
        temperature: T (> 0).
        gather: under torchrun, use every rank's views as negatives (gradients flow through
            ``distributed.gather_with_grad``); each rank's loss covers its local 2N rows.
        base_temperature: if set, the loss is multiplied by ``temperature / base_temperature``
            (the released code's NT-Xent, base 0.07: x7.14 at T = 0.5; same optimum, a larger
            effective learning rate). None = plain NT-Xent.
    """
    if temperature <= 0 or (base_temperature is not None and base_temperature <= 0):
        raise ValueError(f"temperatures must be > 0, got {temperature}, base {base_temperature}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    n = a.shape[0]
    if gather and distributed.world_size() > 1:
        cols_a, cols_b, offset = distributed.gather_with_grad(a), distributed.gather_with_grad(b), distributed.rank() * n
    else:
        cols_a, cols_b, offset = a, b, 0
    big_n = cols_a.shape[0]
    rows = torch.cat([a, b])                                # 2n x D (local)
    cols = torch.cat([cols_a, cols_b])                      # 2N x D (global)
    logits = (rows @ cols.T).float() / temperature          # 2n x 2N
    idx = torch.arange(n, device=a.device) + offset         # global index of local row i
    self_col = torch.cat([idx, idx + big_n])
    partner = torch.cat([idx + big_n, idx])
    logits[torch.arange(2 * n, device=a.device), self_col] = float("-inf")
    scale = 1.0 if base_temperature is None else temperature / base_temperature
    return scale * F.cross_entropy(logits, partner)
