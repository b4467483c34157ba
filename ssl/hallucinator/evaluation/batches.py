"""The one batched evaluation loop: a labelled dataset as eval-resized, normalised batches on a device.

Features (``features.py``), the linear probe's test pass (``linear_probe.py``) and the per-epoch
monitor (``monitor.py``) all read their images through :func:`eval_batches`. Images are resized
per sample BEFORE collation, so folders of variable-size JPEGs (ImageNet, IN-200) batch like
in-memory tensors do; in-memory datasets are sliced, moved to the device as uint8, and resized there.
"""
from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset

from ..augmentations import Normalize
from ..data import DATASETS, InMemoryImageDataset


def eval_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (short side to size * 8/7) + center crop for large images; identity at native size."""
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    from torchvision.transforms.v2 import functional as TF
    return TF.center_crop(TF.resize(images, [int(round(size * 8 / 7))], antialias=True), [size, size])


class _Resized(Dataset):
    """Item ``i`` of ``base`` eval-resized to ``size`` x ``size`` (so any image sizes collate)."""

    def __init__(self, base: Dataset, size: int) -> None:
        self.base, self.size = base, size

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        img, label = self.base[i]
        return eval_resize(img, self.size), label


def eval_batches(dataset: Dataset, dataset_name: str, device: torch.device, size: Optional[int] = None,
                 batch_size: int = 512, num_workers: int = 0,
                 channels_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yields ``(x, y)`` in dataset order: x float, normalised, ``size`` x ``size``, on ``device``;
    y int64 labels on the CPU. File datasets are decoded by ``num_workers`` DataLoader workers."""
    info = DATASETS[dataset_name]
    size = size or info.image_size
    norm = Normalize(info.mean, info.std).to(device)

    def ready(x: torch.Tensor) -> torch.Tensor:
        x = norm(x)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    if isinstance(dataset, InMemoryImageDataset):  # slice the uint8 tensor: no per-item decode
        for start in range(0, len(dataset), batch_size):
            x = dataset.images[start:start + batch_size].to(device, non_blocking=True)
            yield ready(eval_resize(x, size)), dataset.targets[start:start + batch_size]
        return
    loader = DataLoader(_Resized(dataset, size), batch_size=batch_size, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    for x, y in loader:
        yield ready(x.to(device, non_blocking=True)), y
