"""Results files of the transfer runs, in the form the benchmarks aggregation reads.

``results.json`` (one run, in cfg.OUTPUT_DIR)::

    {"task": "voc"|"coco", "weights": str, "trial": int, "config": str, "profile": "full"|"smoke",
     "datasets": {"train": [...], "test": str},
     "bbox": {"AP": float, "AP50": float, "AP75": float},
     "segm": {"AP": ..., "AP50": ..., "AP75": ...},          # COCO Mask R-CNN only
     "iterations": int, "seconds_per_iter": float|null, "device": str}

``summary.json`` (``--trials N``, in the parent of trial_0..trial_{N-1})::

    {"task", "weights", "config", "profile", "trials": N,
     "bbox": {"AP": {"mean", "std", "values"}, ...}, "segm": {...}}

AP values are percentages as detectron2's evaluators report them; ``std`` is the sample
standard deviation (ddof=1; 0.0 for a single trial). This module does not import detectron2.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

METRICS = ("AP", "AP50", "AP75")
TASKS = ("bbox", "segm")
PAPER_TABLE7 = Path(__file__).resolve().parent / "table7_paper.json"


def _number(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def metrics_from(results: dict) -> dict:
    """detectron2 evaluation results ({"bbox": {...}, "segm": {...}}) -> AP/AP50/AP75 only."""
    out = {}
    for task in TASKS:
        if task in results:
            missing = [m for m in METRICS if m not in results[task]]
            if missing:
                raise KeyError(f"evaluation results for {task} lack {missing}")
            out[task] = {m: _number(results[task][m]) for m in METRICS}
    if "bbox" not in out:
        raise KeyError(f"no bbox metrics in evaluation results (keys: {sorted(results)})")
    return out


def write_json(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def summarize_trials(trial_dirs: list[str | Path], out: str | Path) -> dict:
    """Mean and sample std per metric over trials' results.json; written to ``out``."""
    runs = [json.loads((Path(d) / "results.json").read_text()) for d in trial_dirs]
    if not runs:
        raise ValueError("no trials to summarise")
    summary = {k: runs[0].get(k) for k in ("task", "weights", "config", "profile")}
    summary["trials"] = len(runs)
    for task in TASKS:
        if all(task in r for r in runs):
            summary[task] = {}
            for m in METRICS:
                values = [r[task][m] for r in runs]
                ok = [v for v in values if v is not None]
                summary[task][m] = {
                    "mean": statistics.fmean(ok) if ok else None,
                    "std": statistics.stdev(ok) if len(ok) > 1 else (0.0 if ok else None),
                    "values": values}
    write_json(out, summary)
    return summary
