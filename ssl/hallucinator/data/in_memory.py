"""A dataset held in memory as one uint8 tensor (CIFAR, STL-10, Fashion-MNIST)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch.utils.data import Dataset


class InMemoryImageDataset(Dataset):
    """Images as ONE uint8 tensor plus int64 targets; indexing is a tensor view.

    Args:
        images: uint8 tensor, NxCxHxW.
        targets: int64 tensor, N (``-1`` marks an unlabeled image).
        classes: Class names; ``classes[t]`` names target ``t``.
        transform: Optional callable applied to each CxHxW uint8 image.

    Attributes:
        images: uint8 NxCxHxW tensor.
        targets: int64 N tensor.
        classes: list of class names.
        num_channels: C.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        classes: Sequence[str],
        transform: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 NxCxHxW, got {images.dtype} {tuple(images.shape)}")
        if targets.shape != (images.shape[0],):
            raise ValueError(f"targets must have shape ({images.shape[0]},), got {tuple(targets.shape)}")
        self.images = images.contiguous()
        self.targets = targets.to(torch.int64)
        self.classes = list(classes)
        self.transform = transform

    @property
    def num_channels(self) -> int:
        """Number of image channels (1 or 3)."""
        return int(self.images.shape[1])

    @property
    def num_skipped(self) -> int:
        """Always 0: in-memory data has no undecodable files (same API as folder datasets)."""
        return 0

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def head(self, n: int) -> "InMemoryImageDataset":
        """The first ``n`` items (a view of the same tensors)."""
        return InMemoryImageDataset(self.images[:n], self.targets[:n], self.classes, self.transform)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.images[index]  # CxHxW uint8
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return f"{type(self).__name__}(N={n}, C={c}, H={h}, W={w}, classes={len(self.classes)})"
