"""The smoke profile end to end: pretrain, probe, aggregate, tables, figures, PDF; re-run skips."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
@pytest.mark.fmnist
def test_smoke_table1_end_to_end(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    res = _run("benchmarks.run", "--suite", "table1", "--profile", "smoke", "--runs", str(runs), "--methods", "simsiam")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    run_root = runs / "table1" / "smoke"
    names = sorted(p.name for p in run_root.iterdir())
    assert names == ["random-init-fashion_mnist-s0", "raw-pixels-fashion_mnist", "simsiam-fashion_mnist-s0",
                     "simsiam-hal-fashion_mnist-s0"]
    hal = run_root / "simsiam-hal-fashion_mnist-s0"
    metrics = [json.loads(line) for line in (hal / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert all(m["sim_qhat_k"] is not None and 0 < m["g2"] <= 1 and m["knn_top1"] > 10 for m in metrics)
    probes = json.loads((hal / "eval.json").read_text())["probes"]
    assert set(probes) == {"fast_linear", "fast_linear_1k", "knn"} and all(10 < p["top1"] <= 100 for p in probes.values())
    run_info = json.loads((hal / "run.json").read_text())
    assert run_info["status"] == "finished" and run_info["git_commit"] and run_info["profile"] == "smoke"

    again = _run("benchmarks.run", "--suite", "table1", "--profile", "smoke", "--runs", str(runs), "--methods", "simsiam")
    assert again.returncode == 0 and again.stdout.count("finished earlier, skipped") == 4

    rep = _run("reports.build", "--suite", "table1", "--runs", str(runs), "--out", str(out))
    assert rep.returncode == 0, rep.stderr
    pdf = out / "table1" / "table1.pdf"
    assert pdf.stat().st_size > 10_000
    table = (out / "table1" / "table1_smoke_fast_linear.md").read_text()
    ours = f"{probes['fast_linear']['top1']:.2f}"
    assert ours in table and "SimSiam" in table and "Raw pixels" in table and "Random init" in table
