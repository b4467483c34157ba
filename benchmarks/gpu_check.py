"""The GPU checks of issue 16 as one command: <= 9 minutes on one GPU, every step under its own timeout.

    python -m benchmarks.gpu_check --out runs/gpu-check      # on a CUDA machine (make gpu-check)
    python -m benchmarks.gpu_check --cpu-tiny --out DIR      # the same steps, tiny, on CPU (the tests)

Steps, cheapest crash-finders first; each runs in its own process, its log in DIR/<step>.log:
  cuda-tests  the tests marked ``cuda`` alone (``pytest -m cuda``);
  torchrun    ``torchrun --nproc_per_node 1`` pretraining smoke run (nccl on CUDA, gloo on CPU);
  presets     a few steps of each Table 1 preset at its full batch (512, bf16, channels_last),
              synthetic inputs, peak memory per preset;
  speed       ``benchmarks.speed --profile paper``: 4 methods x Hallucinator off/on, end-to-end on
              CIFAR-10 when $DATA_ROOT/cifar10 exists, else Fashion-MNIST at 32 px;
  gpu-ab      ``python -m benchmarks.gpu_ab --profile gpu --out DIR/gpu-ab`` when that module exists,
              with the time that is left (``--profile tiny`` under --cpu-tiny).
Writes DIR/gpu_check.json (every step's status, wall time, and parsed results) and DIR/gpu_check.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOTAL_S = 540  # 9 minutes on a GPU
TINY_TOTAL_S, TINY_STEP_S = 1500, 400  # --cpu-tiny on a shared 2-core CPU
TABLE1_METHODS = ("mocov1", "mocov2", "simclr", "simsiam")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has_cifar10() -> bool:
    root = os.environ.get("DATA_ROOT")
    return bool(root) and (Path(root) / "cifar10").is_dir()


def plan(out: Path, tiny: bool) -> list[tuple[str, list[str], int]]:
    """(step, command, timeout in s) for every step; ``gpu-ab`` gets what is left at run time."""
    py = sys.executable
    if tiny:
        speed = ["--profile", "cpu-tiny", "--methods", "mocov2", "--steps", "1", "--windows", "2"]
        train = ["device=cpu", "train_subset=256", "batch_size=32", "width=4", "knn_every=0", "metrics_batch=64",
                 "threads=1", "max_steps_per_epoch=2"]
    else:
        speed = ["--profile", "paper", "--steps", "10", "--windows", "3",
                 "--e2e-data", "profile" if _has_cifar10() else "fashion_mnist"]
        train = ["device=cuda", "max_steps_per_epoch=20", "num_workers=8"]
    steps = [
        ("cuda-tests", [py, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                        *(["tests/lib/test_batch_augment.py"] if tiny else ["tests"])], 90),
        ("torchrun", [py, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", str(_free_port()),
                      "-m", "hallucinator.pretrain", "--config", "smoke/mocov2-hal", "epochs=1", *train,
                      f"output_dir={out / 'torchrun'}", "run_name=smoke", "--no-resume"], 90),
        ("presets", [py, "-m", "benchmarks.gpu_check", "--presets-only", "--out", str(out)]
         + (["--cpu-tiny"] if tiny else []), 90),
        ("speed", [py, "-m", "benchmarks.speed", *speed, "--out", str(out / "speed.json")], 240),
    ]
    if importlib.util.find_spec("benchmarks.gpu_ab") is not None:
        steps.append(("gpu-ab", [py, "-m", "benchmarks.gpu_ab", "--profile", "tiny" if tiny else "gpu",
                                 "--out", str(out / "gpu-ab")], 0))
    return [(name, cmd, TINY_STEP_S) for name, cmd, _ in steps] if tiny else steps


def run_steps(out: Path, tiny: bool, total_s: int = TOTAL_S) -> list[dict]:
    """Runs every step of ``plan`` in order; a failed or timed-out step does not stop the others."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "ssl"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    t_start, results = time.monotonic(), []
    for name, cmd, limit in plan(out, tiny):
        left = int(total_s - (time.monotonic() - t_start)) - 10
        limit = left if limit == 0 else min(limit, left)
        if limit < 20:
            results.append({"step": name, "status": "not run (9-minute budget spent)", "cmd": cmd})
            continue
        t0 = time.monotonic()
        log = out / f"{name}.log"
        try:
            res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
            status, rc, text = ("ok" if res.returncode == 0 else "failed"), res.returncode, res.stdout + res.stderr
        except subprocess.TimeoutExpired as e:
            status, rc = f"timed out after {limit} s", None
            text = "".join(x.decode() if isinstance(x, bytes) else (x or "") for x in (e.stdout, e.stderr))
        log.write_text(text)
        results.append({"step": name, "status": status, "rc": rc, "wall_s": round(time.monotonic() - t0, 1),
                        "limit_s": limit, "cmd": cmd, "log": str(log), "tail": text[-600:]})
        print(f"[gpu-check] {name}: {status} ({results[-1]['wall_s']} s)", flush=True)
    return results


def preset_memory(tiny: bool) -> list[dict]:
    """A few steps of each Table 1 preset at its own batch, bf16 + channels_last, synthetic inputs;
    the peak device memory of each (``None`` on CPU; ``tiny``: batch 16, width 4, fp32, contiguous)."""
    import torch

    from hallucinator.presets import load_config
    from hallucinator.methods import build_method, model_config_from

    from .speed import _step_fn
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
            cfg = load_config(preset, ["precision=bf16", "channels_last=true", f"device={device.type}", *extra])
            torch.manual_seed(0)
            model = build_method(model_config_from(cfg)).to(device)
            if cfg.channels_last:
                model = model.to(memory_format=torch.channels_last)
            step = _step_fn(model, torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9), cfg, device)
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
            del model, step
    return rows


def markdown(report: dict) -> str:
    """The Markdown summary: steps, speed rows, preset memory."""
    lines = [f"# GPU check ({report['device']}, torch {report['torch']}, {report['mode']})", "",
             "| step | status | wall s |", "|---|---|---|"]
    lines += [f"| {r['step']} | {r['status']} | {r.get('wall_s', '-')} |" for r in report["steps"]]
    speed = report.get("speed")
    if speed:
        lines += ["", f"## Speed ({speed['profile']}, {speed['windows']} interleaved windows x {speed['steps']} steps, "
                      f"median and spread; end-to-end data: {speed['e2e_data']})", "",
                  "| method | Hallucinator | step ms (spread) | overhead | e2e per-sample img/s | e2e on-device img/s "
                  "| e2e torchvision img/s | on-device / synthetic | peak MB |", "|---|---|---|---|---|---|---|---|---|"]

        def cell(r, path):
            v = r.get(f"e2e_{path}_img_s")
            return f"{v:.0f} ({100 * r[f'e2e_{path}_spread']:.0f}%)" if v is not None else r.get(f"e2e_{path}_note", "n/a")
        for r in speed["rows"]:
            hal = ("fused" if r["fused"] else "yes") if r["hallucinator"] else "no"
            ov = f"{100 * r['hallucinator_overhead']:+.1f}%" if r["hallucinator_overhead"] is not None else "-"
            ratio = f"{r['e2e_device_ratio']:.2f}" if r.get("e2e_device_ratio") is not None else "n/a"
            peak = f"{r['peak_mem_mb']:.0f}" if r.get("peak_mem_mb") is not None else "n/a"
            lines.append(f"| {r['method']} | {hal} | {r['synthetic_step_ms']:.1f} ({100 * r['synthetic_spread']:.0f}%) "
                         f"| {ov} | {cell(r, 'cpu')} | {cell(r, 'device')} | {cell(r, 'torchvision')} | {ratio} | {peak} |")
    if report.get("presets"):
        lines += ["", "## Table 1 presets, synthetic inputs", "", "| preset | batch | precision | steps | s | peak MB |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['preset']} | {r['batch']} | {r['precision']} | {r['steps']} | {r['seconds']} | "
                  f"{r['peak_mem_mb'] if r['peak_mem_mb'] is None else round(r['peak_mem_mb'])} |" for r in report["presets"]]
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
