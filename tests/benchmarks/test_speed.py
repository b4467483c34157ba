"""benchmarks/speed.py runs on CPU and reports every variant and end-to-end path side by side."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def test_spread_known_answers():
    """The spread printed beside every median: (max - min) / median of the windows."""
    from benchmarks.speed import _spread
    assert _spread([4.0, 1.0, 2.0]) == 1.5  # (4 - 1) / 2
    assert _spread([3.0, 3.0, 3.0]) == 0.0
    assert math.isnan(_spread([0.0, 0.0, 0.0]))


@pytest.mark.slow
@pytest.mark.fmnist
def test_speed_benchmark_smoke(tmp_path):
    """Every variant and end-to-end path, side by side over the same 3 windows; each median is the
    middle window (not a mean, not the first)."""
    out = tmp_path / "speed.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--profile", "cpu-tiny", "--methods", "mocov2",
                          "--steps", "1", "--windows", "3", "--augment-only", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [(r["hallucinator"], r["fused"]) for r in rows] == [(False, False), (True, False), (True, True)]
    assert rows[0]["hallucinator_overhead"] is None and all(r["hallucinator_overhead"] is not None for r in rows[1:])
    for r in rows:
        windows = r["synthetic_step_ms_windows"]
        assert len(windows) == 3 and r["synthetic_step_ms"] == sorted(windows)[1] > 0
        for path in ("cpu", "device", "torchvision"):  # every end-to-end row repeated over the same windows
            windows = r[f"e2e_{path}_img_s_windows"]
            assert len(windows) == 3 and r[f"e2e_{path}_img_s"] == sorted(windows)[1] > 0
        assert {"e2e_cpu_ratio", "per_sample_vs_torchvision"} <= set(r)
    pipes = {a["pipeline"] for a in data["augment_only"]}
    assert {"per-sample (ours)", "torchvision"} <= pipes and all(a["us_per_image_2_views"] > 0 for a in data["augment_only"])
    assert "mocov2" in res.stdout and "overhead" in res.stdout and "spread" in res.stdout


def test_speed_times_the_trainers_own_step(monkeypatch):
    """Every timed call is the trainer's TrainStep (its scaler, autocast and layout), nothing of its own."""
    from benchmarks import speed
    from hallucinator.training import step as step_module

    calls = []
    real = step_module.TrainStep.__call__

    def counted(self, x1, x2, lr, inspect=None):
        calls.append(self.scaler)
        return real(self, x1, x2, lr, inspect)
    monkeypatch.setattr(step_module.TrainStep, "__call__", counted)
    rows = speed.measure_method("mocov2", "cpu-tiny", torch.device("cpu"), steps=1, windows=1, data_root=None,
                                end_to_end=False)
    assert len(rows) == 3 and len(calls) == 3 * (3 + 1)  # 3 warm-up + 1 timed step per variant
    assert all(r["precision"] == "fp32" and r["channels_last"] is False and r["compile"] is False for r in rows)
