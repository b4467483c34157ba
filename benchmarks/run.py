"""Run a benchmark suite: pretrain + evaluate every run, skipping finished ones.

    python -m benchmarks.run --suite table1 --profile demo [--runs runs] [--seeds 0,1]
    python -m benchmarks.run --suite table1 --profile paper --data-root /data --gpus 8
    python -m benchmarks.run --suite table1 --profile paper --data-root /tiny --gpus 2 \
        --override epochs=1 --override width=8 --linear-epochs 1      # the same runs, resized

``--override key=value`` (repeatable) is appended to every run's config, after the suite's own
keys; a key the suite itself sets for some row (what the table varies) is refused.
``--linear-epochs`` / ``--linear-batch`` are passed to every evaluation.

Each run lives in ``<runs>/<suite>/<profile>/<name>/``. Re-running the command skips runs whose
evaluation finished and resumes interrupted ones from their checkpoints. A failed run is
recorded (its run.json says why) and the suite goes on; the exit status is non-zero if any failed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hallucinator import rundir

from .suites import PROFILES, SUITE_NAMES, RunSpec, build_suite


def finished(run_dir: Path, spec: RunSpec) -> bool:
    """Whether ``run_dir`` holds a finished evaluation with every probe of ``spec`` (then it is skipped)."""
    try:
        ev = json.loads((run_dir / rundir.EVAL).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return ev.get("status") == "finished" and all(p in ev.get("probes", {}) for p in spec.probes
                                                  if not (spec.baseline == "raw-pixels" and p == "linear"))


def _launcher(gpus: int) -> list[str]:
    if gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}"]
    return [sys.executable]


def commands(spec: RunSpec, suite: str, profile: str, runs: Path, gpus: int, overrides: tuple[str, ...] = (),
             eval_args: tuple[str, ...] = ()) -> list[list[str]]:
    """The shell commands of one run (pretraining, then evaluation).

    ``overrides`` (``key=value``) follow the run's own keys; ``eval_args`` go to every evaluation.
    """
    out = runs / suite / profile
    run_dir = out / spec.name
    tags = [f"suite={suite}", f"profile={profile}", f"row={json.dumps(spec.row)}"]  # quoted: a label like 0.9 stays a string
    if spec.baseline:
        return [[sys.executable, "-m", "hallucinator.evaluate", str(run_dir), "--baseline", spec.baseline,
                 "--config", spec.preset, "--probes", ",".join(spec.probes), *eval_args, *spec.overrides,
                 *overrides, *tags]]
    pre = [*_launcher(gpus), "-m", "hallucinator.pretrain", "--config", spec.preset, *spec.overrides, *overrides,
           *tags, f"output_dir={out}", f"run_name={spec.name}"]
    ev = [sys.executable, "-m", "hallucinator.evaluate", str(run_dir), "--probes", ",".join(spec.probes), *eval_args]
    return [pre, ev]


def select(specs: list[RunSpec], only: str | None) -> list[RunSpec]:
    """The runs named in ``only`` (comma-separated), in suite order; every name must exist."""
    if not only:
        return specs
    names = [n for n in only.split(",") if n]
    unknown = sorted(set(names) - {s.name for s in specs})
    if unknown:
        raise SystemExit(f"--only: no run(s) {unknown} in this suite; its runs: {', '.join(s.name for s in specs)}")
    return [s for s in specs if s.name in names]


def check_overrides(specs: list[RunSpec], overrides: list[str]) -> tuple[str, ...]:
    """``overrides``, once every run's config is resolved with them; keys a suite sets itself are refused.

    Raises:
        SystemExit: One line naming the bad override.
    """
    from hallucinator.config import ConfigError
    from hallucinator.presets import load_config

    own = {o.split("=", 1)[0] for spec in specs for o in spec.overrides} - {"seed", "data_root"}
    own |= {"suite", "profile", "row", "output_dir", "run_name"}
    for text in overrides:
        key = text.split("=", 1)[0].strip()
        if key in own:
            raise SystemExit(f"--override {text}: the suite itself sets {key!r} (what its rows vary, or where "
                             f"runs go); override sizes and resources only")
    for spec in specs:
        try:
            load_config(spec.preset, [*spec.overrides, *overrides])
        except ConfigError as e:
            raise SystemExit(f"--override: {spec.name}: {e}") from None
    return tuple(overrides)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", required=True, choices=SUITE_NAMES, help="the suite to run: %(choices)s")
    p.add_argument("--profile", default="demo", choices=PROFILES)
    p.add_argument("--runs", type=Path, default=Path("runs"), help="root of the run directories")
    p.add_argument("--seeds", help="comma-separated seeds (default: the profile's)")
    p.add_argument("--methods", help="comma-separated subset of mocov1,mocov2,simclr,simsiam")
    p.add_argument("--data-root", default=os.environ.get("DATA_ROOT"), help="datasets for the paper profile ($DATA_ROOT)")
    p.add_argument("--gpus", type=int, default=None, help="processes per run (default: all visible GPUs)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config key appended to every run (repeatable), e.g. epochs=1")
    p.add_argument("--linear-epochs", type=int, help="epochs of the linear probe (default: evaluate's, 100)")
    p.add_argument("--linear-batch", type=int, help="batch of the linear probe (default: evaluate's)")
    p.add_argument("--only", help="comma-separated run names of the suite to run (default: all)")
    p.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    methods = args.methods.split(",") if args.methods else None
    specs = select(build_suite(args.suite, args.profile, seeds, methods, args.data_root), args.only)
    gpus = args.gpus if args.gpus is not None else _visible_gpus()
    overrides = check_overrides(specs, args.override)
    eval_args = tuple(a for flag, v in (("--linear-epochs", args.linear_epochs), ("--linear-batch", args.linear_batch))
                      if v is not None for a in (flag, str(v)))
    run_cmds = lambda spec: commands(spec, args.suite, args.profile, args.runs, gpus, overrides, eval_args)
    if args.dry_run:
        for spec in specs:
            for cmd in run_cmds(spec):
                print(" ".join(cmd))
        return 0
    t_start, done_times, failed = time.time(), [], []
    for i, spec in enumerate(specs, 1):
        run_dir = args.runs / args.suite / args.profile / spec.name
        if finished(run_dir, spec):
            print(f"[{i}/{len(specs)}] {spec.name}: finished earlier, skipped", flush=True)
            continue
        eta = ""
        if done_times:
            left = len(specs) - i + 1
            eta = f", ETA {_fmt(left * sum(done_times) / len(done_times))}"
        print(f"[{i}/{len(specs)}] {spec.name} ({'baseline ' + spec.baseline if spec.baseline else spec.preset})"
              f" elapsed {_fmt(time.time() - t_start)}{eta}", flush=True)
        t0 = time.time()
        for cmd in run_cmds(spec):
            if subprocess.run(cmd).returncode != 0:
                failed.append(spec.name)
                print(f"[{i}/{len(specs)}] {spec.name}: FAILED ({' '.join(cmd[:4])} ...); see {run_dir}", flush=True)
                break
        done_times.append(time.time() - t0)
    print(f"suite {args.suite} ({args.profile}): {len(specs) - len(failed)}/{len(specs)} runs done in "
          f"{_fmt(time.time() - t_start)}" + (f"; failed: {failed}" if failed else ""), flush=True)
    return 1 if failed else 0


def _visible_gpus() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    import torch
    return torch.cuda.device_count()


def _fmt(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


if __name__ == "__main__":
    sys.exit(main())
