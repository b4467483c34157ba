"""The CPU rehearsal of the paper profile: its data in each real format, its commands, a slow part of it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from benchmarks.rehearsal_data import write_all
from benchmarks.rehearse import SIZES, runs_of, suite_command
from hallucinator.data import build_dataset, in200_classes
from hallucinator.presets import PRESETS, load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rehearsal")
    return root, write_all(root, small=20)


@pytest.mark.parametrize("name, sub", [("cifar10", ""), ("cifar100", ""), ("stl10", ""), ("tiny_imagenet", ""),
                                       ("imagenet", "imagenet"), ("in200", "imagenet")])
def test_every_dataset_loads_through_the_packages_loader(data, name, sub):
    root, _ = data
    for split in ("train", "test"):
        ds = build_dataset(name, root / sub, split)
        image, label = ds[len(ds) - 1]
        assert image.dtype == torch.uint8 and image.shape[0] == 3 and len(ds) > 0 and label >= 0


def test_imagenet_folders_hold_variable_sizes_grey_cmyk_and_png(data):
    root, written = data
    files = sorted((root / "imagenet" / "train").rglob("*.*")) + sorted((root / "imagenet" / "val").rglob("*.*"))
    modes, sizes = set(), set()
    for f in files:
        with Image.open(f) as im:
            modes.add((im.format, im.mode))
            sizes.add(im.size)
    assert {("JPEG", "L"), ("JPEG", "CMYK"), ("JPEG", "RGB"), ("PNG", "RGB")} <= modes
    assert len(sizes) > 10
    assert sorted(p.name for p in (root / "imagenet" / "train").iterdir()) == sorted(in200_classes())
    assert min(written["imagenet_files"].values()) > 0


def test_suite_commands_run_the_paper_presets_under_torchrun_with_only_sizes_changed(tmp_path):
    cmd = suite_command("table4", tmp_path, tmp_path / "runs", runs_of("table4", ["p0.9-s0"]))
    assert cmd[cmd.index("--profile") + 1] == "paper" and cmd[cmd.index("--gpus") + 1] == "2"
    assert cmd[cmd.index("--only") + 1] == "p0.9-s0"
    keys = {o.split("=", 1)[0] for o in SIZES}
    assert keys <= {"epochs", "width", "train_subset", "batch_size", "queue_size", "knn_train_subset",
                    "metrics_batch", "eval_train_subset", "eval_test_subset", "num_workers", "threads", "image_size"}
    base = PRESETS["mocov2-hal-in200"]
    resized = load_config("mocov2-hal-in200", list(SIZES))
    same = {k for k in vars(base) if k not in keys}
    assert {k: getattr(resized, k) for k in same} == {k: getattr(base, k) for k in same}


@pytest.mark.slow
def test_rehearsal_part_torchrun_linear_probe_and_reports(tmp_path):
    """One CIFAR-10 run and one IN-200 (variable-size JPEGs) run, torchrun 2, linear probe, both PDFs."""
    out = tmp_path / "rehearse"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.rehearse", "--out", str(out), "--suites", "table1,table2",
                           "--only", "mocov2-hal-cifar10-s0,mocov2-hal-in200-s0"],
                          cwd=REPO, env=os.environ, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for suite, run in (("table1", "mocov2-hal-cifar10-s0"), ("table2", "mocov2-hal-in200-s0")):
        run_dir = out / "runs" / suite / "paper" / run
        assert json.loads((run_dir / "run.json").read_text())["world_size"] == 2
        ev = json.loads((run_dir / "eval.json").read_text())
        assert ev["status"] == "finished" and len(ev["probes"]["linear"]["history"]) == 2
        assert (out / "reports" / suite / f"{suite}.pdf").stat().st_size > 0
    log = json.loads((out / "rehearsal.json").read_text())
    assert log["failed"] == [] and log["wall_s"] > 0
