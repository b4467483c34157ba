"""Rehearse the ``paper`` profile end to end on CPU: tiny real-format data, the paper's own runs.

    python -m benchmarks.rehearse [--out runs/rehearse] [--suites table1,fig5] [--only mocov2-cifar10-s0]

1. writes tiny datasets in each dataset's on-disk format under ``OUT/data``
   (``benchmarks/rehearsal_data.py``);
2. runs every suite through ``benchmarks.run --profile paper --gpus 2`` (torchrun with 2 gloo
   processes, as the paper profile launches on 2 GPUs): the paper's presets, rows, loaders and
   probes (the 100-epoch ``linear`` protocol and kNN), with only ``SIZES`` overridden;
3. builds each suite's PDF with ``reports.build`` under ``OUT/reports``.

Table 7 (detection transfer) is rehearsed by ``transfer/rehearse_table7.py`` when detectron2 is
importable. ``OUT/rehearsal.json`` records each step's wall time and exit status; the exit
status is 1 if any step failed. Re-running skips finished runs (``benchmarks.run`` resumes).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

from . import rehearsal_data
from .suites import build_suite

TABLE7 = Path(__file__).resolve().parents[1] / "transfer" / "rehearse_table7.py"
SUITES = ("table1", "table2", "table3", "table4", "table5", "table6", "fig4", "fig5", "table7")

# Only sizes and resources: steps (epochs x images / batch), widths, image counts, probe sizes.
SIZES = ("epochs=1", "width=4", "train_subset=32", "batch_size=16", "queue_size=64", "knn_train_subset=32",
         "metrics_batch=32", "eval_train_subset=32", "eval_test_subset=32", "num_workers=1", "threads=1")
# ImageNet / IN-200: ResNet-50 at 64 px instead of 224 (the JPEGs are 40-120 px, of varying size).
LARGE_SIZES = ("image_size=64",)
LINEAR = ("--linear-epochs", "2", "--linear-batch", "16")
LARGE_SUITES = ("table2", "table3", "table4", "table5", "table6")


def _step(log: list[dict], name: str, cmd: list[str]) -> bool:
    """Runs ``cmd``, records its wall time and exit status in ``log``; True when it succeeded."""
    print(f"[rehearse] {name}: {' '.join(cmd)}", flush=True)
    t0 = time.time()
    rc = subprocess.run(cmd).returncode
    log.append({"step": name, "rc": rc, "seconds": round(time.time() - t0, 1)})
    print(f"[rehearse] {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {log[-1]['seconds']} s", flush=True)
    return rc == 0


def suite_command(suite: str, data: Path, runs: Path, only: list[str] | None = None) -> list[str]:
    """The ``benchmarks.run`` command of one suite (only the runs named in ``only``), sizes overridden."""
    sizes = SIZES + (LARGE_SIZES if suite in LARGE_SUITES else ())
    cmd = [sys.executable, "-m", "benchmarks.run", "--suite", suite, "--profile", "paper", "--data-root", str(data),
           "--runs", str(runs), "--gpus", "2", *LINEAR, *(a for s in sizes for a in ("--override", s))]
    return cmd + (["--only", ",".join(only)] if only else [])


def runs_of(suite: str, only: list[str] | None) -> list[str] | None:
    """The names in ``only`` that are runs of ``suite`` (None: all of them)."""
    if only is None:
        return None
    return [s.name for s in build_suite(suite, "paper", data_root="-") if s.name in only]


def report_command(suite: str, runs: Path, out: Path) -> list[str]:
    """``reports.build`` of one suite; resized detection fine-tunes are recorded under profile ``custom``."""
    profile = "custom" if suite == "table7" else "paper"
    return [sys.executable, "-m", "reports.build", "--suite", suite, "--profile", profile, "--runs", str(runs),
            "--out", str(out)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rehearse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/rehearse"), help="data, runs and reports go here")
    p.add_argument("--suites", default=",".join(SUITES), help="comma-separated subset of %(default)s")
    p.add_argument("--only", help="comma-separated run names: run only these (suites with none are skipped)")
    args = p.parse_args(argv)
    suites = [s for s in args.suites.split(",") if s]
    bad = sorted(set(suites) - set(SUITES))
    if bad:
        p.error(f"unknown suite(s) {bad}; choose from {','.join(SUITES)}")
    only = [n for n in args.only.split(",") if n] if args.only else None
    if only is not None:
        suites = [s for s in suites if s != "table7" and runs_of(s, only)]
        if not suites:
            p.error(f"--only: no run named {only} in the suites {args.suites}")
    out = args.out.resolve()
    data, runs, reports = out / "data", out / "runs", out / "reports"
    t_start, log = time.time(), []
    t0 = time.time()
    written = rehearsal_data.write_all(data)
    log.append({"step": "data", "rc": 0, "seconds": round(time.time() - t0, 1), **written})
    for suite in suites:
        if suite == "table7":
            if importlib.util.find_spec("detectron2") is None:
                print("[rehearse] table7: skipped, detectron2 is not importable "
                      "(python transfer/install_detectron2.py)", flush=True)
                log.append({"step": "table7", "rc": None, "skipped": "detectron2 not importable"})
                continue
            _step(log, "table7 transfer", [sys.executable, str(TABLE7), "--data", str(data), "--runs", str(runs)])
        else:
            _step(log, f"{suite} runs", suite_command(suite, data, runs, runs_of(suite, only)))
        # built from whatever finished: its Problems page names the runs that failed
        _step(log, f"{suite} report", report_command(suite, runs, reports))
    total = round(time.time() - t_start, 1)
    failed = [s["step"] for s in log if s["rc"] not in (0, None)]
    skipped = [s["step"] for s in log if s["rc"] is None]
    summary = {"wall_s": total, "steps": log, "failed": failed, "skipped": skipped}
    (out / "rehearsal.json").write_text(json.dumps(summary, indent=1) + "\n")
    m, s = divmod(int(total), 60)
    print(f"[rehearse] done in {m} min {s:02d} s; " + (f"FAILED: {failed}" if failed else "every step passed")
          + (f"; skipped: {skipped}" if skipped else "") + f"; reports in {reports}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
