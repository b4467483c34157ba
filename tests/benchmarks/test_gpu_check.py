"""benchmarks/gpu_check.py: the GPU command's steps, budgets, timeouts and checks, on CPU."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import gpu_check
from benchmarks.gpu_check import Step
from benchmarks.process_group import run_group

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["cuda-tests", "torchrun", "presets", "speed"]


def test_plan_gives_every_step_its_own_budget_within_the_nine_minutes(tmp_path):
    steps = gpu_check.plan(tmp_path, tiny=False)
    assert [s.name for s in steps] == NAMES  # the GPU A/B is its own command (make gpu-ab)
    assert sum(s.limit_s for s in steps) <= gpu_check.TOTAL_S == 540
    by = {s.name: s for s in steps}
    assert by["speed"].cmd[by["speed"].cmd.index("--profile") + 1] == "paper"
    torchrun = by["torchrun"].cmd
    assert torchrun[torchrun.index("--nproc_per_node") + 1] == "1" and "device=cuda" in torchrun
    assert by["torchrun"].fresh == tmp_path / "torchrun"


def test_data_root_reaches_the_speed_step(tmp_path, monkeypatch):
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "data"))
    speed = {s.name: s for s in gpu_check.plan(tmp_path, tiny=False)}["speed"].cmd
    assert speed[speed.index("--data-root") + 1] == str(tmp_path / "data" / "cifar10")
    assert speed[speed.index("--e2e-data") + 1] == "profile"
    monkeypatch.delenv("DATA_ROOT")
    speed = {s.name: s for s in gpu_check.plan(tmp_path, tiny=False)}["speed"].cmd
    assert "--data-root" not in speed and speed[speed.index("--e2e-data") + 1] == "fashion_mnist"


def test_failures_timeouts_and_the_budget_are_reported(tmp_path, monkeypatch):
    py = sys.executable
    monkeypatch.setattr(gpu_check, "plan", lambda out, tiny: [
        Step("a", [py, "-c", "print(1)"], 30), Step("b", [py, "-c", "1/0"], 30),
        Step("c", [py, "-c", "import time; time.sleep(60)"], 30), Step("d", [py, "-c", "print(2)"], 30)])
    res = gpu_check.run_steps(tmp_path, tiny=True, total_s=33)  # c is cut to what is left, d never starts
    assert [r["status"][:9] for r in res] == ["ok", "failed", "timed out", "not run ("]
    assert "ZeroDivisionError" in (tmp_path / "b.log").read_text() and res[2]["limit_s"] <= 33


def test_a_timeout_ends_the_whole_process_group(tmp_path):
    """A grandchild (as torchrun's workers) dies with the step that started it."""
    pid_file = tmp_path / "grandchild.pid"
    child = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
             " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
             f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(120)")
    t0 = time.monotonic()
    res = run_group([sys.executable, "-c", child], limit_s=3)
    assert res.timed_out and time.monotonic() - t0 < 60
    pid = int(pid_file.read_text())
    for _ in range(50):  # reaped by init shortly after the kill
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {pid} still runs after the step's timeout")


def test_a_second_invocation_starts_each_step_fresh(tmp_path, monkeypatch):
    """A step that refuses an existing output (as pretrain --no-resume does) passes twice in a row."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", f"import os, sys; p = {str(out)!r}; sys.exit(1) if os.path.exists(p) else os.mkdir(p)"]
    monkeypatch.setattr(gpu_check, "plan", lambda o, tiny: [Step("once", cmd, 30, fresh=out)])
    for _ in range(2):
        assert [r["status"] for r in gpu_check.run_steps(tmp_path, tiny=True)] == ["ok"]


def test_cuda_step_fails_on_a_gpu_when_its_tests_were_skipped(tmp_path):
    check = {s.name: s for s in gpu_check.plan(tmp_path, tiny=False)}["cuda-tests"].check
    assert "0 passed, 4 skipped" in check("ssss\n4 skipped in 1.2s")
    assert "1 skipped" in check("3 passed, 1 skipped in 2.0s")
    assert check("no tests ran in 0.1s") is not None
    assert check("4 passed in 3.1s") is None
    tiny = {s.name: s for s in gpu_check.plan(tmp_path, tiny=True)}["cuda-tests"].check
    assert tiny("4 skipped in 1.2s") is None  # no GPU: skipping is the expected outcome


def test_torchrun_step_requires_a_process_group(tmp_path):
    run_dir = tmp_path / "torchrun" / "smoke"
    check = {s.name: s for s in gpu_check.plan(tmp_path, tiny=False)}["torchrun"].check
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"status": "finished", "process_group": None}))
    assert "expected 'nccl'" in check("")
    (run_dir / "run.json").write_text(json.dumps({"status": "finished", "process_group": "nccl"}))
    assert check("") is None


def test_torchrun_with_one_process_creates_a_process_group():
    env = dict(os.environ, RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(gpu_check._free_port()))
    code = ("from hallucinator import distributed; import torch.distributed as dist; info = distributed.init(backend='gloo');"
            "assert dist.is_initialized() and distributed.backend() == 'gloo' and info.world_size == 1;"
            "distributed.shutdown()")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def test_report_ends_with_one_table_naming_the_card():
    report = {"device": "NVIDIA H200", "torch": "2.14.1", "mode": "gpu", "speed": None, "presets": None,
              "steps": [{"step": n, "status": "ok", "wall_s": 1.0, "limit_s": 90} for n in NAMES]}
    md = gpu_check.markdown(report).strip().splitlines()
    table = md[md.index("## Steps") + 2:]
    assert table[0].startswith("| card: NVIDIA H200 ") and [r.split("|")[1].strip() for r in table[2:]] == NAMES


@pytest.mark.slow
@pytest.mark.fmnist
def test_cpu_tiny_runs_every_step_twice(tmp_path):
    for _ in range(2):  # the second invocation into the same directory works too
        res = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--cpu-tiny", "--out", str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=1600)
        report = json.loads((tmp_path / "gpu_check.json").read_text())
        assert res.returncode == 0, (report["steps"], res.stderr[-2000:])
    assert [s["step"] for s in report["steps"]] == NAMES and all(s["status"] == "ok" for s in report["steps"])
    assert len(report["presets"]) == 8 and {r["preset"] for r in report["presets"]} >= {"simsiam-hal-cifar10"}
    assert [(r["hallucinator"], r["fused"]) for r in report["speed"]["rows"]] == [(False, False), (True, False), (True, True)]
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| torchrun | ok |" in md and "mocov2-hal-cifar10" in md and "## Speed" in md
    assert json.loads((tmp_path / "torchrun" / "smoke" / "run.json").read_text())["process_group"] == "gloo"
