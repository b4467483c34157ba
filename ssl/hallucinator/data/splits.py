"""A run's dataset splits, as training, the per-epoch monitor and ``evaluate`` all read them."""
from __future__ import annotations

from typing import Optional

from torch.utils.data import Dataset

from .registry import build_dataset


def subset(dataset: Dataset, n: Optional[int]) -> Dataset:
    """The first ``n`` items, as the same dataset type (file datasets keep counting skips)."""
    if n is None or n >= len(dataset):
        return dataset
    return dataset.head(n)


def load_split(cfg, split: str) -> Dataset:
    """The run's dataset ``split`` with its corrupt-image policy and pixel limit."""
    return build_dataset(cfg.dataset, cfg.data_root, split, on_corrupt=cfg.on_corrupt,
                         max_pixels=cfg.max_image_pixels)
