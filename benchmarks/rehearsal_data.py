"""Tiny synthetic datasets written in each dataset's real on-disk format, for the rehearsal.

``write_all(root)`` lays out what the ``paper`` profile reads under ``--data-root root``:

* ``cifar-10-batches-py/`` and ``cifar-100-python/``: pickled dicts of bytes keys, lists and a
  uint8 Nx3072 array (protocol 2, as the official batches), read by the restricted unpickler;
* ``stl10_binary/``: ``*_X.bin`` (each image channel by channel, column-major), ``*_y.bin``
  (labels 1..10), ``unlabeled_X.bin``, ``class_names.txt``;
* ``tiny-imagenet-200/``: ``wnids.txt`` (unsorted), ``train/<wnid>/images/*.JPEG`` with the
  ``<wnid>_boxes.txt`` beside them, ``val/images/`` and ``val/val_annotations.txt``;
* ``imagenet/{train,val}/<wnid>/``: variable-size JPEGs over the 200 IN-200 wnids the package
  ships (so IN-200 and the ImageNet-1k loader both read it); among them a greyscale JPEG, a
  CMYK JPEG and a PNG.

Images are smooth random colour fields (upsampled noise): they decode like photos and compress
like them; nothing is learnable, so the rehearsal proves the code path, never accuracy.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from hallucinator.data import in200_classes

STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth HxWx3 uint8 image: 4x4 colour noise upsampled bilinearly."""
    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR), dtype=np.uint8)


def _images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return np.stack([random_image(rng, size, size) for _ in range(n)])  # NxHxWx3


def _dump(obj: object, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar_batch(rng: np.random.Generator, n: int, num_classes: int, label_key: bytes) -> dict:
    labels = rng.integers(0, num_classes, size=n).tolist()
    data = _images(rng, n, 32).transpose(0, 3, 1, 2).reshape(n, 3072)  # R plane, G plane, B plane
    return {b"batch_label": b"rehearsal", label_key: labels, b"data": np.ascontiguousarray(data),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


def write_cifar(root: Path, rng: np.random.Generator, per_batch: int) -> None:
    """CIFAR-10 (5 training batches + test) and CIFAR-100 (train + test, fine and coarse labels)."""
    c10 = root / "cifar-10-batches-py"
    c10.mkdir(parents=True, exist_ok=True)
    for k in range(1, 6):
        _dump(_cifar_batch(rng, per_batch, 10, b"labels"), c10 / f"data_batch_{k}")
    _dump(_cifar_batch(rng, per_batch, 10, b"labels"), c10 / "test_batch")
    _dump({b"label_names": [f"class{i}".encode() for i in range(10)], b"num_cases_per_batch": per_batch,
           b"num_vis": 3072}, c10 / "batches.meta")
    c100 = root / "cifar-100-python"
    c100.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 5 * per_batch), ("test", per_batch)):
        batch = _cifar_batch(rng, n, 100, b"fine_labels")
        batch[b"coarse_labels"] = [f // 5 for f in batch[b"fine_labels"]]
        _dump(batch, c100 / split)
    _dump({b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
           b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}, c100 / "meta")


def write_stl10(root: Path, rng: np.random.Generator, n: int) -> None:
    """STL-10 binaries at 96 px: ``n`` train, ``n`` test and ``n`` unlabeled images."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "test", "unlabeled"):
        images = _images(rng, n, 96)  # NxHxWx3
        (folder / f"{part}_X.bin").write_bytes(np.ascontiguousarray(images.transpose(0, 3, 2, 1)).tobytes())
        if part != "unlabeled":
            (folder / f"{part}_y.bin").write_bytes(rng.integers(1, 11, size=n).astype(np.uint8).tobytes())
    (folder / "class_names.txt").write_text("\n".join(STL10_CLASSES) + "\n")


def write_tiny_imagenet(root: Path, rng: np.random.Generator, num_classes: int, per_class: int) -> None:
    """Tiny ImageNet's layout at 64 px over the first ``num_classes`` IN-200 wnids."""
    folder = root / "tiny-imagenet-200"
    wnids = in200_classes()[:num_classes]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")  # the real file is not sorted
    lines = []
    for c, wnid in enumerate(wnids):
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True, exist_ok=True)
        boxes = []
        for i in range(per_class):
            Image.fromarray(random_image(rng, 64, 64)).save(images / f"{wnid}_{i}.JPEG", format="JPEG")
            boxes.append(f"{wnid}_{i}.JPEG\t0\t0\t63\t63")
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("\n".join(boxes) + "\n")
        name = f"val_{c}.JPEG"
        (folder / "val" / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(random_image(rng, 64, 64)).save(folder / "val" / "images" / name, format="JPEG")
        lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def _save_variant(array: np.ndarray, path: Path, index: int) -> Path:
    """The ``index``-th file of a class folder: every 7th greyscale, every 11th CMYK, every 13th PNG."""
    image = Image.fromarray(array)
    if index % 13 == 5:
        path = path.with_suffix(".png")
        image.save(path, format="PNG")
        return path
    if index % 7 == 3:
        image = image.convert("L")
    elif index % 11 == 4:
        image = image.convert("CMYK")
    image.save(path, format="JPEG", quality=90)
    return path


def write_imagenet(root: Path, rng: np.random.Generator, train_per_class: int, val_per_class: int,
                   sizes: tuple[int, int] = (40, 120)) -> dict[str, int]:
    """ImageFolder trees ``imagenet/{train,val}/<wnid>/`` over the 200 IN-200 wnids.

    Returns:
        How many files of each kind were written (``grey``, ``cmyk``, ``png``, ``rgb``).
    """
    counts = {"grey": 0, "cmyk": 0, "png": 0, "rgb": 0}
    index = 0
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for wnid in in200_classes():
            folder = root / "imagenet" / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = (int(v) for v in rng.integers(sizes[0], sizes[1] + 1, size=2))
                path = _save_variant(random_image(rng, h, w), folder / f"{wnid}_{i}.JPEG", index)
                with Image.open(path) as im:
                    kind = "png" if path.suffix == ".png" else {"L": "grey", "CMYK": "cmyk"}.get(im.mode, "rgb")
                counts[kind] += 1
                index += 1
    return counts


def write_all(root: Path, seed: int = 0, small: int = 64, imagenet_per_class: int = 1) -> dict[str, object]:
    """Every classification dataset of the paper profile under ``root``; returns what was written."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    write_cifar(root, rng, per_batch=small // 2)
    write_stl10(root, rng, n=small)
    write_tiny_imagenet(root, rng, num_classes=10, per_class=max(1, small // 10))
    counts = write_imagenet(root, rng, imagenet_per_class, imagenet_per_class)
    return {"root": str(root), "imagenet_files": counts}
