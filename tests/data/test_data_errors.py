"""Missing datasets, corrupt images and bad arguments fail clearly (and never hang)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from hallucinator.data import DATASETS, CorruptImageError, DatasetNotFoundError, build_dataset

SPLIT = {"stl10": "train+unlabeled"}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_dataset_names_layout_and_source(name, tmp_path):
    root = tmp_path / "nothing_here"
    with pytest.raises(DatasetNotFoundError) as info:
        build_dataset(name, root, SPLIT.get(name, "train"))
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert f"'{name}'" in message and str(root) in message
    assert DATASETS[name].layout.strip() in message
    assert DATASETS[name].source in message
    assert "Errno" not in message


@pytest.mark.parametrize("name", sorted(set(DATASETS) - {"fashion_mnist"}))
def test_no_root_given(name):
    with pytest.raises(DatasetNotFoundError, match="no root directory was given"):
        build_dataset(name, None, "train")


def test_specific_urls_in_messages(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"https://www\.cs\.toronto\.edu/~kriz/cifar\.html"):
        build_dataset("cifar100", tmp_path, "test")
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        build_dataset("fashion_mnist", tmp_path, "test")


def test_partial_stl10_names_the_missing_file(stl10_root, tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    for f in ("train_X.bin", "train_y.bin", "class_names.txt"):
        (folder / f).write_bytes((stl10_root["root"] / "stl10_binary" / f).read_bytes())
    assert len(build_dataset("stl10", tmp_path, "train")) == 8
    with pytest.raises(DatasetNotFoundError, match="unlabeled_X.bin"):
        build_dataset("stl10", tmp_path, "train+unlabeled")


def test_in200_with_missing_class_folders(imagenet_root):
    with pytest.raises(DatasetNotFoundError, match="class folders missing"):
        build_dataset("in200", imagenet_root["root"], "train")


def test_corrupt_image_raises_naming_the_file(corrupt_root):
    ds = build_dataset("imagenet", corrupt_root["root"], "train")
    assert len(ds) == 5
    failed = set()
    for i in range(len(ds)):
        try:
            image, _ = ds[i]
            assert image.shape == (3, 48, 48)
        except CorruptImageError as exc:
            assert str(exc.path) in str(exc)
            failed.add(str(exc.path))
    assert failed == corrupt_root["bad"]


def test_corrupt_image_skip_and_count(corrupt_root):
    ds = build_dataset("imagenet", corrupt_root["root"], "train", on_corrupt="skip")
    with pytest.warns(RuntimeWarning, match="skipping"):
        items = [ds[i] for i in range(len(ds))]
    assert all(image.shape == (3, 48, 48) for image, _ in items)
    assert ds.num_skipped == 2 and set(ds.skipped_files) == corrupt_root["bad"]
    _ = [ds[i] for i in range(len(ds))]  # a second epoch neither re-decodes nor double-counts
    assert ds.num_skipped == 2


def test_skip_count_is_shared_across_dataloader_workers(corrupt_root):
    ds = build_dataset("imagenet", corrupt_root["root"], "train", on_corrupt="skip")
    loader = DataLoader(ds, batch_size=5, num_workers=2, shuffle=False)
    for images, labels in loader:
        assert images.dtype == torch.uint8 and images.shape[1:] == (3, 48, 48)
    assert ds.num_skipped == 2 and set(ds.skipped_files) == corrupt_root["bad"]


def test_all_corrupt_does_not_hang(tmp_path):
    folder = tmp_path / "train" / "n01443537"
    folder.mkdir(parents=True)
    for k in range(3):
        (folder / f"{k}.JPEG").write_bytes(b"\xff\xd8\xff" + b"junk" * k)
    ds = build_dataset("imagenet", tmp_path, "train", on_corrupt="skip")
    with pytest.warns(RuntimeWarning), pytest.raises(CorruptImageError, match="no readable image"):
        ds[1]
    assert ds.num_skipped == 3


def test_unknown_name_split_and_mode(cifar_root):
    with pytest.raises(ValueError, match="cifar10, cifar100, stl10, tiny_imagenet, imagenet, in200, fashion_mnist"):
        build_dataset("mnist", cifar_root["root"], "train")
    with pytest.raises(ValueError, match="valid splits: train, test$"):
        build_dataset("cifar10", cifar_root["root"], "train+unlabeled")
    with pytest.raises(ValueError, match="valid splits: train, test, val"):
        build_dataset("imagenet", cifar_root["root"], "validation")
    with pytest.raises(ValueError, match="on_corrupt"):
        build_dataset("imagenet", cifar_root["root"], "train", on_corrupt="ignore")
