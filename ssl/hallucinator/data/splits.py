"""A run's dataset splits, as training, the per-epoch monitor and ``evaluate`` all read them."""
from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import Dataset

from .folders import ImageFileDataset
from .in_memory import InMemoryImageDataset
from .registry import build_dataset


def spread(dataset: Dataset, n: Optional[int]) -> Dataset:
    """``n`` items evenly spaced over ``dataset`` (all of it if ``n`` is None or not smaller), as
    the same dataset type, so a class-sorted folder keeps every class (file datasets keep their
    own skip counts, and evaluation still scores each image once)."""
    if n is None or n >= len(dataset):
        return dataset
    idx = torch.linspace(0, len(dataset) - 1, n).round().long()
    if isinstance(dataset, InMemoryImageDataset):
        return InMemoryImageDataset(dataset.images[idx], dataset.targets[idx], dataset.classes, dataset.transform)
    if isinstance(dataset, ImageFileDataset):
        return dataset.take(idx)
    raise TypeError(f"cannot take a subset of {type(dataset).__name__}")


def subset(dataset: Dataset, n: Optional[int]) -> Dataset:
    """``n`` items of a split (``train_subset``, ``eval_*_subset``, ``metrics_batch``), as the same
    dataset type: the first ``n`` of an in-memory split, whose published order mixes the classes
    (the demo's 20k training images are these), and ``n`` evenly spaced ones of an image folder,
    which is listed class by class, so its first ``n`` would hold only the first classes."""
    if n is None or n >= len(dataset):
        return dataset
    return dataset.head(n) if isinstance(dataset, InMemoryImageDataset) else spread(dataset, n)


def load_split(cfg, split: str) -> Dataset:
    """The run's dataset ``split`` with its corrupt-image policy and pixel limit."""
    return build_dataset(cfg.dataset, cfg.data_root, split, on_corrupt=cfg.on_corrupt,
                         max_pixels=cfg.max_image_pixels)
