"""Datasets of image files decoded on the fly (Tiny ImageNet, ImageNet, IN-200)."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, get_args

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from .decode import read_image_file
from .errors import CorruptImageError

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")
OnCorrupt = Literal["error", "skip"]
ON_CORRUPT: tuple[str, ...] = get_args(OnCorrupt)


def list_images(directory: str | Path) -> list[str]:
    """Image files directly inside ``directory`` (by extension, case-insensitive), sorted.

    A symlink with an image extension that cannot be followed (dangling, or a loop such as a link
    to itself) is listed too: reading it raises :class:`CorruptImageError` naming it, or skips and
    counts it under ``on_corrupt="skip"``, rather than vanishing from the listing or ending it.

    Args:
        directory: The folder to list.

    Returns:
        Sorted absolute paths as strings.
    """
    def listed(e: os.DirEntry) -> bool:
        if not e.name.lower().endswith(IMAGE_EXTENSIONS):
            return False
        try:
            return e.is_file() or (e.is_symlink() and not os.path.exists(e.path))
        except OSError:  # ELOOP: a symlink loop
            return True

    with os.scandir(directory) as entries:
        return sorted(e.path for e in entries if listed(e))


def list_class_dirs(directory: str | Path) -> list[str]:
    """Names of the sub-directories of ``directory`` (hidden ones excluded), sorted; a symlink that
    cannot be followed (dangling or a loop) is not a directory."""
    def is_dir(e: os.DirEntry) -> bool:
        try:
            return e.is_dir()
        except OSError:  # ELOOP
            return False

    with os.scandir(directory) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and is_dir(e))


class ImageFileDataset(Dataset):
    """Image files with integer labels, decoded per item to uint8 RGB CHW tensors.

    Paths live in one numpy byte-string array (not a list of Python objects) so that
    DataLoader workers do not copy them page by page.

    Corrupt or unreadable files either raise :class:`CorruptImageError` naming the file
    (``on_corrupt="error"``) or are skipped (``on_corrupt="skip"``): the item at the next
    readable index is returned instead and the file is recorded in a shared-memory mask,
    so :attr:`num_skipped` counts distinct skipped files across DataLoader workers and
    epochs. When no file at all can be read, :class:`CorruptImageError` is raised
    rather than looping. Evaluation reads through :meth:`scored`, which never substitutes.

    Args:
        samples: (path, label) pairs.
        classes: Class names; ``classes[t]`` names label ``t``.
        transform: Optional callable applied to each 3xHxW uint8 image.
        on_corrupt: ``"error"`` or ``"skip"``.
        max_pixels: Larger images are refused as corrupt before decoding; None = Pillow's
            ``MAX_IMAGE_PIXELS``.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str | Path, int]],
        classes: Sequence[str],
        transform: Callable[[torch.Tensor], Any] | None = None,
        on_corrupt: str = "error",
        max_pixels: Optional[int] = None,
    ) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ValueError(f"on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
        self.classes = list(classes)
        self.transform = transform
        self.on_corrupt = on_corrupt
        self.max_pixels = max_pixels
        paths = [os.fsencode(str(p)) for p, _ in samples]
        self._paths = np.array(paths, dtype=np.bytes_) if paths else np.empty(0, dtype="S1")
        self.targets = torch.tensor([int(t) for _, t in samples], dtype=torch.int64)
        self._skipped = torch.zeros(len(paths), dtype=torch.bool).share_memory_()
        self.substitute = True  # a skipped item is replaced by the next readable one (training)

    num_channels = 3

    def path(self, index: int) -> str:
        """The file of item ``index``."""
        return os.fsdecode(self._paths[index])

    @property
    def num_skipped(self) -> int:
        """Distinct files skipped so far (in any process) because they could not be decoded."""
        return int(self._skipped.sum())

    @property
    def skipped_files(self) -> list[str]:
        """The files skipped so far."""
        return [self.path(int(i)) for i in torch.nonzero(self._skipped).flatten()]

    def __len__(self) -> int:
        return len(self._paths)

    def take(self, index: torch.Tensor) -> "ImageFileDataset":
        """The items at ``index`` (1-D int64) as the same type, with a skip mask of their own."""
        out = copy.copy(self)
        out._paths, out.targets = self._paths[index.numpy()], self.targets[index]
        out._skipped = self._skipped[index].share_memory_()
        return out

    def scored(self) -> "ImageFileDataset":
        """A view for evaluation, which scores each image once: an item that cannot be read
        (``on_corrupt="skip"``) is ``None``, not the next readable one (drop it with
        :func:`collate_readable`); skips are shared with (and counted by) ``self``."""
        out = copy.copy(self)
        out.substitute = False
        return out

    def __getitem__(self, index: int) -> tuple[Any, int] | None:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index %= n
        for offset in range(n if self.substitute else 1):
            i = (index + offset) % n
            if self._skipped[i]:
                continue
            try:
                image = read_image_file(self.path(i), self.max_pixels)
            except CorruptImageError as exc:
                if self.on_corrupt == "error":
                    raise
                self._skipped[i] = True
                warnings.warn(f"skipping: {exc}", RuntimeWarning, stacklevel=2)
                continue
            if self.transform is not None:
                image = self.transform(image)
            return image, int(self.targets[i])
        if not self.substitute:
            return None
        raise CorruptImageError(self.path(index), f"no readable image among all {n} files")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={len(self)}, classes={len(self.classes)}, on_corrupt={self.on_corrupt!r})"


def collate_readable(batch: list) -> Any:
    """``default_collate`` of the items that are not ``None`` (unreadable files of a
    :meth:`ImageFileDataset.scored` view); ``None`` when the whole batch is unreadable."""
    kept = [item for item in batch if item is not None]
    return default_collate(kept) if kept else None


def score_once(dataset: Dataset) -> Dataset:
    """``dataset`` as evaluation must read it: the :meth:`ImageFileDataset.scored` view of a file
    dataset (batch it with :func:`collate_readable`); any other dataset as it is."""
    return dataset.scored() if isinstance(dataset, ImageFileDataset) else dataset
