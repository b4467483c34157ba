"""Results files of the transfer runs, in the form the report builder (reports/) reads.

``results.json`` (one run, in cfg.OUTPUT_DIR)::

    {"task": "voc"|"coco", "weights": str, "trial": int, "config": str, "opts": [...],
     "profile": "paper"|"custom"|"smoke",  # "paper": a protocol config run as is (profile_of)
     "protocol_deviations": [...], "eval_only": bool,
     "weights_sha256": str|null, "git_commit": str|null, "git_dirty": bool|null,
     "detectron2": str,                     # version
     "method": str, "hallucinator": bool,  # what the weights are (see ``weights_source``)
     "pretrain_run": str|null, "pretrain_checkpoint": str|null, "pretrain_epochs": int|null,
     "datasets": {"train": [...], "test": str},
     "bbox": {"AP": float, "AP50": float, "AP75": float},
     "segm": {"AP": ..., "AP50": ..., "AP75": ...},          # COCO Mask R-CNN only
     "iterations": int, "seconds_per_iter": float|null, "device": str}

``summary.json`` (``--trials N``)::

    {"task", "weights", "config", "profile", "method", "hallucinator", "pretrain_run",
     "trials": N, "bbox": {"AP": {"mean", "std", "values"}, ...}, "segm": {...}}

AP values are percentages as detectron2's evaluators report them; ``std`` is the sample
standard deviation (ddof=1; 0.0 for a single trial).

Provenance: ``transfer/convert.py`` stores ``"__source__": {"method", "hallucinator",
"pretrain_run", "checkpoint", ...}`` in the ``.pkl`` (detectron2 ignores extra top-level keys);
``weights_source`` reads it back (no weights = ``random-init``; a detectron2 ``.pth`` inherits
the ``results.json`` of the run that wrote it; anything else is ``unknown``).

With ``train_net.py --runs ROOT`` a run goes to ``ROOT/table7/<profile>/<task>-<method>[-hal]
[-<tag>]`` (``table7_run_dir``), where ``python -m reports.build --suite table7 --runs ROOT``
finds it. The aggregation takes every directory holding ``results.json`` as one run and does not
descend below it, and reads suite/profile from the path, so ``--trials N`` there writes flat
siblings ``<name>-trial<i>/`` (one record per trial) and ``<name>.summary.json`` beside them.
This module does not import detectron2.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from functools import lru_cache
from pathlib import Path

from hallucinator import rundir
from safe_weights import read_pkl

METRICS = ("AP", "AP50", "AP75")
TASKS = ("bbox", "segm")
SOURCE_KEY = "__source__"
SUMMARY_KEYS = ("task", "weights", "config", "profile", "method", "hallucinator", "pretrain_run")
UNKNOWN = "unknown"


# cfg keys an override may change without leaving MoCo's protocol (where files go, which
# weights, seeds, devices, how often to save/evaluate); any other overridden key is a deviation.
NON_PROTOCOL_KEYS = frozenset({"OUTPUT_DIR", "MODEL.WEIGHTS", "SEED", "MODEL.DEVICE",
                               "DATALOADER.NUM_WORKERS", "SOLVER.CHECKPOINT_PERIOD",
                               "TEST.EVAL_PERIOD", "VIS_PERIOD", "CUDNN_BENCHMARK"})


def profile_of(config_file: str | Path, deviations: list[str] = (), eval_only: bool = False) -> str:
    """The reports' profile of a run: ``smoke*`` configs -> "smoke"; a protocol config run as is
    -> "paper"; one with ``deviations`` (overridden protocol keys) or ``eval_only`` -> "custom",
    so it is never shown as a protocol row."""
    if Path(config_file).stem.startswith("smoke"):
        return "smoke"
    return "custom" if deviations or eval_only else "paper"


def protocol_deviations(opts: list[str], file_value, final_value) -> list[str]:
    """Keys of ``opts`` (KEY VALUE ...) outside ``NON_PROTOCOL_KEYS`` whose final value differs
    from the config file's; ``file_value(key)`` / ``final_value(key)`` read the two configs."""
    keys = dict.fromkeys(opts[::2])
    return [k for k in keys if k not in NON_PROTOCOL_KEYS and file_value(k) != final_value(k)]


@lru_cache(maxsize=8)
def _pkl_source(path: str, mtime: float) -> dict | None:
    source = read_pkl(path).get(SOURCE_KEY)
    return dict(source) if isinstance(source, dict) else None


def weights_source(weights: str, method: str | None = None,
                   hallucinator: bool | None = None) -> dict:
    """What ``weights`` are: {"method", "hallucinator", "pretrain_run", "checkpoint", "origin"}.

    "" (random init) -> ``random-init``; a converted ``.pkl`` -> its ``__source__``; a file in
    a fine-tuning run directory (e.g. ``model_final.pth``) -> that run's ``results.json``;
    otherwise ``unknown``. ``method`` / ``hallucinator`` (not None) override what was found.
    """
    source = {"method": UNKNOWN, "hallucinator": False, "pretrain_run": None, "checkpoint": None,
              "origin": f"no provenance found for {weights}"}
    path = Path(weights) if weights else None
    if not weights:  # labelled random init whatever the command line says
        return dict(source, method="random-init", origin="no weights (random init, explicit "
                    "--random-init)")
    elif path.suffix == ".pkl" and path.is_file():
        try:
            found = _pkl_source(str(path.resolve()), path.stat().st_mtime)
        except Exception as err:  # not a converted file: foreign globals, corrupt, ...
            found, source["origin"] = None, f"{weights}: unreadable provenance ({err})"
        if found:
            source.update(found)
            source["method"] = source.get("method") or UNKNOWN
            source["origin"] = f"{SOURCE_KEY} of {weights}"
    elif path.is_file() and (path.parent / rundir.TRANSFER_RESULTS).is_file():
        try:
            run = json.loads((path.parent / rundir.TRANSFER_RESULTS).read_text())
        except ValueError:
            run = {}
        if isinstance(run, dict) and "method" in run:
            source.update(method=run["method"], hallucinator=bool(run.get("hallucinator")),
                          pretrain_run=run.get("pretrain_run"),
                          checkpoint=run.get("pretrain_checkpoint"),
                          origin=f"results.json of the run that wrote {weights}")
    if method is not None:
        source.update(method=method, origin=source["origin"] + "; method set on the command line")
    if hallucinator is not None:
        source.update(hallucinator=hallucinator,
                      origin=source["origin"] + "; hallucinator set on the command line")
    source["hallucinator"] = bool(source["hallucinator"])
    return source


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", str(text)).strip("-.") or "x"


def table7_name(task: str, method: str, hallucinator: bool, tag: str = "") -> str:
    """``<task>-<method>[-hal][-<tag>]``: a run's directory name in the reports' layout."""
    return "-".join([_slug(task), _slug(method)] + (["hal"] if hallucinator else [])
                    + ([_slug(tag)] if tag else []))


def table7_run_dir(root: str | Path, profile: str, name: str, trial: int | None = None) -> Path:
    """``ROOT/table7/<profile>/<name>``, or ``<name>-trial<i>`` for one of several trials."""
    return Path(root) / "table7" / profile / (name if trial is None else f"{name}-trial{trial}")


def table7_summary_path(root: str | Path, profile: str, name: str) -> Path:
    """Where ``--runs`` puts a trials summary: a file beside the trial dirs, not a run dir."""
    return Path(root) / "table7" / profile / f"{name}.summary.json"


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


def results_payload(*, task: str, config_file: str | Path, source: dict, results: dict,
                    deviations: list[str] = (), eval_only: bool = False, **fields) -> dict:
    """One run's ``results.json`` content: profile, protocol status, provenance and metrics, plus
    ``fields`` (weights, weights_sha256, trial, opts, datasets, iterations, seconds_per_iter,
    device, git_commit, git_dirty, detectron2)."""
    pretrain = source.get("pretrain") if isinstance(source.get("pretrain"), dict) else {}
    return {"task": task, "config": str(config_file),
            "profile": profile_of(config_file, deviations, eval_only),
            "protocol_deviations": list(deviations), "eval_only": bool(eval_only),
            "method": source["method"], "hallucinator": bool(source["hallucinator"]),
            "pretrain_run": source.get("pretrain_run"),
            "pretrain_checkpoint": source.get("checkpoint"),
            "pretrain_epochs": pretrain.get("epochs"), **fields, **metrics_from(results)}


def sha256_of(path: str | Path) -> str | None:
    """Hex sha256 of a file (None for no file: random init)."""
    if not path:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str | Path, payload: dict) -> Path:
    """Checks ``payload`` is strict JSON (no NaN/inf), then writes it with ``rundir.write_json``."""
    json.dumps(payload, allow_nan=False)
    rundir.write_json(path, payload)
    return Path(path)


def summarize_trials(trial_dirs: list[str | Path], out: str | Path) -> dict:
    """Mean and sample std per metric over trials' results.json; written to ``out``."""
    runs = [json.loads((Path(d) / rundir.TRANSFER_RESULTS).read_text()) for d in trial_dirs]
    if not runs:
        raise ValueError("no trials to summarise")
    summary = {k: runs[0].get(k) for k in SUMMARY_KEYS}
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
