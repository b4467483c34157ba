"""Accuracy vs minutes for candidate ``demo`` profiles (the measurement behind the demo's sizes).

    python -m benchmarks.demo_sizing --out runs/demo_sizing [--candidates c1,c2] [--methods mocov2,simclr]

Each candidate overrides the demo preset (width, epochs, image count, batch, MoCo momentum); for
each it pretrains one seed per method, probes the backbone with ``fast_linear`` (all 60k labels,
10k test images), and evaluates the same encoder with random weights. Writes ``sizing.jsonl``
(one line per run: candidate, method, top-1, pretraining minutes, wall minutes incl. probe) and
prints it as a Markdown table (``--table`` prints the table of an existing ``sizing.jsonl`` only).

Minutes are wall time on whatever machine runs it: run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from reports.tables import pipe_table


def _candidate(width: int, size: int, epochs: int, images: int, batch: int, momentum: float) -> tuple[str, ...]:
    return (f"width={width}", f"image_size={size}", f"epochs={epochs}", f"train_subset={images}",
            f"batch_size={batch}", f"moco_momentum={momentum}")


CANDIDATES: dict[str, tuple[str, ...]] = {
    # the old demo (60k image-views per run), then the same with MoCo momentum 0.99
    "w8-s28-e3-n20k-b256-m999": _candidate(8, 28, 3, 20000, 256, 0.999),
    "w8-s28-e3-n20k-b256-m99": _candidate(8, 28, 3, 20000, 256, 0.99),
    # the same compute in twice the updates (batch 128)
    "w8-s28-e3-n20k-b128-m99": _candidate(8, 28, 3, 20000, 128, 0.99),
    # views at 20 px: half the compute per image (the step is conv-bound)
    "w8-s20-e3-n20k-b128-m99": _candidate(8, 20, 3, 20000, 128, 0.99),
    "w8-s20-e2-n60k-b128-m99": _candidate(8, 20, 2, 60000, 128, 0.99),
    # a narrower encoder: about half the time per run of width 8 (the demo profile since 2026-11-28)
    "w4-s28-e3-n20k-b128-m99": _candidate(4, 28, 3, 20000, 128, 0.99),
    "w4-s28-e3-n40k-b128-m99": _candidate(4, 28, 3, 40000, 128, 0.99),
}


def _reference(overrides: tuple[str, ...]) -> str:
    """The random-init reference depends only on the width (weights) and the image size (probe input)."""
    pick = {o.split("=")[0]: o.split("=")[1] for o in overrides}
    return f"random-init-w{pick['width']}-s{pick['image_size']}"


def _run(cmd: list[str]) -> float:
    """Runs one command; returns its wall time in minutes."""
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return (time.time() - t0) / 60


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.demo_sizing", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--candidates", default=",".join(CANDIDATES))
    p.add_argument("--methods", default="mocov2,simclr")
    p.add_argument("--threads", type=int, default=2, help="torch threads per run (1 on a shared, loaded CPU)")
    p.add_argument("--table", action="store_true", help="only print the table of OUT/sizing.jsonl")
    args = p.parse_args(argv)
    log = args.out / "sizing.jsonl"
    if args.table:
        print(markdown(log))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    for cand in args.candidates.split(","):
        ov = (*CANDIDATES[cand], f"threads={args.threads}")
        rand = args.out / _reference(ov)
        if not (rand / "eval.json").exists():
            _run([py, "-m", "hallucinator.evaluate", str(rand), "--baseline", "random-init", "--config", "demo/mocov2",
                  "--probes", "fast_linear", *ov, "seed=0"])
        r_top1 = json.loads((rand / "eval.json").read_text())["probes"]["fast_linear"]["top1"]
        for method in args.methods.split(","):
            run = args.out / cand / method
            if (run / "eval.json").exists():
                continue
            t_pre = _run([py, "-m", "hallucinator.pretrain", "--config", f"demo/{method}", *ov, "seed=0",
                          f"output_dir={args.out / cand}", f"run_name={method}"])
            t_eval = _run([py, "-m", "hallucinator.evaluate", str(run), "--probes", "fast_linear"])
            top1 = json.loads((run / "eval.json").read_text())["probes"]["fast_linear"]["top1"]
            rec = {"candidate": cand, "method": method, "top1": top1, "random_init_top1": r_top1,
                   "pretrain_min": round(t_pre, 2), "total_min": round(t_pre + t_eval, 2), "seed": 0}
            with open(log, "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
    print(markdown(log))
    return 0


def markdown(log: Path) -> str:
    """One row per (candidate, method): top-1, the gain over random weights, minutes."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return pipe_table(pd.DataFrame([{
        "candidate": r["candidate"], "method": r["method"], "fast-linear top-1": f"{r['top1']:.2f}",
        "random weights": f"{r['random_init_top1']:.2f}", "Δ": f"{r['top1'] - r['random_init_top1']:+.2f}",
        "pretrain min": f"{r['pretrain_min']:.2f}", "pretrain + probe min": f"{r['total_min']:.2f}"} for r in rows],
        columns=["candidate", "method", "fast-linear top-1", "random weights", "Δ", "pretrain min",
                 "pretrain + probe min"]))


if __name__ == "__main__":
    sys.exit(main())
