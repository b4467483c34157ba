"""Frozen-backbone features of a labelled dataset (eval mode, no augmentation)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from .. import precision as run_precision
from ..data import DatasetFormatError
from .batches import eval_batches


@torch.no_grad()
def extract_features(backbone: nn.Module, dataset: Dataset, dataset_name: str, device: torch.device,
                     size: Optional[int] = None, batch_size: int = 512, num_workers: int = 0,
                     channels_last: bool = False, precision: str = "fp32",
                     on_device: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features (N x F, float32) and labels (N) of ``dataset`` in eval mode, computed on
    ``device`` at the run's ``precision`` (bf16/fp16: autocast); returned on the CPU, or on
    ``device`` with ``on_device``. Each image is read once: with ``on_corrupt="skip"`` an
    unreadable file is left out (N is the number of images scored, ``dataset.num_skipped`` counts
    the rest). The backbone's train/eval mode is restored afterwards.
    """
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    for x, y in eval_batches(dataset, dataset_name, device, size, batch_size, num_workers, channels_last):
        with run_precision.autocast(device, precision):
            f = backbone(x).float()
        feats.append(f if on_device else f.cpu())
        labels.append(y.to(f.device) if on_device else y)
    backbone.train(was_training)
    if not feats:  # an empty split, or on_corrupt=skip and not one file readable
        raise DatasetFormatError(dataset_name,
                                 f"no readable image to evaluate among its {len(dataset)} items")
    return torch.cat(feats), torch.cat(labels).long()
