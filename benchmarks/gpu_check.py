"""The GPU checks of issue 16 as one command: <= 9 minutes on one GPU, every step under its own budget.

    python -m benchmarks.gpu_check --out runs/gpu-check      # on a CUDA machine (make gpu-check)
    python -m benchmarks.gpu_check --cpu-tiny --out DIR      # the same steps, tiny, on CPU (the tests)

Steps, cheapest crash-finders first; each runs in its own session (a timeout ends its whole
process group: torchrun workers, DataLoader workers), its log in DIR/<step>.log:
  cuda-tests  the tests marked ``cuda`` alone (``pytest -m cuda``); on a GPU the step fails unless
              at least one ran and none was skipped;
  torchrun    ``torchrun --nproc_per_node 1`` pretraining smoke run into a fresh DIR/torchrun; the
              step fails unless its run.json records a process group (nccl on CUDA, gloo on CPU);
  presets     a few steps of each Table 1 preset at its full batch with the trainer's step and the
              device's auto settings (bf16, channels_last), synthetic inputs, peak memory per preset;
  speed       ``benchmarks.speed --profile paper``: 4 methods x Hallucinator off/on, end-to-end on
              CIFAR-10 when $DATA_ROOT/cifar10 exists, else Fashion-MNIST at 32 px.
The step budgets (``BUDGETS_S``) add up to at most ``TOTAL_S`` (9 minutes). The GPU A/B is its own
command (``make gpu-ab``, benchmarks/gpu_ab.py). Writes DIR/gpu_check.json (every step's status,
wall time, and parsed results) and DIR/gpu_check.md, which ends with one table naming the card.
Re-running into the same DIR works: each step starts from a fresh output.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from reports.tables import pipe_table

from .process_group import run_group

ROOT = Path(__file__).resolve().parents[1]
TOTAL_S = 540  # 9 minutes on a GPU
BUDGETS_S = {"cuda-tests": 90, "torchrun": 120, "presets": 90, "speed": 210}  # sum 510: 30 s for start-ups
TINY_TOTAL_S, TINY_STEP_S = 1500, 400  # --cpu-tiny on a shared 2-core CPU
TABLE1_METHODS = ("mocov1", "mocov2", "simclr", "simsiam")
TORCHRUN_RUN = ("torchrun", "smoke")  # DIR/torchrun/smoke: the torchrun step's run directory


@dataclass
class Step:
    """One step: its command, time limit, the output it starts fresh, and a check of its result
    (``check(log_text) -> None | why it failed``), run after a zero exit code."""

    name: str
    cmd: list[str]
    limit_s: int
    fresh: Optional[Path] = None
    check: Optional[Callable[[str], Optional[str]]] = field(default=None, repr=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cifar10_root() -> Optional[Path]:
    """$DATA_ROOT/cifar10 when it exists (the speed step's end-to-end data), else None."""
    root = os.environ.get("DATA_ROOT")
    return Path(root) / "cifar10" if root and (Path(root) / "cifar10").is_dir() else None


def check_cuda_tests(gpu: bool) -> Callable[[str], Optional[str]]:
    """The cuda-tests step's check: on a GPU, at least one test passed and none was skipped."""
    def check(text: str) -> Optional[str]:
        counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|skipped|failed|errors?|deselected)", text)}
        if gpu and (counts.get("skipped", 0) or not counts.get("passed", 0)):
            return f"CUDA tests did not all run on the GPU: {counts.get('passed', 0)} passed, {counts.get('skipped', 0)} skipped"
        return None
    return check


def check_process_group(run_dir: Path, backend: str) -> Callable[[str], Optional[str]]:
    """The torchrun step's check: the run finished inside a ``backend`` process group."""
    def check(text: str) -> Optional[str]:
        try:
            info = json.loads((run_dir / "run.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            return f"no run.json in {run_dir}: {e}"
        if info.get("process_group") != backend or info.get("status") != "finished":
            return f"run {info.get('status')} with process group {info.get('process_group')!r}, expected {backend!r}"
        return None
    return check


def plan(out: Path, tiny: bool) -> list[Step]:
    """Every step with its command and budget (``TINY_STEP_S`` each under ``tiny``)."""
    py = sys.executable
    if tiny:
        speed = ["--profile", "cpu-tiny", "--methods", "mocov2", "--steps", "1", "--windows", "2"]
        train = ["device=cpu", "train_subset=256", "batch_size=32", "width=4", "knn_every=0", "metrics_batch=64",
                 "threads=1", "max_steps_per_epoch=2"]
    else:
        cifar = cifar10_root()
        speed = ["--profile", "paper", "--steps", "10", "--windows", "3"] + (
            ["--e2e-data", "profile", "--data-root", str(cifar)] if cifar else ["--e2e-data", "fashion_mnist"])
        train = ["device=cuda", "max_steps_per_epoch=20", "num_workers=8"]
    run_dir = out.joinpath(*TORCHRUN_RUN)
    steps = [
        Step("cuda-tests", [py, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                            *(["tests/lib/test_batch_augment.py"] if tiny else ["tests"])], BUDGETS_S["cuda-tests"],
             check=check_cuda_tests(gpu=not tiny)),
        Step("torchrun", [py, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", str(_free_port()),
                          "-m", "hallucinator.pretrain", "--config", "smoke/mocov2-hal", "epochs=1", *train,
                          f"output_dir={run_dir.parent}", f"run_name={run_dir.name}", "--no-resume"],
             BUDGETS_S["torchrun"], fresh=run_dir.parent, check=check_process_group(run_dir, "gloo" if tiny else "nccl")),
        Step("presets", [py, "-m", "benchmarks.gpu_check", "--presets-only", "--out", str(out)]
             + (["--cpu-tiny"] if tiny else []), BUDGETS_S["presets"], fresh=out / "presets.json"),
        Step("speed", [py, "-m", "benchmarks.speed", *speed, "--out", str(out / "speed.json")], BUDGETS_S["speed"],
             fresh=out / "speed.json"),
    ]
    if tiny:
        for s in steps:
            s.limit_s = TINY_STEP_S
    return steps


def run_steps(out: Path, tiny: bool, total_s: int = TOTAL_S) -> list[dict]:
    """Runs every step of ``plan`` in order; a failed or timed-out step does not stop the others."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "ssl"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    t_start, results = time.monotonic(), []
    for step in plan(out, tiny):
        left = int(total_s - (time.monotonic() - t_start))
        limit = min(step.limit_s, left)
        if limit < 20:
            results.append({"step": step.name, "status": "not run (9-minute budget spent)", "cmd": step.cmd})
            continue
        if step.fresh is not None and step.fresh.is_dir():
            shutil.rmtree(step.fresh)
        elif step.fresh is not None:
            step.fresh.unlink(missing_ok=True)
        t0 = time.monotonic()
        res = run_group(step.cmd, limit, cwd=ROOT, env=env)
        text = res.output
        if res.timed_out:
            status = f"timed out after {limit} s"
        elif res.rc != 0:
            status = "failed"
        else:
            why = step.check(text) if step.check else None
            status = "ok" if why is None else f"failed: {why}"
            text += f"\n[gpu-check] {status}\n"
        (out / f"{step.name}.log").write_text(text)
        results.append({"step": step.name, "status": status, "rc": res.rc, "wall_s": round(time.monotonic() - t0, 1),
                        "limit_s": limit, "cmd": step.cmd, "log": str(out / f"{step.name}.log"), "tail": text[-600:]})
        print(f"[gpu-check] {step.name}: {status} ({results[-1]['wall_s']} s)", flush=True)
    return results


def preset_memory(tiny: bool) -> list[dict]:
    """A few steps of each Table 1 preset at its own batch with the trainer's step and the device's
    auto settings (CUDA: bf16, channels_last, cudnn.benchmark), synthetic inputs; the peak device
    memory of each (``None`` on CPU; ``tiny``: batch 16, width 4, fp32, contiguous)."""
    import torch

    from hallucinator.presets import load_config

    from .speed import trainer_step
    device = torch.device("cpu" if tiny else "cuda")
    if tiny:
        torch.set_num_threads(1)
    rows = []
    for method in TABLE1_METHODS:
        for hal in (False, True):
            preset = f"{method}{'-hal' if hal else ''}-cifar10"
            # tiny (CPU): fp32 and contiguous; channels_last SimCLR steps hung or crashed (double free)
            # in torch 2.14.1's CPU kernels here, and the GPU run is what this step is for.
            extra = ["batch_size=16", "width=4", "queue_size=64", "precision=fp32", "channels_last=false"] if tiny else []
            cfg, step = trainer_step(load_config(preset, [f"device={device.type}", *extra]), device)
            x1 = torch.randn(cfg.batch_size, cfg.in_channels, cfg.image_size or 32, cfg.image_size or 32, device=device)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            t0 = time.perf_counter()
            for _ in range(1 if tiny else 5):
                step(x1, torch.randn_like(x1))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            rows.append({"preset": preset, "batch": cfg.batch_size, "precision": cfg.precision,
                         "channels_last": cfg.channels_last, "steps": 1 if tiny else 5,
                         "seconds": round(time.perf_counter() - t0, 3),
                         "peak_mem_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None})
            print(json.dumps(rows[-1]), flush=True)
            del step
    return rows


def markdown(report: dict) -> str:
    """The Markdown summary: speed rows, preset memory, then one table of every step naming the card."""
    lines = [f"# GPU check ({report['device']}, torch {report['torch']}, {report['mode']})"]
    speed = report.get("speed")
    if speed:
        def cell(r, path):
            v = r.get(f"e2e_{path}_img_s")
            return f"{v:.0f} ({100 * r[f'e2e_{path}_spread']:.0f}%)" if v is not None else r.get(f"e2e_{path}_note", "n/a")
        rows = [{"method": r["method"],
                 "Hallucinator": ("fused" if r["fused"] else "yes") if r["hallucinator"] else "no",
                 "step ms (spread)": f"{r['synthetic_step_ms']:.1f} ({100 * r['synthetic_spread']:.0f}%)",
                 "overhead": f"{100 * r['hallucinator_overhead']:+.1f}%" if r["hallucinator_overhead"] is not None else "-",
                 "e2e per-sample img/s": cell(r, "cpu"), "e2e on-device img/s": cell(r, "device"),
                 "e2e torchvision img/s": cell(r, "torchvision"),
                 "on-device / synthetic": f"{r['e2e_device_ratio']:.2f}" if r.get("e2e_device_ratio") is not None else "n/a",
                 "peak MB": f"{r['peak_mem_mb']:.0f}" if r.get("peak_mem_mb") is not None else "n/a"}
                for r in speed["rows"]]
        lines += ["", f"## Speed ({speed['profile']}, {speed['windows']} interleaved windows x {speed['steps']} steps, "
                      f"median and spread; end-to-end data: {speed['e2e_data']})", "", pipe_table(pd.DataFrame(rows))]
    if report.get("presets"):
        rows = [{"preset": r["preset"], "batch": r["batch"], "precision": r["precision"], "steps": r["steps"],
                 "s": r["seconds"], "peak MB": r["peak_mem_mb"] if r["peak_mem_mb"] is None else round(r["peak_mem_mb"])}
                for r in report["presets"]]
        lines += ["", "## Table 1 presets, synthetic inputs", "", pipe_table(pd.DataFrame(rows))]
    steps = pd.DataFrame([{f"card: {report['device']} (torch {report['torch']})": r["step"], "status": r["status"],
                           "wall s": r.get("wall_s", "-"), "limit s": r.get("limit_s", "-")} for r in report["steps"]])
    lines += ["", "## Steps", "", pipe_table(steps)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cpu-tiny", action="store_true", help="tiny settings on CPU (tests the command itself)")
    p.add_argument("--presets-only", action="store_true", help=argparse.SUPPRESS)  # the 'presets' step's process
    args = p.parse_args(argv)
    import torch
    if not args.cpu_tiny and not torch.cuda.is_available():
        print("error: no CUDA device; use --cpu-tiny to exercise the command on CPU", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.presets_only:
        (args.out / "presets.json").write_text(json.dumps(preset_memory(args.cpu_tiny), indent=2))
        return 0
    steps = run_steps(args.out, args.cpu_tiny, TINY_TOTAL_S if args.cpu_tiny else TOTAL_S)
    report = {"device": torch.cuda.get_device_name(0) if not args.cpu_tiny else "CPU",
              "torch": torch.__version__, "mode": "cpu-tiny" if args.cpu_tiny else "gpu", "steps": steps}
    for key, name in (("speed", "speed.json"), ("presets", "presets.json")):
        f = args.out / name
        report[key] = json.loads(f.read_text()) if f.exists() else None
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if all(s["status"] == "ok" for s in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())
