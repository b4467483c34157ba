"""Engine test helpers: tiny runs on the real Fashion-MNIST (Debian package)."""
import subprocess
import sys
from pathlib import Path

import pytest

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
ROOT = Path(__file__).resolve().parents[2]

needs_fmnist = pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST not installed: apt-get install dataset-fashion-mnist (make setup does it)")

TINY = ["train_subset=512", "batch_size=64", "width=4", "knn_train_subset=256", "metrics_batch=128", "threads=1"]


def pretrain(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hallucinator.pretrain", *args], cwd=ROOT,
                          capture_output=True, text=True, **kw)
