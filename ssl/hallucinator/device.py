"""Which device a process trains or evaluates on: the one home of that choice (training and
``evaluate`` both ask here)."""
from __future__ import annotations

import torch

from .config import TrainConfig


def pick_device(cfg: TrainConfig, local_rank: int) -> torch.device:
    """The configured device ("auto": CUDA when available); on CUDA, ``cuda:<local_rank>``, which
    must be visible (one process per visible GPU)."""
    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device=cuda but CUDA is not available")
    visible = torch.cuda.device_count()
    if local_rank >= visible:
        raise RuntimeError(f"the process with local rank {local_rank} needs cuda:{local_rank} but {visible} CUDA "
                           f"device(s) are visible; start at most {visible} process(es) per node "
                           f"(torchrun --nproc_per_node {visible}) or set device=cpu")
    return torch.device("cuda", local_rank)
