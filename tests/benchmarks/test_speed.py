"""benchmarks/speed.py runs on CPU and reports every variant side by side."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_speed_benchmark_smoke(tmp_path):
    out = tmp_path / "speed.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--methods", "mocov2", "--steps", "1",
                          "--windows", "2", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [(r["hallucinator"], r["fused"]) for r in rows] == [(False, False), (True, False), (True, True)]
    assert rows[0]["hallucinator_overhead"] is None and all(r["hallucinator_overhead"] is not None for r in rows[1:])
    for r in rows:
        assert r["synthetic_step_ms"] > 0 and len(r["synthetic_step_ms_windows"]) == 2
        assert r["e2e_cpu_img_s"] > 0 and r["e2e_device_img_s"] > 0
        assert r["e2e_device_ratio"] == pytest.approx(r["e2e_device_img_s"] / r["synthetic_img_s"])
    assert "mocov2" in res.stdout and "overhead" in res.stdout
