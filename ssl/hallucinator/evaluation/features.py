"""Frozen-backbone features of a labelled dataset (eval mode, no augmentation)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..augmentations import Normalize
from ..data import DATASETS, DatasetFormatError, InMemoryImageDataset
from ..data.folders import collate_readable, score_once


def eval_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (short side to size * 8/7) + center crop for large images; identity at native size."""
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    from torchvision.transforms.v2 import functional as TF
    return TF.center_crop(TF.resize(images, [int(round(size * 8 / 7))], antialias=True), [size, size])


class _Resized(Dataset):
    def __init__(self, base: Dataset, size: int) -> None:
        self.base, self.size = base, size

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        item = self.base[i]
        if item is None:  # an unreadable file of a scored() view: dropped by collate_readable
            return None
        img, label = item
        return eval_resize(img, self.size), label


@torch.no_grad()
def extract_features(backbone: nn.Module, dataset: Dataset, dataset_name: str, device: torch.device,
                     size: Optional[int] = None, batch_size: int = 512, num_workers: int = 0,
                     channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features (N x F, float32, CPU) and labels (N) of ``dataset`` in eval mode.

    Each image is read once: with ``on_corrupt="skip"`` an unreadable file is left out (N is
    the number of images scored, ``dataset.num_skipped`` counts the rest), never replaced by
    its neighbour. The backbone's train/eval mode is restored afterwards.
    """
    info = DATASETS[dataset_name]
    size = size or info.image_size
    norm = Normalize(info.mean, info.std).to(device)
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    if isinstance(dataset, InMemoryImageDataset):  # in-memory: slice the uint8 tensor directly
        for start in range(0, len(dataset), batch_size):
            x = eval_resize(dataset.images[start:start + batch_size], size).to(device)
            x = norm(x)
            feats.append(backbone(x.contiguous(memory_format=torch.channels_last) if channels_last else x).float().cpu())
        labels = [dataset.targets]
    else:
        loader = DataLoader(_Resized(score_once(dataset), size), batch_size=batch_size, num_workers=num_workers,
                            pin_memory=device.type == "cuda", collate_fn=collate_readable)
        for batch in loader:
            if batch is None:
                continue
            x, y = batch
            x = norm(x.to(device, non_blocking=True))
            feats.append(backbone(x.contiguous(memory_format=torch.channels_last) if channels_last else x).float().cpu())
            labels.append(y)
    backbone.train(was_training)
    if not feats:  # an empty split, or on_corrupt=skip and not one file readable
        raise DatasetFormatError(dataset_name,
                                 f"no readable image to evaluate among its {len(dataset)} items")
    return torch.cat(feats), torch.cat(labels).long()
