"""Tiny ImageNet (tiny-imagenet-200/) as distributed: train folders, flat val + annotations."""

from __future__ import annotations

from pathlib import Path

from .errors import DatasetFormatError, DatasetNotFoundError
from .folders import ImageFileDataset, list_images

TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip (https://www.image-net.org/)"

TINY_IMAGENET_LAYOUT = """\
ROOT/
  tiny-imagenet-200/            (the extracted tiny-imagenet-200.zip)
    wnids.txt                   (200 wnids, one per line)
    train/<wnid>/images/*.JPEG  (500 per class, 64x64)
    val/images/*.JPEG           (10000 images)
    val/val_annotations.txt     (file<TAB>wnid<TAB>x<TAB>y<TAB>w<TAB>h)
"""


def load_tiny_imagenet(
    root: str | Path | None, split: str, transform=None, on_corrupt: str = "error"
) -> ImageFileDataset:
    """Lists Tiny ImageNet's files; images are decoded per item.

    Labels index the sorted wnids (the order torchvision's ImageFolder gives ``train/``).

    Args:
        root: Directory holding ``tiny-imagenet-200/`` (or that folder itself).
        split: ``"train"`` or ``"test"`` (= the labelled ``val/`` set; the official
            ``test/`` has no labels).
        transform: Optional callable applied to each 3x64x64 uint8 image.
        on_corrupt: ``"error"`` or ``"skip"`` (see :class:`ImageFileDataset`).

    Returns:
        ImageFileDataset.

    Raises:
        DatasetNotFoundError: The layout is missing or incomplete.
    """
    def missing(path: Path | None, detail: str = "") -> DatasetNotFoundError:
        return DatasetNotFoundError("tiny_imagenet", path, TINY_IMAGENET_LAYOUT, TINY_IMAGENET_URL, detail)

    if root is None:
        raise missing(None)
    root = Path(root).expanduser()
    folder = root / "tiny-imagenet-200"
    if not folder.is_dir() and (root / "wnids.txt").is_file():
        folder = root
    if not (folder / "wnids.txt").is_file():
        raise missing(folder, "Missing: wnids.txt.")
    wnids = sorted({w.strip() for w in (folder / "wnids.txt").read_text().splitlines() if w.strip()})
    if not wnids:
        raise DatasetFormatError(folder / "wnids.txt", "lists no wnids")
    index = {w: i for i, w in enumerate(wnids)}
    samples: list[tuple[str, int]] = []
    if split == "train":
        for wnid in wnids:
            images_dir = folder / "train" / wnid / "images"
            if not images_dir.is_dir():
                raise missing(folder, f"Missing: train/{wnid}/images/.")
            samples += [(p, index[wnid]) for p in list_images(images_dir)]
    else:
        notes = folder / "val" / "val_annotations.txt"
        if not notes.is_file() or not (folder / "val" / "images").is_dir():
            raise missing(folder, "Missing: val/images/ or val/val_annotations.txt.")
        for line_no, line in enumerate(notes.read_text().splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in index:
                raise DatasetFormatError(f"{notes}:{line_no}", "expected 'file<TAB>wnid...' with a wnid from wnids.txt")
            samples.append((str(folder / "val" / "images" / fields[0]), index[fields[1]]))
        samples.sort()
    return ImageFileDataset(samples, wnids, transform, on_corrupt)
