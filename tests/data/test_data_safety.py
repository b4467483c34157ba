"""Dataset files cannot run code, every loader error names its file, images arrive as 8-bit
RGB whatever the file stores, bombs are refused before decoding, and skips are counted."""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hallucinator.data import (CorruptImageError, DatasetFormatError, ImageFileDataset, InMemoryImageDataset,
                               build_dataset, read_image_file)
from hallucinator.data.splits import spread, subset


def _copy_cifar10(cifar_root, tmp_path):
    dst = tmp_path / "cifar-10-batches-py"
    shutil.copytree(cifar_root["root"] / "cifar-10-batches-py", dst)
    return dst


class _Payload:
    """Unpickling this creates a marker file: proof that code from the data file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_cifar_batch_that_carries_code_is_refused_naming_the_file(cifar_root, tmp_path):
    folder = _copy_cifar10(cifar_root, tmp_path)
    marker = tmp_path / "code_ran"
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 4, b"x": _Payload(marker)}, f, protocol=2)
    with pytest.raises(DatasetFormatError, match=r"data_batch_3.*refusing io\.open"):
        build_dataset("cifar10", tmp_path, "train")
    assert not marker.exists()


def test_real_cifar_batches_still_load(cifar_root):
    ds = build_dataset("cifar10", cifar_root["root"], "train")
    assert isinstance(ds, InMemoryImageDataset) and len(ds) == 20


@pytest.mark.parametrize("damage,message", [
    ("truncate", "data_batch_2: not a readable CIFAR pickle batch"),
    ("labels", "data_batch_2: 4 images but 3 labels"),
    ("range", r"data_batch_2: label 10 at position 1 is outside 0\.\.9"),
    ("shape", "data_batch_2: 'data' must be a uint8 Nx3072 array"),
])
def test_damaged_cifar_batch_names_the_file(cifar_root, tmp_path, damage, message):
    folder = _copy_cifar10(cifar_root, tmp_path)
    path = folder / "data_batch_2"
    raw = path.read_bytes()
    batch = pickle.loads(raw, encoding="latin1")
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    else:
        if damage == "labels":
            batch[b"labels"] = batch[b"labels"][:3]
        elif damage == "range":
            batch[b"labels"] = [0, 10, 0, 0]
        else:
            batch[b"data"] = batch[b"data"][:, :3000]
        path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetFormatError, match=message):
        build_dataset("cifar10", tmp_path, "train")


def _fashion_copy(fashion_root, tmp_path):
    dst = tmp_path / "fm"
    shutil.copytree(fashion_root["flat"], dst)
    return dst


def test_truncated_gz_and_empty_label_file_name_the_file(fashion_root, tmp_path):
    root = _fashion_copy(fashion_root, tmp_path)
    images = root / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:100])
    with pytest.raises(DatasetFormatError, match="train-images-idx3-ubyte.gz: truncated or corrupt gzip"):
        build_dataset("fashion_mnist", root, "train")
    labels = root / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(b""))
    with pytest.raises(DatasetFormatError, match="t10k-labels-idx1-ubyte.gz: 0 bytes"):
        build_dataset("fashion_mnist", root, "test")


def test_out_of_range_labels_are_refused(fashion_root, stl10_root, tmp_path):
    root = _fashion_copy(fashion_root, tmp_path)
    bad = fashion_root["labels"][12:].copy()
    bad[2] = 10
    header = bytes([0, 0, 8, 1]) + len(bad).to_bytes(4, "big")
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + bad.tobytes()))
    with pytest.raises(DatasetFormatError, match=r"t10k-labels-idx1-ubyte.gz: label 10 at position 2"):
        build_dataset("fashion_mnist", root, "test")
    stl = tmp_path / "stl"
    shutil.copytree(stl10_root["root"], stl)
    y = stl / "stl10_binary" / "test_y.bin"
    y.write_bytes(b"\x00" + y.read_bytes()[1:])  # the files store 1..10
    with pytest.raises(DatasetFormatError, match=r"test_y.bin: label -1 at position 0 is outside 0\.\.9"):
        build_dataset("stl10", stl, "test")


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_16bit_png_grey_and_rgb_become_uint8(tmp_path):
    grey16 = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 257)  # 0..65535 in 257 steps
    (tmp_path / "grey16.png").write_bytes(_png(grey16))
    grey = read_image_file(tmp_path / "grey16.png")
    assert grey.dtype == torch.uint8 and grey.shape == (3, 16, 16)
    assert torch.equal(grey[0], torch.arange(256, dtype=torch.uint8).reshape(16, 16))  # v*257 -> v exactly
    # RGB 16-bit PNG (Pillow cannot write one; build the chunks by hand)
    rgb16 = np.stack([grey16, 65535 - grey16, np.full_like(grey16, 32896)], axis=2)  # 32896 = 128*257
    (tmp_path / "rgb16.png").write_bytes(_png_chunks(16, 16, 16, 2, rgb16.astype(">u2").tobytes(), row_bytes=16 * 6))
    rgb = read_image_file(tmp_path / "rgb16.png")
    assert rgb.dtype == torch.uint8
    assert torch.equal(rgb[1], 255 - rgb[0]) and bool((rgb[2] == 128).all())


def test_float_tiff_is_scaled_not_zeroed(tmp_path):
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "f.tif")
    image = read_image_file(tmp_path / "f.tif")
    assert image.dtype == torch.uint8
    assert torch.equal(image[0], torch.from_numpy(np.rint(values * 255).astype(np.uint8)))


def _png_chunks(width, height, depth, colour, pixels, row_bytes):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + pixels[r * row_bytes:(r + 1) * row_bytes] for r in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    # 20000 x 20000 grey PNG whose header is real; the pixel data would be 400 MB
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_chunks(20000, 20000, 8, 0, b"", row_bytes=0)[:200])
    with pytest.raises(CorruptImageError, match=r"20000x20000 = 400,000,000 pixels exceeds the limit of 89,478,485"):
        read_image_file(bomb)


def test_pixel_limit_is_configurable(corrupt_root):
    ds = build_dataset("imagenet", corrupt_root["root"], "train", max_pixels=48 * 48 - 1)
    with pytest.raises(CorruptImageError, match="48x48 = 2,304 pixels exceeds the limit of 2,303"):
        ds[0]
    assert build_dataset("imagenet", corrupt_root["root"], "train", max_pixels=48 * 48)[0][0].shape == (3, 48, 48)


def test_subset_keeps_the_type_and_counts_skips(corrupt_root):
    ds = build_dataset("imagenet", corrupt_root["root"], "train", on_corrupt="skip")
    # files, listed class by class: a_good, b_good, c_truncated (class 0), a_garbage, b_good (class 1);
    # a folder's subset is evenly spaced (its first 4 would be 3 of class 0): items 0, 1, 3, 4
    sub = subset(ds, 4)
    assert isinstance(sub, ImageFileDataset) and sub.targets.tolist() == [0, 0, 1, 1]
    assert [Path(sub.path(i)).name for i in range(4)] == ["a_good.JPEG", "b_good.JPEG", "a_garbage.JPEG", "b_good.JPEG"]
    with pytest.warns(RuntimeWarning, match="skipping"):
        _ = [sub[i] for i in range(len(sub))]
    assert sub.num_skipped == 1 and sub.skipped_files == [sub.path(2)]
    # evaluation reads a subset as it reads the whole split: each readable image once, none substituted
    assert [item is None for item in map(sub.scored().__getitem__, range(4))] == [False, False, True, False]
    # in memory, the published order already mixes the classes: the first n (the demo's 20k images)
    fm = InMemoryImageDataset(torch.zeros(5, 1, 4, 4, dtype=torch.uint8), torch.arange(5), list("abcde"))
    assert isinstance(subset(fm, 3), InMemoryImageDataset) and subset(fm, 3).targets.tolist() == [0, 1, 2]
    assert spread(fm, 3).targets.tolist() == [0, 2, 4] and spread(fm, None) is fm and subset(fm, 5) is fm


def test_subset_skip_count_is_shared_across_dataloader_workers(corrupt_root):
    ds = build_dataset("imagenet", corrupt_root["root"], "train", on_corrupt="skip")
    head = ds.take(torch.arange(1, 5))  # b_good, c_truncated, a_garbage, b_good
    for images, _ in torch.utils.data.DataLoader(head, batch_size=2, num_workers=2):
        assert images.dtype == torch.uint8
    assert head.num_skipped == 2 and set(head.skipped_files) == corrupt_root["bad"]
