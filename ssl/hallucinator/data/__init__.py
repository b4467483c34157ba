"""Dataset loaders: local files only, uint8 CHW tensors out, one entry point.

Use :func:`build_dataset`; :data:`DATASETS` holds per-dataset facts (classes, size,
channels, normalisation, pretraining split, layout and source).
"""

from .errors import CorruptImageError, DatasetFormatError, DatasetNotFoundError
from .decode import read_image_file
from .fashion_mnist import read_idx
from .folders import ImageFileDataset
from .imagenet import in200_classes
from .in_memory import InMemoryImageDataset
from .registry import DATASETS, DatasetInfo, build_dataset

__all__ = [
    "DATASETS",
    "CorruptImageError",
    "DatasetFormatError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "ImageFileDataset",
    "InMemoryImageDataset",
    "build_dataset",
    "in200_classes",
    "read_idx",
    "read_image_file",
]
