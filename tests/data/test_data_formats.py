"""Every loader reads real images written in its dataset's on-disk format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hallucinator.data import (
    DATASETS,
    ImageFileDataset,
    InMemoryImageDataset,
    build_dataset,
    in200_classes,
)


def _chw(hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))


def test_cifar10_round_trip(cifar_root):
    imgs, labels = cifar_root["c10"]
    train = build_dataset("cifar10", cifar_root["root"], "train")
    assert isinstance(train, InMemoryImageDataset)
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.targets.dtype == torch.int64 and train.num_channels == 3
    assert torch.equal(train.images, torch.from_numpy(imgs.transpose(0, 3, 1, 2).copy()))
    assert train.targets.tolist() == labels
    assert train.classes[3] == "cat"
    image, label = train[7]
    assert torch.equal(image, _chw(imgs[7])) and label == labels[7] and isinstance(label, int)
    test = build_dataset("cifar10", cifar_root["root"], "test")
    assert torch.equal(test.images, train.images.flip(0)) and test.targets.tolist() == labels[::-1]
    # The first CIFAR-10 test labels are 3 8 8 0 6 (cat ship ship airplane frog).
    assert labels[:5] == [3, 8, 8, 0, 6]


def test_cifar10_root_may_be_the_batches_folder(cifar_root):
    ds = build_dataset("cifar10", cifar_root["root"] / "cifar-10-batches-py", "test")
    assert len(ds) == 20


def test_cifar100_fine_labels_round_trip(cifar_root):
    imgs, fine = cifar_root["c100"]
    train = build_dataset("cifar100", cifar_root["root"], "train")
    test = build_dataset("cifar100", cifar_root["root"], "test")
    both = torch.cat([train.images, test.images])
    assert torch.equal(both, torch.from_numpy(imgs.transpose(0, 3, 1, 2).copy()))
    assert train.targets.tolist() + test.targets.tolist() == fine
    assert len(train.classes) == 100 and train.classes[0] == "fine0"


def test_stl10_round_trip_and_official_layout(stl10_root):
    imgs, labels, parts = stl10_root["images"], stl10_root["labels"], stl10_root["parts"]
    folder = stl10_root["root"] / "stl10_binary"
    # The writer follows the official reader's recipe (reshape to Nx3x96x96, transpose 0,3,2,1 -> HWC).
    official = np.fromfile(folder / "train_X.bin", dtype=np.uint8).reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)
    assert np.array_equal(official, imgs[parts["train"]])
    for split, sl in (("train", parts["train"]), ("test", parts["test"])):
        ds = build_dataset("stl10", stl10_root["root"], split)
        assert ds.images.shape == (sl.stop - sl.start, 3, 96, 96)
        assert torch.equal(ds.images, torch.from_numpy(imgs[sl].transpose(0, 3, 1, 2).copy()))
        assert ds.targets.tolist() == labels[sl].tolist()
    pre = build_dataset("stl10", stl10_root["root"], DATASETS["stl10"].pretrain_split)
    assert len(pre) == 14
    expected = np.concatenate([imgs[parts["train"]], imgs[parts["unlabeled"]]]).transpose(0, 3, 1, 2)
    assert torch.equal(pre.images, torch.from_numpy(expected.copy()))
    assert pre.targets.tolist() == labels[parts["train"]].tolist() + [-1] * 6
    assert pre.classes[7] == "monkey"
    assert pre[13][1] == -1


def _close(image: torch.Tensor, reference: np.ndarray, tol: float = 16.0) -> bool:
    """Mean absolute difference below ``tol``. JPEG at 64 px, quality 95, loses 1-10 levels on
    these images; a transposed, flipped or channel-swapped image is off by tens."""
    return float((image.float() - _chw(reference).float()).abs().mean()) < tol


def test_tiny_imagenet_folders(tiny_root):
    train = build_dataset("tiny_imagenet", tiny_root["root"], "train")
    assert isinstance(train, ImageFileDataset)
    assert train.classes == tiny_root["wnids"] and len(train) == 15
    seen = {}
    for i in range(len(train)):
        image, label = train[i]
        assert image.shape == (3, 64, 64) and image.dtype == torch.uint8
        seen[Path(train.path(i)).name] = (image, label)
    for name, label, array in tiny_root["train"]:
        assert seen[name][1] == label and _close(seen[name][0], array)
    for split in ("test", "val"):
        val = build_dataset("tiny_imagenet", tiny_root["root"], split)
        assert len(val) == 5
        got = {Path(val.path(i)).name: val[i] for i in range(5)}
        for name, label, array in tiny_root["val"]:
            assert got[name][1] == label and _close(got[name][0], array)


def test_imagenet_image_folder(imagenet_root):
    for split in ("train", "val", "test"):
        ds = build_dataset("imagenet", imagenet_root["root"], split)
        assert ds.classes == imagenet_root["classes"] and len(ds) == 20
        got = {Path(ds.path(i)).name: ds[i] for i in range(len(ds))}
        for name, label, array in imagenet_root["expected"]:
            image, got_label = got[name]
            assert got_label == label
            assert image.shape == (3, *array.shape[:2]) and image.dtype == torch.uint8
            assert _close(image, array, tol=1.0)  # same JPEG bytes: libjpeg vs PIL differ by rounding only


def test_in200_uses_the_shipped_class_list(in200_root):
    wnids = in200_classes()
    for split in ("train", "val"):
        ds = build_dataset("in200", in200_root["root"], split)
        assert ds.classes == wnids and len(ds) == 200  # the 2 extra folders are ignored
        assert ds.targets.tolist() == list(range(200))
        assert all(Path(ds.path(i)).parent.name == wnids[i] for i in range(200))
        image, label = ds[17]
        assert image.shape == (3, 32, 32) and label == 17


def test_fashion_mnist_idx_round_trip(fashion_root):
    for root in (fashion_root["flat"], fashion_root["tv"]):
        train = build_dataset("fashion_mnist", root, "train")
        test = build_dataset("fashion_mnist", root, "test")
        assert train.images.shape == (12, 1, 28, 28) and train.num_channels == 1
        both = torch.cat([train.images, test.images])
        assert torch.equal(both, torch.from_numpy(fashion_root["images"]).unsqueeze(1))
        assert train.targets.tolist() + test.targets.tolist() == fashion_root["labels"].tolist()
        assert train.classes[9] == "Ankle boot"


@pytest.mark.fmnist
def test_fashion_mnist_debian_package(foolbox_images):
    train = build_dataset("fashion_mnist", None, "train")
    test = build_dataset("fashion_mnist", None, "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.targets.dtype == torch.int64
    assert train.targets.bincount().tolist() == [6000] * 10
    assert test.targets.bincount().tolist() == [1000] * 10
    # foolbox's 20 Fashion-MNIST images are the first 20 of the official test set.
    ref = torch.from_numpy(np.stack([a for a, _, _ in foolbox_images["fashionMNIST"]])).unsqueeze(1)
    assert torch.equal(test.images[:20], ref)
    assert test.targets[:20].tolist() == [lab for _, lab, _ in foolbox_images["fashionMNIST"]]


def test_transform_is_applied(cifar_root, imagenet_root):
    to_float = lambda x: x.float() / 255  # noqa: E731
    image, _ = build_dataset("cifar10", cifar_root["root"], "train", transform=to_float)[0]
    assert image.dtype == torch.float32 and float(image.max()) <= 1.0
    image, _ = build_dataset("imagenet", imagenet_root["root"], "train", transform=to_float)[0]
    assert image.dtype == torch.float32


def test_non_jpeg_falls_back_to_pil(tmp_path, foolbox_images):
    array = foolbox_images["cifar10"][0][0]
    path = tmp_path / "train" / "n01443537" / "x.bmp"
    path.parent.mkdir(parents=True)
    Image.fromarray(array).save(path, format="BMP")
    grey = tmp_path / "train" / "n01443537" / "y.png"
    Image.fromarray(array).convert("L").save(grey)
    ds = build_dataset("imagenet", tmp_path, "train")
    assert torch.equal(ds[0][0], _chw(array))  # BMP is lossless
    assert ds[1][0].shape == (3, 32, 32)  # grey PNG comes out RGB


def test_cifar_str_keyed_pickles(cifar_root, tmp_path):
    """The official files are Python 2 pickles whose keys load as str under encoding='latin1'."""
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ["test_batch", "batches.meta"]:
        with open(cifar_root["root"] / "cifar-10-batches-py" / name, "rb") as f:
            obj = pickle.load(f)
        obj = {k.decode(): ([v.decode() for v in vals] if k == b"label_names" else vals) for k, vals in obj.items()}
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)
    ds = build_dataset("cifar10", tmp_path, "test")
    ref = build_dataset("cifar10", cifar_root["root"], "test")
    assert torch.equal(ds.images, ref.images) and ds.classes == ref.classes
