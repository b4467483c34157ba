"""Engine test helpers: tiny runs on the real Fashion-MNIST (Debian package)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

needs_fmnist = pytest.mark.fmnist  # the skip rule lives in tests/conftest.py

TINY = ["train_subset=512", "batch_size=64", "width=4", "knn_train_subset=256", "metrics_batch=128", "threads=1"]


def pretrain(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hallucinator.pretrain", *args], cwd=ROOT,
                          capture_output=True, text=True, **kw)


def equal_state(a, b) -> bool:
    """Whether two checkpoint entries (nested dicts of tensors and plain values) are identical."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal_state(a[k], b[k]) for k in a)
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def assert_same_weights(a: dict, b: dict) -> None:
    """Two end-of-run checkpoints hold bit-identical weights, Hallucinator state and momenta."""
    assert a["epoch"] == b["epoch"] and a["step"] == b["step"] == 0
    assert any(k.endswith("_extra_state") for k in a["model"])  # the Hallucinator's lambda generator
    for k, v in a["model"].items():
        assert equal_state(v, b["model"][k]), f"model entry {k} differs"
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[i]["momentum_buffer"], sb[i]["momentum_buffer"]) for i in sa)


def write_png_folder(root: Path, per_class: int) -> None:
    """An ImageNet-layout folder (``root/{train,val}/<wnid>/NNN.png``) of 2 classes x ``per_class``
    16 px PNGs per split, the two classes told apart by brightness."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, wnid in enumerate(("n01440764", "n01443537")):
            d = root / split / wnid
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 128, (16, 16, 3), dtype=np.uint8) + np.uint8(100 * c)).save(d / f"{i:03d}.png")
