"""STL-10 from the official binary files (stl10_binary/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import DatasetFormatError, DatasetNotFoundError, check_labels
from .in_memory import InMemoryImageDataset

STL10_URL = "https://cs.stanford.edu/~acoates/stl10/ (stl10_binary.tar.gz)"

STL10_LAYOUT = """\
ROOT/
  stl10_binary/                 (the extracted stl10_binary.tar.gz)
    train_X.bin   train_y.bin   (5000 labelled images, labels 1..10)
    test_X.bin    test_y.bin    (8000 labelled images)
    unlabeled_X.bin             (100000 images; needed for split 'train+unlabeled')
    class_names.txt
"""

SIZE = 96
_IMAGE_BYTES = 3 * SIZE * SIZE
_PARTS = {"train": ["train"], "test": ["test"], "train+unlabeled": ["train", "unlabeled"]}


def _count(path: Path) -> int:
    size = path.stat().st_size
    if size % _IMAGE_BYTES:
        raise DatasetFormatError(path, f"size {size} is not a multiple of one 3x96x96 image")
    return size // _IMAGE_BYTES


def _read_images_into(path: Path, out: torch.Tensor, chunk: int = 4096) -> None:
    """Reads an STL-10 ``*_X.bin`` into ``out`` (Nx3x96x96), converting chunk by chunk.

    The official layout stores each image channel by channel, each channel column-major
    (x outer, y inner), i.e. as a 3xWxH array: swapping the last two axes gives CxHxW.
    """
    raw = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, 3, SIZE, SIZE)  # Nx3xWxH
    for start in range(0, raw.shape[0], chunk):
        block = torch.from_numpy(np.array(raw[start : start + chunk]))  # copy out of the memmap
        out[start : start + block.shape[0]] = block.transpose(2, 3)  # Nx3xHxW
    del raw


def load_stl10(root: str | Path | None, split: str, transform=None) -> InMemoryImageDataset:
    """Loads STL-10 into memory as one uint8 tensor.

    Args:
        root: Directory holding ``stl10_binary/`` (or that folder itself).
        split: ``"train"``, ``"test"`` or ``"train+unlabeled"`` (unlabeled images get
            target -1).
        transform: Optional callable applied to each 3x96x96 uint8 image.

    Returns:
        InMemoryImageDataset with images Nx3x96x96 uint8 and targets in 0..9 (or -1).

    Raises:
        DatasetNotFoundError: A needed file is missing.
        DatasetFormatError: A file has the wrong size, count or labels (named).
    """
    if root is None:
        raise DatasetNotFoundError("stl10", None, STL10_LAYOUT, STL10_URL)
    root = Path(root).expanduser()
    folder = root / "stl10_binary"
    if not folder.is_dir() and (root / "class_names.txt").is_file():
        folder = root
    needed = ["class_names.txt"]
    for part in _PARTS[split]:
        needed += [f"{part}_X.bin"] + ([] if part == "unlabeled" else [f"{part}_y.bin"])
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            "stl10", folder, STL10_LAYOUT, STL10_URL, detail=f"Missing: {', '.join(missing)}."
        )
    counts = [_count(folder / f"{part}_X.bin") for part in _PARTS[split]]
    images = torch.empty(sum(counts), 3, SIZE, SIZE, dtype=torch.uint8)
    targets = torch.full((sum(counts),), -1, dtype=torch.int64)
    start = 0
    for part, n in zip(_PARTS[split], counts):
        _read_images_into(folder / f"{part}_X.bin", images[start : start + n])
        if part != "unlabeled":
            labels = np.fromfile(folder / f"{part}_y.bin", dtype=np.uint8).astype(np.int64)
            if labels.shape[0] != n:
                raise DatasetFormatError(folder / f"{part}_y.bin", f"{labels.shape[0]} labels for {n} images")
            check_labels(labels - 1, 10, folder / f"{part}_y.bin")  # files store 1..10
            targets[start : start + n] = torch.from_numpy(labels - 1)  # files store 1..10
        start += n
    classes = [c.strip() for c in (folder / "class_names.txt").read_text().splitlines() if c.strip()]
    if len(classes) != 10:
        raise DatasetFormatError(folder / "class_names.txt", f"expected 10 class names, found {len(classes)}")
    return InMemoryImageDataset(images, targets, classes, transform)
