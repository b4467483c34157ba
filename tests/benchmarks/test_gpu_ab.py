"""benchmarks/gpu_ab.py: the one-command GPU A/B, run end to end with its CPU `tiny` profile."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_ab import BEST_VARIANT, PROFILES, arms, markdown

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_profile_is_the_specified_recipe():
    gpu = dict(o.split("=", 1) for o in PROFILES["gpu"])
    assert (gpu["width"], gpu["image_size"], gpu["batch_size"], gpu["precision"], gpu["augment_on"]) == \
        ("64", "32", "512", "bf16", "device")
    assert [a[0] for a in arms("residual", "gpu")] == ["baseline", "paper", "residual"]
    assert arms("warmup", "gpu")[2][2] == ("hallucinator_preset=warmup", "hallucinator_warmup_steps=1170")


def test_markdown_pairs_gains_by_seed():
    rows = [dict(arm=a, seed=s, top1=t, pretrain_min=1.0, device="cpu", sim_qk_end=0.5, sim_qhat_k_end=None,
                 q_pairwise_cos_end=0.2) for a, s, t in
            [("baseline", 0, 80.0), ("baseline", 1, 81.0), ("paper", 0, 79.0), ("paper", 1, 81.5)]]
    text = markdown(rows, "gpu")
    paper = [line for line in text.splitlines() if line.startswith("| paper")][0]
    assert "| 80.25 |" in paper and "-0.25 [" in paper           # differences -1.0, +0.5


@pytest.mark.slow
@pytest.mark.fmnist
def test_tiny_profile_end_to_end(tmp_path):
    res = subprocess.run([sys.executable, "-m", "benchmarks.gpu_ab", "--profile", "tiny", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads((tmp_path / "gpu_ab.json").read_text())
    assert [r["arm"] for r in data["rows"]] == ["baseline", "paper", BEST_VARIANT]
    assert all(0.0 <= r["top1"] <= 100.0 and r["epochs"] == 1 for r in data["rows"])
    assert data["rows"][0]["sim_qhat_k_end"] is None and data["rows"][1]["sim_qhat_k_end"] is not None
    assert f"| {BEST_VARIANT} |" in (tmp_path / "gpu_ab.md").read_text()
    cfg = json.loads((tmp_path / "runs" / "gpu_ab" / "tiny" / f"{BEST_VARIANT}-s0" / "config.json").read_text())
    assert cfg["hallucinator_preset"] == BEST_VARIANT and cfg["image_size"] == 32 and cfg["augment_on"] == "device"


def test_gpu_profile_states_its_minutes_from_its_limits():
    from benchmarks.gpu_ab import LIMITS_S, max_minutes
    assert max_minutes("gpu") == 3 * sum(LIMITS_S["gpu"]) / 60 == 13.5
    assert "13.5" in (ROOT / "Makefile").read_text().split("gpu-ab:")[0].split("\n")[-2]
