"""benchmarks/speed.py runs on CPU and reports every variant and end-to-end path side by side."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.fmnist
def test_speed_benchmark_smoke(tmp_path):
    out = tmp_path / "speed.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--profile", "cpu-tiny", "--methods", "mocov2",
                          "--steps", "1", "--windows", "2", "--augment-only", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [(r["hallucinator"], r["fused"]) for r in rows] == [(False, False), (True, False), (True, True)]
    assert rows[0]["hallucinator_overhead"] is None and all(r["hallucinator_overhead"] is not None for r in rows[1:])
    for r in rows:
        assert r["synthetic_step_ms"] > 0 and len(r["synthetic_step_ms_windows"]) == 2 and r["synthetic_spread"] >= 0
        for path in ("cpu", "device", "torchvision"):  # every end-to-end row repeated over the same windows
            windows = r[f"e2e_{path}_img_s_windows"]
            assert len(windows) == 2 and min(windows) <= r[f"e2e_{path}_img_s"] <= max(windows)
            assert r[f"e2e_{path}_spread"] == pytest.approx((max(windows) - min(windows)) / r[f"e2e_{path}_img_s"])
            assert r[f"e2e_{path}_ratio"] == pytest.approx(r[f"e2e_{path}_img_s"] / r["synthetic_img_s"])
        assert r["per_sample_vs_torchvision"] == pytest.approx(r["e2e_cpu_img_s"] / r["e2e_torchvision_img_s"])
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
