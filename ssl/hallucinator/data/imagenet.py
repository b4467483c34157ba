"""ImageNet-1k and its 200-class subset IN-200, in the ImageFolder layout."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .errors import DatasetNotFoundError
from .folders import ImageFileDataset, list_class_dirs, list_images

IMAGENET_URL = "https://www.image-net.org/download.php (ILSVRC2012 train and val)"

IMAGENET_LAYOUT = """\
ROOT/
  train/<wnid>/*.JPEG           (one folder per class, e.g. train/n01440764/n01440764_10026.JPEG)
  val/<wnid>/*.JPEG             (the 50000 val images sorted into the same class folders)
"""

IN200_LAYOUT = IMAGENET_LAYOUT + (
    "(IN-200 reads only the 200 class folders listed in hallucinator/data/in200_classes.txt;\n"
    " a full ImageNet-1k tree contains all of them)\n"
)

IN200_FILE = Path(__file__).with_name("in200_classes.txt")


def in200_classes() -> list[str]:
    """The shipped IN-200 class list (200 sorted wnids)."""
    lines = IN200_FILE.read_text().splitlines()
    return [w.strip() for w in lines if w.strip() and not w.startswith("#")]


def _split_dir(root: Path, split: str) -> Path:
    return root / ("train" if split == "train" else "val")


def load_image_folder(
    name: str,
    root: str | Path | None,
    split: str,
    transform=None,
    on_corrupt: str = "error",
    classes: Sequence[str] | None = None,
) -> ImageFileDataset:
    """Lists an ImageFolder tree ``ROOT/{train,val}/<wnid>/*``; images are decoded per item.

    Args:
        name: Registry name used in error messages (``"imagenet"`` or ``"in200"``).
        root: The directory holding ``train/`` and ``val/``.
        split: ``"train"`` or ``"test"`` (= ``val/``).
        transform: Optional callable applied to each 3xHxW uint8 image.
        on_corrupt: ``"error"`` or ``"skip"`` (see :class:`ImageFileDataset`).
        classes: Class folders to read, labelled by their index in ``sorted(classes)``;
            every one must exist. ``None``: all sub-folders of ``ROOT/train`` (or of the
            split's folder when there is no ``train/``).

    Returns:
        ImageFileDataset.

    Raises:
        DatasetNotFoundError: The split folder or a requested class folder is missing.
    """
    layout = IN200_LAYOUT if classes is not None else IMAGENET_LAYOUT
    if root is None:
        raise DatasetNotFoundError(name, None, layout, IMAGENET_URL)
    root = Path(root).expanduser()
    split_dir = _split_dir(root, split)
    if not split_dir.is_dir():
        raise DatasetNotFoundError(name, root, layout, IMAGENET_URL, f"Missing: {split_dir.name}/.")
    if classes is None:
        listing_dir = root / "train" if (root / "train").is_dir() else split_dir
        class_names = list_class_dirs(listing_dir)
        if not class_names:
            raise DatasetNotFoundError(name, listing_dir, layout, IMAGENET_URL, "No class folders found.")
    else:
        class_names = sorted(classes)
    present = set(list_class_dirs(split_dir))
    absent = [c for c in class_names if c not in present]
    if absent:
        raise DatasetNotFoundError(
            name, split_dir, layout, IMAGENET_URL,
            f"{len(absent)} of {len(class_names)} class folders missing, e.g. {', '.join(absent[:5])}.",
        )
    samples = [(p, i) for i, c in enumerate(class_names) for p in list_images(split_dir / c)]
    return ImageFileDataset(samples, class_names, transform, on_corrupt)
