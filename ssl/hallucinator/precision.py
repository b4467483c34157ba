"""The run's numeric precision (config key ``precision``) as autocast: one mapping for training
and evaluation, so a probe computes at the precision its run was trained with."""
from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager, Optional

import torch

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The autocast dtype of ``precision`` ("fp32": None, no autocast)."""
    return AUTOCAST_DTYPES.get(precision)


def autocast(device: torch.device, precision: str) -> ContextManager:
    """``torch.autocast`` on ``device``'s type for bf16/fp16; a no-op context for fp32."""
    dtype = autocast_dtype(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
