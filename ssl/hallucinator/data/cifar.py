"""CIFAR-10 and CIFAR-100 from the official python pickle batches."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DatasetNotFoundError
from .in_memory import InMemoryImageDataset

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"

CIFAR10_LAYOUT = """\
ROOT/
  cifar-10-batches-py/          (the extracted cifar-10-python.tar.gz)
    data_batch_1 ... data_batch_5
    test_batch
    batches.meta
"""

CIFAR100_LAYOUT = """\
ROOT/
  cifar-100-python/             (the extracted cifar-100-python.tar.gz)
    train
    test
    meta
"""

_SPECS: dict[str, dict[str, Any]] = {
    "cifar10": dict(
        folder="cifar-10-batches-py",
        files={"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
        meta="batches.meta",
        label_key="labels",
        names_key="label_names",
        layout=CIFAR10_LAYOUT,
    ),
    "cifar100": dict(
        folder="cifar-100-python",
        files={"train": ["train"], "test": ["test"]},
        meta="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        layout=CIFAR100_LAYOUT,
    ),
}


def _unpickle(path: Path) -> dict[str, Any]:
    """Loads one batch; keys come back as str whether stored as bytes or str."""
    with open(path, "rb") as f:
        obj = pickle.load(f, encoding="latin1")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_cifar(name: str, root: str | Path | None, split: str, transform=None) -> InMemoryImageDataset:
    """Loads CIFAR-10 or CIFAR-100 (fine labels) into memory.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: Directory holding ``cifar-10-batches-py``/``cifar-100-python`` (or that
            folder itself).
        split: ``"train"`` (50000 images) or ``"test"`` (10000 images).
        transform: Optional callable applied to each 3x32x32 uint8 image.

    Returns:
        InMemoryImageDataset with images Nx3x32x32 uint8.

    Raises:
        DatasetNotFoundError: A needed file is missing.
    """
    spec = _SPECS[name]
    if root is None:
        raise DatasetNotFoundError(name, None, spec["layout"], CIFAR_URL)
    root = Path(root).expanduser()
    folder = root / spec["folder"]
    if not folder.is_dir() and (root / spec["meta"]).is_file():
        folder = root  # root points at the extracted folder itself
    needed = spec["files"][split] + [spec["meta"]]
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            name, folder, spec["layout"], CIFAR_URL, detail=f"Missing: {', '.join(missing)}."
        )
    data, labels = [], []
    for fname in spec["files"][split]:
        batch = _unpickle(folder / fname)
        data.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))  # Nx3x32x32
        labels.extend(int(t) for t in batch[spec["label_key"]])
    classes = [_text(c) for c in _unpickle(folder / spec["meta"])[spec["names_key"]]]
    images = torch.from_numpy(np.concatenate(data))
    return InMemoryImageDataset(images, torch.tensor(labels, dtype=torch.int64), classes, transform)
