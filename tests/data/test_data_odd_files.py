"""Files that are images only in name: animated (multi-frame) images and symlinks that cannot be
followed are a data error naming the file, or skipped and counted under on_corrupt=skip."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from hallucinator.data import CorruptImageError, build_dataset, read_image_file

WNID = "n01440764"


def _frames(n: int) -> list[Image.Image]:
    return [Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)) for i in range(n)]


def _folder(tmp_path, odd: str) -> tuple[object, str]:
    """ImageFolder ``train/WNID`` with 4 good PNGs and one odd file; returns (root, odd file)."""
    d = tmp_path / "train" / WNID
    d.mkdir(parents=True)
    for i, img in enumerate(_frames(4)):
        img.save(d / f"good{i}.png")
    bad = d / "odd.gif" if odd == "animated-gif" else d / "odd.png"
    if odd == "animated-gif":
        first, *rest = _frames(3)
        first.save(bad, save_all=True, append_images=rest, duration=50, loop=0)
    elif odd == "self-symlink":
        os.symlink(bad.name, bad)  # odd.png -> odd.png
    else:  # dangling symlink
        os.symlink("missing.png", bad)
    return tmp_path, str(bad)


@pytest.mark.parametrize("odd", ["animated-gif", "self-symlink", "dangling-symlink"])
def test_odd_file_is_an_error_naming_it(tmp_path, odd):
    root, bad = _folder(tmp_path, odd)
    ds = build_dataset("imagenet", root, "train")
    assert len(ds) == 5 and bad in [ds.path(i) for i in range(len(ds))]  # listed, not a listing crash
    with pytest.raises(CorruptImageError) as info:
        ds[[ds.path(i) for i in range(len(ds))].index(bad)]
    assert str(info.value.path) == bad and bad in str(info.value)


@pytest.mark.parametrize("odd", ["animated-gif", "self-symlink", "dangling-symlink"])
def test_odd_file_is_skipped_and_counted(tmp_path, odd):
    root, bad = _folder(tmp_path, odd)
    ds = build_dataset("imagenet", root, "train", on_corrupt="skip")
    with pytest.warns(RuntimeWarning, match="skipping"):
        batches = list(DataLoader(ds, batch_size=5, num_workers=0))
    images, _ = batches[0]
    assert images.shape == (5, 3, 16, 16) and images.dtype == torch.uint8  # never a 4-D item at the collate
    assert ds.num_skipped == 1 and ds.skipped_files == [bad]


def test_frames_are_counted_from_the_header_single_frame_gif_still_reads(tmp_path):
    _frames(1)[0].save(tmp_path / "one.gif")
    assert read_image_file(tmp_path / "one.gif").shape == (3, 16, 16)
    first, *rest = _frames(2)
    first.save(tmp_path / "two.tiff", save_all=True, append_images=rest)  # a multi-page TIFF (PIL path)
    with pytest.raises(CorruptImageError, match=r"2 frames \(animated or multi-page\)"):
        read_image_file(tmp_path / "two.tiff")


def test_a_symlink_loop_in_the_class_level_is_not_a_class(tmp_path):
    root, _ = _folder(tmp_path, "animated-gif")
    os.symlink("n99999999", root / "train" / "n99999999")  # a class-level link to itself
    assert build_dataset("imagenet", root, "train").classes == [WNID]
