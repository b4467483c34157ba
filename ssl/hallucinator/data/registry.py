"""The dataset registry (per-dataset facts) and the single entry point build_dataset."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset

from .cifar import CIFAR10_LAYOUT, CIFAR100_LAYOUT, CIFAR_URL, load_cifar
from .fashion_mnist import FASHION_MNIST_LAYOUT, FASHION_MNIST_SOURCE, load_fashion_mnist
from .folders import ON_CORRUPT
from .imagenet import IMAGENET_LAYOUT, IMAGENET_URL, IN200_LAYOUT, in200_classes, load_image_folder
from .stl10 import STL10_LAYOUT, STL10_URL, load_stl10
from .tiny_imagenet import TINY_IMAGENET_LAYOUT, TINY_IMAGENET_URL, load_tiny_imagenet


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one dataset.

    Attributes:
        name: Registry key.
        num_classes: Number of classes.
        image_size: Native side length in pixels (for ImageNet/IN-200, whose images vary,
            the standard training crop, 224).
        num_channels: 1 (grey) or 3 (RGB).
        mean: Per-channel normalisation mean on [0, 1] pixels.
        std: Per-channel normalisation std on [0, 1] pixels.
        pretrain_split: Split used for self-supervised pretraining.
        splits: Valid ``split`` arguments (aliases included).
        in_memory: True if loaded as one uint8 tensor, False if decoded per item.
        source: Where to obtain the data.
        layout: Expected on-disk layout.
    """

    name: str
    num_classes: int
    image_size: int
    num_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pretrain_split: str
    splits: tuple[str, ...]
    in_memory: bool
    source: str
    layout: str


_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# mean/std: the values in the authors' released configs (configs/small/*) for CIFAR-10/100,
# STL-10 and Tiny ImageNet (CIFAR-10's std is the widely used (0.2023, 0.1994, 0.2010)),
# the standard torchvision ImageNet values, and Fashion-MNIST's commonly used 0.2860/0.3530.
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo("cifar10", 10, 32, 3, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
                    "train", ("train", "test"), True, CIFAR_URL, CIFAR10_LAYOUT),
        DatasetInfo("cifar100", 100, 32, 3, (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761),
                    "train", ("train", "test"), True, CIFAR_URL, CIFAR100_LAYOUT),
        DatasetInfo("stl10", 10, 96, 3, (0.4406, 0.4273, 0.3858), (0.2312, 0.2265, 0.2237),
                    "train+unlabeled", ("train", "test", "train+unlabeled"), True, STL10_URL, STL10_LAYOUT),
        DatasetInfo("tiny_imagenet", 200, 64, 3, (0.4802, 0.4481, 0.3975), (0.2302, 0.2265, 0.2262),
                    "train", ("train", "test", "val"), False, TINY_IMAGENET_URL, TINY_IMAGENET_LAYOUT),
        DatasetInfo("imagenet", 1000, 224, 3, _IMAGENET_MEAN, _IMAGENET_STD,
                    "train", ("train", "test", "val"), False, IMAGENET_URL, IMAGENET_LAYOUT),
        DatasetInfo("in200", 200, 224, 3, _IMAGENET_MEAN, _IMAGENET_STD,
                    "train", ("train", "test", "val"), False, IMAGENET_URL, IN200_LAYOUT),
        DatasetInfo("fashion_mnist", 10, 28, 1, (0.2860,), (0.3530,),
                    "train", ("train", "test"), True, FASHION_MNIST_SOURCE, FASHION_MNIST_LAYOUT),
    ]
}

_ALIASES = {"val": "test"}

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "cifar10": partial(load_cifar, "cifar10"),
    "cifar100": partial(load_cifar, "cifar100"),
    "stl10": load_stl10,
    "tiny_imagenet": load_tiny_imagenet,
    "imagenet": partial(load_image_folder, "imagenet"),
    "in200": lambda root, split, transform, on_corrupt: load_image_folder(
        "in200", root, split, transform, on_corrupt, classes=in200_classes()
    ),
    "fashion_mnist": load_fashion_mnist,
}


def build_dataset(
    name: str,
    root: str | Path | None,
    split: str,
    transform: Callable[[Any], Any] | None = None,
    on_corrupt: str = "error",
    max_pixels: int | None = None,
) -> Dataset:
    """Builds a dataset from local files (nothing is downloaded).

    Every dataset returns ``(uint8 CxHxW tensor, int label)`` items (passed through
    ``transform`` when given); unlabeled STL-10 images have label -1.

    Args:
        name: One of ``DATASETS``: cifar10, cifar100, stl10, tiny_imagenet, imagenet,
            in200, fashion_mnist.
        root: Local directory (see each dataset's ``DATASETS[name].layout``); ``None`` is
            only meaningful for fashion_mnist (Debian's /usr/share/datasets/fashion-mnist).
        split: ``"train"`` or ``"test"``; ``"train+unlabeled"`` for stl10; ``"val"`` is an
            alias of ``"test"`` for tiny_imagenet, imagenet and in200.
        transform: Optional callable applied to each image tensor.
        on_corrupt: ``"error"`` (raise CorruptImageError naming the file) or ``"skip"``
            (return the next readable item and count the file in ``dataset.num_skipped``);
            only folder datasets decode files, in-memory ones ignore it.
        max_pixels: Folder datasets refuse (as corrupt) images with more pixels, read from
            the header before decoding; None = Pillow's ``MAX_IMAGE_PIXELS``.

    Returns:
        An InMemoryImageDataset or an ImageFileDataset.

    Raises:
        ValueError: Unknown name, split or on_corrupt.
        DatasetNotFoundError: The files are not under ``root``.
        CorruptImageError: (on access) an undecodable image with on_corrupt="error".
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    info = DATASETS[name]
    if split not in info.splits:
        raise ValueError(f"unknown split {split!r} for {name}; valid splits: {', '.join(info.splits)}")
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
    split = _ALIASES.get(split, split)
    if info.in_memory:
        return _LOADERS[name](root, split, transform)
    dataset = _LOADERS[name](root, split, transform, on_corrupt)
    dataset.max_pixels = max_pixels
    return dataset
