"""Fashion-MNIST from its four idx files (Debian package or torchvision's raw folder)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import DatasetFormatError, DatasetNotFoundError, check_labels
from .in_memory import InMemoryImageDataset

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_SOURCE = (
    "`apt-get install dataset-fashion-mnist` (Debian; installs to /usr/share/datasets/fashion-mnist/) "
    "or https://github.com/zalandoresearch/fashion-mnist"
)
FASHION_MNIST_LAYOUT = """\
ROOT/                           (default: /usr/share/datasets/fashion-mnist)
  train-images-idx3-ubyte[.gz]
  train-labels-idx1-ubyte[.gz]
  t10k-images-idx3-ubyte[.gz]
  t10k-labels-idx1-ubyte[.gz]
or torchvision's layout: ROOT/FashionMNIST/raw/<the same four files>
"""
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: str | Path) -> np.ndarray:
    """Reads an unsigned-byte idx file (optionally gzipped).

    Args:
        path: ``*.idx?-ubyte`` or ``*.idx?-ubyte.gz``.

    Returns:
        uint8 array with the shape stored in the header.

    Raises:
        DatasetFormatError: Truncated or corrupt gzip, short header, bad magic number or size
            (a ValueError naming the file).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetFormatError(path, f"truncated or corrupt gzip file ({exc})") from None
    if len(data) < 4 or len(data) < 4 + 4 * data[3]:
        raise DatasetFormatError(path, f"{len(data)} bytes: too short for an idx header")
    zero, dtype_code, ndim = data[0] << 8 | data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise DatasetFormatError(path, f"not an unsigned-byte idx file (magic {data[:4].hex()})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DatasetFormatError(path, f"header says {shape}, body has {body.size} bytes")
    return body.reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist(root: str | Path | None, split: str, transform=None) -> InMemoryImageDataset:
    """Loads Fashion-MNIST into memory.

    Args:
        root: Folder with the four idx files, or with ``FashionMNIST/raw/``; ``None``
            looks in ``/usr/share/datasets/fashion-mnist`` (Debian package).
        split: ``"train"`` (60000) or ``"test"`` (10000).
        transform: Optional callable applied to each 1x28x28 uint8 image.

    Returns:
        InMemoryImageDataset with images Nx1x28x28 uint8.

    Raises:
        DatasetNotFoundError: The idx files are not there.
        DatasetFormatError: A file is corrupt, the counts differ or a label is not 0..9.
    """
    base = DEBIAN_DIR if root is None else Path(root).expanduser()
    stems = [f"{_PREFIX[split]}-images-idx3-ubyte", f"{_PREFIX[split]}-labels-idx1-ubyte"]
    for folder in (base, base / "FashionMNIST" / "raw"):
        found = [_find(folder, s) for s in stems]
        if all(found):
            break
    else:
        raise DatasetNotFoundError(
            "fashion_mnist", base, FASHION_MNIST_LAYOUT, FASHION_MNIST_SOURCE,
            detail=f"Missing: {', '.join(stems)} (also looked in {base / 'FashionMNIST' / 'raw'}).",
        )
    images = read_idx(found[0])  # Nx28x28
    labels = read_idx(found[1])  # N
    if images.ndim != 3:
        raise DatasetFormatError(found[0], f"expected N x 28 x 28 images, header says {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DatasetFormatError(found[1], f"labels {labels.shape} do not match images {images.shape} in {found[0]}")
    check_labels(labels, len(CLASSES), found[1])
    return InMemoryImageDataset(
        torch.from_numpy(images.copy()).unsqueeze(1),  # Nx1x28x28
        torch.from_numpy(labels.astype(np.int64)),
        CLASSES,
        transform,
    )
