"""Read saved run directories into pandas tables.

A run directory is any directory holding ``config.json`` (pre-training + evaluation runs) or
``results.json`` (detection-transfer runs, Table 7). Only *finished* runs with a finished
evaluation enter the numbers; every other run is listed in ``problems`` with the reason and is
never mixed into ``results``. Non-fatal issues (a truncated last metrics line, a probe with an
invalid value) keep the run but are listed as warnings (``excluded=False``).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hallucinator import rundir
from hallucinator.config import TrainConfig, to_dict

from .suites import canonical_dataset, level_of, variant_of

REQUIRED_TRANSFER_KEYS = ("task", "method", "hallucinator", "bbox")
BOX_METRICS = ("AP", "AP50", "AP75")
PROBLEM_COLUMNS = ["run_dir", "suite", "profile", "excluded", "reason"]
# An embedding has collapsed when its uniformity G2 (Eq 6; 1 = all points equal, 0.207 = uniform
# on the circle) or the mean pairwise cosine of its queries (steps.jsonl) is this close to 1.
COLLAPSE_AT = 0.9


class RunProblem(Exception):
    """A run directory that cannot contribute numbers; the message is the reason."""


@dataclass
class Collection:
    """Everything read from a runs root.

    Attributes:
        results: one row per (finished run, probe): ``top1`` in %, plus config descriptors.
        runs: one row per finished run: config, provenance (run.json) and file locations.
        transfer: one row per finished transfer run (results.json), metrics as columns.
        problems: ``run_dir, suite, profile, excluded, reason`` for every problem found.
    """

    results: pd.DataFrame
    runs: pd.DataFrame
    transfer: pd.DataFrame
    problems: pd.DataFrame


def read_json(path: Path) -> dict:
    """Parse a JSON object from ``path``; raise ``RunProblem`` naming the file if it is bad."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunProblem(f"corrupt {path.name} ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict):
        raise RunProblem(f"corrupt {path.name} (top level is not a JSON object)")
    return obj


def read_metrics(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read ``metrics.jsonl`` tolerating a truncated last line; return (frame, warnings)."""
    warnings: list[str] = []
    rows = []
    lines = path.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
            rows.append(row)
        except (json.JSONDecodeError, ValueError):
            where = "last line truncated" if i == len(lines) else f"line {i} invalid"
            warnings.append(f"metrics.jsonl: {where} (ignored)")
    frame = pd.DataFrame(rows)
    for col in rundir.METRIC_KEYS:  # null -> NaN, so columns are float even when a key is always null
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    if "epoch" in frame:
        dups = sorted({int(e) for e in frame.loc[frame["epoch"].duplicated(), "epoch"].dropna()})
        if dups:  # e.g. a run killed between writing an epoch's line and its checkpoint, then resumed
            warnings.append(f"metrics.jsonl: duplicate epoch(s) {dups} (the last line of each is kept)")
            frame = frame.drop_duplicates("epoch", keep="last")
        frame = frame.sort_values("epoch").reset_index(drop=True)
    return frame, warnings


def _defaults() -> dict:
    """Every config key's default, as config.json spells it (a JSON round trip of ``TrainConfig()``)."""
    return json.loads(json.dumps(to_dict(TrainConfig()), default=str))


DEFAULTS = _defaults()


def config_id(config: dict) -> str:
    """Short hash of the config's defining keys (``rundir.defining_config``): same id = same recipe.

    Keys at their default value are left out, so a run written before a key existed and a run
    written after, with the key at its default, share one id."""
    defining = {k: v for k, v in rundir.defining_config(config).items() if k not in DEFAULTS or DEFAULTS[k] != v}
    blob = json.dumps(defining, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def _path_layout(run_dir: Path, root: Path) -> tuple[str, str]:
    """(suite, profile) from ``<root>/<suite>/<profile>/<run>``, for runs with no config."""
    parts = run_dir.relative_to(root).parts if run_dir != root else ()
    if len(parts) >= 3:
        return parts[-3], parts[-2]
    return (parts[0] if parts else ""), ""


def _status(run_dir: Path) -> dict:
    """Provenance from run.json; raise unless its status is finished."""
    path = run_dir / rundir.RUN
    if not path.exists():
        raise RunProblem("missing run.json (no status / provenance)")
    prov = read_json(path)
    status = prov.get("status")
    if status == "failed":
        raise RunProblem(f"failed: {prov.get('error') or 'no error message recorded'}")
    if status == "running":
        extra = "" if (run_dir / rundir.EVAL).exists() else "; no eval.json"
        raise RunProblem(f"unfinished (run.json status 'running'{extra})")
    if status == "interrupted":
        raise RunProblem("interrupted (run.json status 'interrupted'; resumable from its checkpoint)")
    if status != "finished":
        raise RunProblem(f"unknown run.json status {status!r}")
    return prov


def _valid_pct(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) \
        and 0.0 <= x <= 100.0


def _labels(res: dict) -> str:
    """How many labelled images a probe used: 'N train / M test' when eval.json says."""
    n_train, n_test, labels = res.get("n_train"), res.get("n_test"), res.get("labels", "")
    if isinstance(labels, int) and not isinstance(labels, bool):
        n_train = labels
    if n_train is None:
        return str(labels)
    return f"{n_train} train" + (f" / {n_test} test" if n_test is not None else "")


def _last(path: Path, key: str) -> float | None:
    """The last finite value of ``key`` in a JSONL log (None if the log or the key is absent)."""
    if not path.exists():
        return None
    frame, _ = read_metrics(path)
    if key not in frame:
        return None
    values = pd.to_numeric(frame[key], errors="coerce").dropna()
    return float(values.iloc[-1]) if len(values) else None


def collapse_of(run_dir: Path, evaluation: dict) -> str:
    """Why the run's embedding looks collapsed ('' if it does not): G2 or pairwise cosine near 1."""
    found = []
    fig5 = evaluation.get("probes", {}).get("features_2d")
    g2 = fig5.get("g2") if isinstance(fig5, dict) else None
    where = "features_2d"
    if g2 is None:
        g2, where = _last(run_dir / rundir.METRICS, "g2"), "last epoch"
    if g2 is not None and g2 >= COLLAPSE_AT:
        found.append(f"G2 = {g2:.4f} ({where})")
    cos = _last(run_dir / rundir.STEPS, "q_pairwise_cos")
    if cos is not None and cos >= COLLAPSE_AT:
        found.append(f"mean pairwise cosine = {cos:.4f} (last step)")
    return "; ".join(found)


def _probe_rows(evaluation: dict) -> tuple[list[dict], list[str]]:
    """Flatten eval.json probes into rows; ``linear`` also yields ``linear_best``."""
    rows, warnings = [], []
    probes = evaluation.get("probes")
    if not isinstance(probes, dict):
        raise RunProblem("eval.json has no 'probes' object")
    for name, res in probes.items():
        if name == "features_2d":  # Fig 5's embeddings and G2 (Eq 6), not a classification probe
            continue
        if not isinstance(res, dict) or not _valid_pct(res.get("top1")):
            warnings.append(f"probe {name!r}: invalid top1 {res.get('top1') if isinstance(res, dict) else res!r} (probe excluded)")
            continue
        base = {"probe_epochs": res.get("epochs"), "labels": _labels(res), "k": res.get("k")}
        rows.append({"probe": name, "top1": float(res["top1"]), **base})
        if name == "linear" and "top1_best" in res:
            if _valid_pct(res["top1_best"]):
                rows.append({"probe": "linear_best", "top1": float(res["top1_best"]), **base})
            else:
                warnings.append(f"probe 'linear': invalid top1_best {res['top1_best']!r} (ignored)")
    if not rows:
        raise RunProblem("eval.json has no usable probe result")
    return rows, warnings


def optimizer_steps(config: dict) -> int | None:
    """Optimizer steps of a run: epochs x (training images // global batch), when the config fixes
    the image count (``train_subset``); None otherwise (the count lives in the dataset)."""
    n, batch, epochs = config.get("train_subset"), config.get("batch_size"), config.get("epochs")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (n, batch, epochs)):
        return None
    return epochs * (n // batch)


def load_run(run_dir: Path) -> tuple[dict, list[dict], list[str]]:
    """Load one pre-training run: (run record, probe rows, warnings); raise ``RunProblem``."""
    config = read_json(run_dir / rundir.CONFIG)
    missing = [k for k in rundir.REQUIRED_CONFIG_KEYS if k not in config]
    if missing:
        raise RunProblem(f"config.json lacks keys {missing}" + (" (written before runs recorded their row label; "
                         "re-run it with benchmarks.run)" if missing == ["row"] else ""))
    prov = _status(run_dir)
    eval_path = run_dir / rundir.EVAL
    if not eval_path.exists():
        raise RunProblem("pre-training finished but no eval.json (evaluation missing/unfinished)")
    evaluation = read_json(eval_path)
    if evaluation.get("status") != "finished":
        raise RunProblem(f"evaluation unfinished (eval.json status {evaluation.get('status')!r})")
    probes, warnings = _probe_rows(evaluation)
    kind = prov.get("kind", rundir.KIND_PRETRAIN)
    baseline = kind in rundir.BASELINE_KINDS
    metrics = run_dir / rundir.METRICS
    if metrics.exists():
        warnings += read_metrics(metrics)[1]
    elif not baseline:
        warnings.append("no metrics.jsonl (no training curves)")
    suite = config["suite"]
    record = {
        "run_dir": str(run_dir), "run_name": run_dir.name, "suite": suite,
        "profile": config["profile"], "row": config["row"], "kind": kind,
        # a reference encoder is reported under its own name, with no pretraining epochs
        "method": kind if baseline else config["method"],
        "hallucinator": bool(config.get("hallucinator", False)) and not baseline,
        "extrapolation": config.get("extrapolation", "none"),
        "variant": "baseline" if baseline else variant_of(config),
        "dataset": canonical_dataset(config["dataset"]),
        "backbone": "none (pixels)" if kind == "raw-pixels" else config.get("backbone", ""),
        "width": None if kind == "raw-pixels" else config.get("width"),
        "epochs": 0 if baseline else config.get("epochs"),
        "batch_size": None if baseline else config.get("batch_size"), "seed": int(config["seed"]),
        "steps": 0 if baseline else optimizer_steps(config),
        "level": level_of(suite, config["row"]), "config_id": config_id({**config, "kind": kind}),
        "has_metrics": metrics.exists(), "has_features": (run_dir / rundir.FEATURES_2D).exists(),
        "collapse": "" if baseline else collapse_of(run_dir, evaluation),
        **{f"prov_{k}": prov.get(k) for k in ("git_commit", "git_dirty", "torch", "cuda",
                                                "device_name", "world_size", "command",
                                                "start_time", "end_time", "wall_time_s")},
    }
    return record, probes, warnings


def load_transfer(run_dir: Path) -> dict:
    """Load one transfer run (results.json, Table 7); raise ``RunProblem`` if unusable."""
    res = read_json(run_dir / rundir.TRANSFER_RESULTS)
    prov = _status(run_dir) if (run_dir / rundir.RUN).exists() else {}
    missing = [k for k in REQUIRED_TRANSFER_KEYS if k not in res]
    if missing:
        raise RunProblem(f"results.json lacks keys {missing}")
    groups = ("bbox", "segm") if res["task"] == "coco" else ("bbox",)
    record = {"run_dir": str(run_dir), "run_name": run_dir.name, "task": res["task"],
              "method": res["method"], "hallucinator": bool(res["hallucinator"]),
              "trial": int(res.get("trial", 0)), "weights": res.get("weights"),
              "pretrain_run": res.get("pretrain_run"), "iterations": res.get("iterations"),
              "profile": res.get("profile", ""), "pretrain_epochs": res.get("pretrain_epochs"),
              "pretrain_checkpoint": res.get("pretrain_checkpoint"),
              "protocol_deviations": ", ".join(res.get("protocol_deviations") or []),
              "eval_only": bool(res.get("eval_only", False))}
    for group in groups:
        values = res.get(group)
        if not isinstance(values, dict):
            raise RunProblem(f"results.json: {group!r} missing for task {res['task']!r}")
        for m in BOX_METRICS:
            v = values.get(m)
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise RunProblem(f"results.json: {group}.{m} is not a finite number ({v!r})")
            record[f"{group}_{m}"] = float(v)
    record.update({f"prov_{k}": prov.get(k) for k in ("git_commit", "git_dirty", "torch",
                                                      "device_name", "wall_time_s")})
    return record


def pretrain_top1(pretrain_run: str | None, root: Path) -> float | None:
    """Linear-probe top-1 (final epoch) of a transfer run's pre-training run, if finished.

    ``pretrain_run`` may be absolute, relative to the runs root or to the working directory.
    """
    if not pretrain_run:
        return None
    for cand in (Path(pretrain_run), root / pretrain_run, root.parent / pretrain_run):
        if (cand / rundir.CONFIG).exists():
            try:
                _, probes, _ = load_run(cand)
            except RunProblem:
                return None
            return next((p["top1"] for p in probes if p["probe"] == "linear"), None)
    return None


def find_run_dirs(root: Path) -> list[Path]:
    """All directories under ``root`` holding config.json or results.json (not descended)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if rundir.CONFIG in filenames or rundir.TRANSFER_RESULTS in filenames:
            found.append(Path(dirpath))
            dirnames[:] = []
        dirnames.sort()
    return sorted(found)


def _flag_duplicates(runs: pd.DataFrame, problems: list[dict]) -> set[str]:
    """Same suite, profile, config_id and seed twice: keep the latest end_time, exclude the rest."""
    dropped: set[str] = set()
    if runs.empty:
        return dropped
    for _, grp in runs.groupby(["suite", "profile", "config_id", "seed"]):
        if len(grp) < 2:
            continue
        grp = grp.sort_values("prov_end_time", na_position="first")
        keep = grp.iloc[-1]
        for _, row in grp.iloc[:-1].iterrows():
            dropped.add(row.run_dir)
            problems.append({"run_dir": row.run_dir, "suite": row.suite, "profile": row.profile,
                             "excluded": True, "reason": f"duplicate of {keep.run_dir} "
                             "(same config and seed; the later run is kept)"})
    return dropped


def _flag_mixed_configs(runs: pd.DataFrame, problems: list[dict]) -> None:
    """Warn when one table cell averages runs whose recipes differ beyond the seed."""
    cell = ["suite", "profile", "method", "variant", "dataset", "level", "backbone",
            "width", "epochs", "batch_size"]
    if runs.empty:
        return
    for key, grp in runs.groupby(cell, dropna=False):
        if grp["config_id"].nunique() > 1:
            problems.append({"run_dir": "; ".join(grp.run_name), "suite": key[0],
                             "profile": key[1], "excluded": False,
                             "reason": "warning: one cell averages runs with differing configs "
                             f"({grp['config_id'].nunique()} config ids)"})


def collect(root: str | Path, suite: str | None = None, profile: str | None = None) -> Collection:
    """Read every run directory under ``root`` (optionally one suite / profile)."""
    root = Path(root)
    records, probe_rows, transfers, problems = [], [], [], []
    for run_dir in find_run_dirs(root) if root.exists() else []:
        path_suite, path_profile = _path_layout(run_dir, root)
        is_transfer = (run_dir / rundir.TRANSFER_RESULTS).exists()
        try:
            if is_transfer:
                record, warnings = load_transfer(run_dir), []
                record["suite"] = path_suite or "table7"
                record["profile"] = record["profile"] or path_profile
                record["pretrain_top1"] = pretrain_top1(record["pretrain_run"], root)
                rec_suite, rec_profile = record["suite"], record["profile"]
            else:
                record, probes, warnings = load_run(run_dir)
                rec_suite, rec_profile = record["suite"], record["profile"]
        except (RunProblem, TypeError, ValueError, KeyError) as err:
            if not isinstance(err, RunProblem):  # e.g. a seed "abc" or a top1 that is not a number
                err = RunProblem(f"wrongly typed or missing value ({type(err).__name__}: {err})")
            rec_suite, rec_profile = path_suite, path_profile
            try:  # a readable config names the suite better than the path does
                cfg = json.loads((run_dir / rundir.CONFIG).read_text())
                rec_suite, rec_profile = cfg.get("suite", rec_suite), cfg.get("profile", rec_profile)
            except (OSError, ValueError, AttributeError):
                pass
            if _wanted(rec_suite, rec_profile, suite, profile):
                problems.append({"run_dir": str(run_dir), "suite": rec_suite,
                                 "profile": rec_profile, "excluded": True, "reason": str(err)})
            continue
        if not _wanted(rec_suite, rec_profile, suite, profile):
            continue
        if not is_transfer and record["collapse"]:
            warnings.append(f"collapsed embedding: {record['collapse']} (near 1 = all points alike); "
                            "its numbers are kept and flagged in every caption that uses them")
        problems += [{"run_dir": str(run_dir), "suite": rec_suite, "profile": rec_profile,
                      "excluded": False, "reason": f"warning: {w}"} for w in warnings]
        if is_transfer:
            transfers.append(record)
        else:
            records.append(record)
            probe_rows += [{"run_dir": record["run_dir"], **p} for p in probes]
    runs = pd.DataFrame(records)
    dropped = _flag_duplicates(runs, problems)
    if dropped:
        runs = runs[~runs.run_dir.isin(dropped)].reset_index(drop=True)
    _flag_mixed_configs(runs, problems)
    results = pd.DataFrame(probe_rows)
    if not runs.empty:
        desc = [c for c in runs.columns if not c.startswith("prov_") and c not in ("has_metrics", "has_features")]
        results = results.merge(runs[desc], on="run_dir", how="inner")
    return Collection(results=results, runs=runs, transfer=pd.DataFrame(transfers),
                      problems=pd.DataFrame(problems, columns=PROBLEM_COLUMNS))


def _wanted(rec_suite: str, rec_profile: str, suite: str | None, profile: str | None) -> bool:
    return (suite is None or rec_suite == suite) and (profile is None or rec_profile == profile)
