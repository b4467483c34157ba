"""CIFAR-10 and CIFAR-100 from the official python pickle batches."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import safe_pickle
from .errors import DatasetFormatError, DatasetNotFoundError, check_labels
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
        num_classes=10,
        layout=CIFAR10_LAYOUT,
    ),
    "cifar100": dict(
        folder="cifar-100-python",
        files={"train": ["train"], "test": ["test"]},
        meta="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        num_classes=100,
        layout=CIFAR100_LAYOUT,
    ),
}


# The only globals a real CIFAR pickle references (python 2 and 3 writers, numpy 1 and 2):
# an ndarray rebuilt from its dtype, and bytes written by python 3 under protocol 2.
_CIFAR_GLOBALS = safe_pickle.NUMPY_ARRAYS | {("_codecs", "encode")}


def _unpickle(path: Path) -> dict[str, Any]:
    """Loads one batch without running code; keys come back as str whether stored as bytes or str.

    Raises:
        DatasetFormatError: Truncated, not a pickle, or a pickle that needs code to load.
    """
    try:
        with open(path, "rb") as f:
            obj = safe_pickle.load(f, _CIFAR_GLOBALS)  # safe: numpy arrays and plain containers only
    except safe_pickle.RefusedGlobal as exc:
        raise DatasetFormatError(path, f"not a readable CIFAR pickle batch (refusing {exc.qualname}: not part of "
                                       "a CIFAR batch)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DatasetFormatError(path, f"not a readable CIFAR pickle batch ({exc})") from None
    if not isinstance(obj, dict):
        raise DatasetFormatError(path, f"expected a dict, found {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _batch_arrays(path: Path, batch: dict[str, Any], label_key: str, num_classes: int) -> tuple[np.ndarray, list[int]]:
    """The Nx3x32x32 images and N labels of one batch, checked against each other."""
    missing = [k for k in ("data", label_key) if k not in batch]
    if missing:
        raise DatasetFormatError(path, f"missing key(s) {missing}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DatasetFormatError(path, f"'data' must be a uint8 Nx3072 array, found {type(data).__name__} {shape}")
    labels = [int(t) for t in batch[label_key]]
    if len(labels) != data.shape[0]:
        raise DatasetFormatError(path, f"{data.shape[0]} images but {len(labels)} labels")
    check_labels(labels, num_classes, path)
    return data.reshape(-1, 3, 32, 32), labels


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
        DatasetFormatError: A batch is truncated, inconsistent, has out-of-range labels or
            would need code to unpickle (the file is named).
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
        images, batch_labels = _batch_arrays(folder / fname, _unpickle(folder / fname), spec["label_key"],
                                             spec["num_classes"])
        data.append(images)  # Nx3x32x32
        labels.extend(batch_labels)
    meta = _unpickle(folder / spec["meta"])
    if spec["names_key"] not in meta:
        raise DatasetFormatError(folder / spec["meta"], f"missing key {spec['names_key']!r}")
    classes = [_text(c) for c in meta[spec["names_key"]]]
    images = torch.from_numpy(np.concatenate(data))
    return InMemoryImageDataset(images, torch.tensor(labels, dtype=torch.int64), classes, transform)
