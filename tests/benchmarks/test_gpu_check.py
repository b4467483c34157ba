"""benchmarks/gpu_check.py: the GPU command's every step, run with tiny settings on CPU."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_check

ROOT = Path(__file__).resolve().parents[2]
FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def test_plan_fits_the_nine_minutes_and_names_every_step(tmp_path):
    steps = gpu_check.plan(tmp_path, tiny=False)
    names = [s[0] for s in steps]
    assert names[:4] == ["cuda-tests", "torchrun", "presets", "speed"]
    assert sum(limit for *_, limit in steps) <= gpu_check.TOTAL_S - 30  # what is left goes to gpu-ab
    speed = dict(zip(names, steps))["speed"][1]
    assert speed[speed.index("--profile") + 1] == "paper" and "--e2e-data" in speed
    torchrun = dict(zip(names, steps))["torchrun"][1]
    assert torchrun[torchrun.index("--nproc_per_node") + 1] == "1" and "device=cuda" in torchrun


def test_failures_timeouts_and_the_budget_are_reported(tmp_path, monkeypatch):
    py = sys.executable
    monkeypatch.setattr(gpu_check, "plan", lambda out, tiny: [
        ("a", [py, "-c", "print(1)"], 30), ("b", [py, "-c", "1/0"], 30),
        ("c", [py, "-c", "import time; time.sleep(60)"], 30), ("d", [py, "-c", "print(2)"], 30)])
    res = gpu_check.run_steps(tmp_path, tiny=True, total_s=33)  # c is cut to what is left, d never starts
    assert [r["status"][:9] for r in res] == ["ok", "failed", "timed out", "not run ("]
    assert "ZeroDivisionError" in (tmp_path / "b.log").read_text() and res[2]["limit_s"] <= 23


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_cpu_tiny_runs_every_step(tmp_path):
    res = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--cpu-tiny", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1600)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert res.returncode == 0, (report["steps"], res.stderr[-2000:])
    names = [s["step"] for s in report["steps"]]
    assert names[:4] == ["cuda-tests", "torchrun", "presets", "speed"] and names[4:] in ([], ["gpu-ab"])
    assert all(s["status"] == "ok" for s in report["steps"])
    assert len(report["presets"]) == 8 and {r["preset"] for r in report["presets"]} >= {"simsiam-hal-cifar10"}
    assert [(r["hallucinator"], r["fused"]) for r in report["speed"]["rows"]] == [(False, False), (True, False), (True, True)]
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| torchrun | ok |" in md and "mocov2-hal-cifar10" in md and "## Speed" in md
    assert (tmp_path / "torchrun" / "smoke" / "run.json").exists()
