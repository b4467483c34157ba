"""Fixtures for the reporting tests (helpers live in ``reports_fixtures``)."""
from __future__ import annotations

from pathlib import Path

import pytest
from reports_fixtures import make_run

CIFAR = {"dataset": "cifar10", "epochs": 5}  # a 5-epoch demo-width run on CIFAR-10 (a paper dataset)


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    """A table1 suite: 3 seed pairs of MoCoV2 and a finished/corrupt/failed/unfinished set."""
    root = tmp_path / "runs"
    for seed, (wo, w) in enumerate([(60.0, 61.0), (62.0, 64.0), (61.0, 62.5)]):
        make_run(root, f"mocov2_base_s{seed}", seed=seed, top1=wo, knn=55.0 + seed, **CIFAR)
        make_run(root, f"mocov2_hall_s{seed}", seed=seed, top1=w, hallucinator=True,
                 knn=56.0 + seed, **CIFAR)
    make_run(root, "simclr_base_s0", method="simclr", top1=58.0, truncate_metrics=True, **CIFAR)
    make_run(root, "simclr_hall_s5", method="simclr", seed=5, top1=59.0, hallucinator=True, **CIFAR)
    corrupt = make_run(root, "corrupt_run", seed=7, **CIFAR)
    (corrupt / "config.json").write_text('{"suite": "table1", "profile": "de')
    make_run(root, "failed_run", seed=8, status="failed", error="RuntimeError: loss is NaN", **CIFAR)
    make_run(root, "running_run", seed=9, status="running", top1=None, **CIFAR)
    return root
