"""Frozen-backbone features of a labelled dataset (eval mode, no augmentation)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from .batches import eval_batches


@torch.no_grad()
def extract_features(backbone: nn.Module, dataset: Dataset, dataset_name: str, device: torch.device,
                     size: Optional[int] = None, batch_size: int = 512, num_workers: int = 0,
                     channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features (N x F, float32, CPU) and labels (N) of ``dataset`` in eval mode.

    The backbone's train/eval mode is restored afterwards.
    """
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    for x, y in eval_batches(dataset, dataset_name, device, size, batch_size, num_workers, channels_last):
        feats.append(backbone(x).float().cpu())
        labels.append(y)
    backbone.train(was_training)
    return torch.cat(feats), torch.cat(labels).long()
