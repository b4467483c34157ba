"""Step time and end-to-end throughput, each method with and without the Hallucinator, one run.

    python -m benchmarks.speed                       # CPU: the demo settings (narrow ResNet-18, 28 px)
    python -m benchmarks.speed --profile paper       # GPU: ResNet-18 CIFAR stem, batch 512, bf16 + channels_last
    python -m benchmarks.speed --profile paper --data-root /data   # + end-to-end on real CIFAR-10

For every (method, Hallucinator off/on[, fused]) it measures, side by side in one process:
  * synthetic step time: inputs already on the device, forward + backward + SGD step (the limit);
  * end-to-end images/s through the real data path (CPU per-sample augmentation in DataLoader
    workers, and batched on-device augmentation) and its ratio to the synthetic rate;
  * peak device memory (CUDA only).
The Hallucinator's overhead is step_time(with) / step_time(without) - 1. Prints a table and
writes JSON (default runs/speed/<device>.json). Timings are medians over repeated windows; the
variants of a method alternate window by window so machine drift hits them alike.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from hallucinator.config import load_config
from hallucinator.methods import build_method, model_config_from
from hallucinator.training.pipeline import TrainData

PROFILES = {
    # preset base, overrides
    "cpu": ("demo/{method}", ["threads=2"]),
    "paper": ("{method}-cifar10", ["precision=bf16", "channels_last=true", "num_workers=16"]),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_fn(model, opt, cfg, device):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)

    def step(x1, x2):
        if cfg.channels_last:
            x1, x2 = x1.contiguous(memory_format=torch.channels_last), x2.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
            out = model(x1, x2)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
    return step


def _timed(fn, steps: int, windows: int, device) -> float:
    """Median seconds per call over ``windows`` windows of ``steps`` calls."""
    times = []
    for _ in range(windows):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        _sync(device)
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times)


def _setup(method: str, hal: bool, fused: bool, profile: str, device: torch.device, data_root: str | None):
    base, extra = PROFILES[profile]
    overrides = [*extra, f"hallucinator={str(hal).lower()}", f"fuse_pairs={str(fused).lower()}",
                 f"device={device.type}"] + ([f"data_root={data_root}"] if data_root else [])
    cfg = load_config(base.format(method=method), overrides)
    torch.manual_seed(0)
    model = build_method(model_config_from(cfg)).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    return base.format(method=method), overrides, cfg, _step_fn(model, opt, cfg, device)


def measure_method(method: str, profile: str, device: torch.device, steps: int, windows: int,
                   data_root: str | None, end_to_end: bool) -> list[dict]:
    """All variants of one method, their synthetic windows INTERLEAVED (A B C A B C ...), so
    drifts of a shared or throttling machine hit every variant alike."""
    variants = [(False, False), (True, False)] + ([(True, True)] if method.startswith("moco") else [])
    setups = [_setup(method, hal, fused, profile, device, data_root) for hal, fused in variants]
    cfg0 = setups[0][2]
    size = cfg0.image_size or 32
    x1 = torch.randn(cfg0.batch_size, cfg0.in_channels, size, size, device=device)
    x2 = torch.randn_like(x1)
    for *_, step in setups:  # warm-up (cudnn autotune, allocator)
        for _ in range(3):
            step(x1, x2)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times: list[list[float]] = [[] for _ in setups]
    for _ in range(windows):
        for i, (*_, step) in enumerate(setups):
            times[i].append(_timed(lambda: step(x1, x2), steps, 1, device))
    rows = []
    for (hal, fused), (preset, overrides, cfg, step), ts in zip(variants, setups, times):
        synthetic = statistics.median(ts)
        row = {"method": method, "hallucinator": hal, "fused": fused, "batch": cfg.batch_size, "image_size": size,
               "backbone": f"{cfg.backbone} w{cfg.width}", "precision": cfg.precision,
               "synthetic_step_ms": 1000 * synthetic, "synthetic_img_s": cfg.batch_size / synthetic,
               "synthetic_step_ms_windows": [1000 * t for t in ts],
               "peak_mem_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None}
        if end_to_end:
            for path in ("cpu", "device"):
                try:
                    data = TrainData(load_config(preset, [*overrides, f"augment_on={path}"]), device, 0, 1)
                except (FileNotFoundError, ValueError) as e:
                    row[f"e2e_{path}_img_s"] = None
                    row[f"e2e_{path}_note"] = str(e).splitlines()[0]
                    continue
                batches = data.epoch(0)
                next(batches)
                n = min(steps * windows, data.steps_per_epoch - 1)
                _sync(device)
                t0 = time.perf_counter()
                for _ in range(n):
                    step(*next(batches))
                _sync(device)
                rate = n * cfg.batch_size / (time.perf_counter() - t0)
                row[f"e2e_{path}_img_s"] = rate
                row[f"e2e_{path}_ratio"] = rate / row["synthetic_img_s"]
        rows.append(row)
    base_ms = rows[0]["synthetic_step_ms"]
    for row in rows:
        row["hallucinator_overhead"] = row["synthetic_step_ms"] / base_ms - 1 if row["hallucinator"] else None
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: paper on CUDA, cpu otherwise")
    p.add_argument("--methods", default="mocov1,mocov2,simclr,simsiam")
    p.add_argument("--steps", type=int, default=None, help="steps per timing window")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--data-root", default=None, help="CIFAR-10 root for the paper profile's end-to-end rows")
    p.add_argument("--no-end-to-end", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    profile = args.profile or ("paper" if device.type == "cuda" else "cpu")
    steps = args.steps or (20 if device.type == "cuda" else 3)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {platform.machine()} x{torch.get_num_threads()}"
    rows = []
    for method in args.methods.split(","):
        for row in measure_method(method, profile, device, steps, args.windows, args.data_root,
                                  not args.no_end_to_end):
            rows.append(row)
            _print_row(row)
    out = args.out or Path("runs/speed") / f"{profile}-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": name, "torch": torch.__version__, "profile": profile, "steps": steps,
                               "windows": args.windows, "rows": rows}, indent=2))
    print(f"device: {name}; profile {profile}; wrote {out}")
    return 0


_HEADER = False


def _print_row(r: dict) -> None:
    global _HEADER
    if not _HEADER:
        print(f"{'method':<8} {'hal':<9} {'step ms':>8} {'synth img/s':>11} {'overhead':>9} "
              f"{'e2e cpu-aug':>11} {'ratio':>6} {'e2e dev-aug':>11} {'ratio':>6} {'peak MB':>8}")
        _HEADER = True
    hal = ("fused" if r["fused"] else "yes") if r["hallucinator"] else "no"
    ov = f"{100 * r['hallucinator_overhead']:+.1f}%" if r["hallucinator_overhead"] is not None else "-"

    def f(key, fmt):
        v = r.get(key)
        return format(v, fmt) if v is not None else "n/a"
    print(f"{r['method']:<8} {hal:<9} {r['synthetic_step_ms']:>8.1f} {r['synthetic_img_s']:>11.0f} {ov:>9} "
          f"{f('e2e_cpu_img_s', '11.0f'):>11} {f('e2e_cpu_ratio', '6.2f'):>6} {f('e2e_device_img_s', '11.0f'):>11} "
          f"{f('e2e_device_ratio', '6.2f'):>6} {f('peak_mem_mb', '8.0f'):>8}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
