"""Read saved run directories into pandas tables.

A run directory is any directory holding ``config.json`` (pre-training + evaluation runs) or
``results.json`` (detection-transfer runs, Table 7). Only *finished* runs with a finished
evaluation enter the numbers; every other run is listed in ``problems`` with the reason and is
never mixed into ``results``. Non-fatal issues (a truncated last metrics line, a probe with an
invalid value, an unusable ``features_2d.npz``) keep the run but are listed as warnings
(``excluded=False``). Every input is checked for size, type and shape before it is used: JSON
files and logs over their size cap are refused, logs skip the lines they cannot use, and
``features_2d.npz`` is read by ``read_features_2d``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
# Size caps of report inputs (far above what any run writes: ImageNet's features_2d.npz is ~1 MB).
MAX_JSON_BYTES = 16 * 2**20
MAX_LOG_BYTES = 256 * 2**20
MAX_FEATURES_BYTES = 64 * 2**20


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
    _check_size(path, MAX_JSON_BYTES)
    try:
        return rundir.read_json(path)  # the run directory's one JSON reader
    except OSError as err:
        raise RunProblem(f"unreadable {path.name} ({type(err).__name__}: {err})") from err
    except rundir.RunFileError as err:
        raise RunProblem(f"corrupt {path.name} ({str(err).removeprefix(f'{path}: ')})") from err


def _check_size(path: Path, cap: int) -> None:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise RunProblem(f"unreadable {path.name} ({type(err).__name__}: {err})") from err
    if size > cap:
        raise RunProblem(f"{path.name} is {size} bytes, over the {cap} a report reads (too large to be a run's)")


def _number(value) -> float:
    """A JSON value as a float: NaN unless it is a number (bool, string, or an int too big for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.nan


def read_log(path: Path, keys: tuple[str, ...], order: str) -> tuple[pd.DataFrame, list[str]]:
    """Read a JSONL log (``metrics.jsonl``, ``steps.jsonl``) line by line; return (frame, warnings).

    A line that is not a JSON object (torn, garbage, not UTF-8, a bare number) or whose ``order``
    key (epoch, step) is not a finite number is skipped with a warning; every value of ``keys``
    becomes a float (NaN if it is not a number or missing, so every key is a column); of repeated
    ``order`` values the last line is kept.
    """
    _check_size(path, MAX_LOG_BYTES)
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
        except ValueError:  # JSONDecodeError, an int of too many digits, not an object
            where = "last line truncated" if i == len(lines) else f"line {i} invalid"
            warnings.append(f"{path.name}: {where} (ignored)")
            continue
        row.update({k: _number(row[k]) for k in keys if k in row})
        if not math.isfinite(row.get(order, math.nan)):
            warnings.append(f"{path.name}: line {i} has no numeric {order} (ignored)")
            continue
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=list(frame.columns) + [k for k in keys if k not in frame])  # a missing key: NaN
    if order in frame:
        dups = sorted({float(e) for e in frame.loc[frame[order].duplicated(), order]})
        if dups:  # e.g. a run killed between writing an epoch's line and its checkpoint, then resumed
            dups = [int(e) if e.is_integer() else e for e in dups]
            warnings.append(f"{path.name}: duplicate {order}(s) {dups} (the last line of each is kept)")
            frame = frame.drop_duplicates(order, keep="last")
        frame = frame.sort_values(order).reset_index(drop=True)
    return frame, warnings


def _defaults() -> dict:
    """Every config key's default, as config.json spells it (a JSON round trip of ``TrainConfig()``)."""
    return json.loads(json.dumps(to_dict(TrainConfig()), default=str))


DEFAULTS = _defaults()


def read_metrics(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """``metrics.jsonl`` by ``read_log``: one row per epoch."""
    return read_log(path, rundir.METRIC_KEYS, "epoch")


def read_steps(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """``steps.jsonl`` by ``read_log``: one row per recorded step."""
    return read_log(path, rundir.STEP_KEYS, "step")


def _npy_header(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` member of an npz declares, read from its header only."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        header_end = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{member.filename} holds Python objects (a pickle); only numbers are read")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > member.file_size - header_end:
        raise ValueError(f"{member.filename} claims {claimed} bytes of data, the file holds "
                         f"{member.file_size - header_end}")
    return shape, dtype


def read_features_2d(path: Path) -> tuple[np.ndarray, np.ndarray | None, float | None]:
    """Fig 5's ``features_2d.npz``: (N x 2 float features, N labels or None, G2 or None).

    Checked before anything is loaded: the file's size (``MAX_FEATURES_BYTES``), that it is an
    npz, and each array's shape and dtype from its ``.npy`` header against the bytes it holds
    (so a header cannot claim a huge array); arrays load with ``allow_pickle=False``. Then
    ``features`` must be a finite N x 2 numeric array (N >= 1), ``labels`` N integers, ``g2`` a
    finite scalar. Raises ``RunProblem`` naming what is wrong.
    """
    _check_size(path, MAX_FEATURES_BYTES)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {m.filename: m for m in archive.infolist()}
            if sum(m.file_size for m in members.values()) > MAX_FEATURES_BYTES:
                raise ValueError(f"its arrays unpack to more than {MAX_FEATURES_BYTES // 2**20} MiB")
            shapes = {name[:-4]: _npy_header(archive, m) for name, m in members.items() if name.endswith(".npy")}
        if "features" not in shapes:
            raise ValueError(f"no 'features' array (arrays: {sorted(shapes) or 'none'})")
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("features", "labels", "g2") if k in shapes}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise RunProblem(f"unusable {path.name} ({type(err).__name__}: {err})") from err
    feats = arrays["features"]
    n = len(feats) if feats.ndim else 0
    if feats.ndim != 2 or feats.shape[1] != 2 or n == 0 or feats.dtype.kind not in "fiu":
        raise RunProblem(f"unusable {path.name} (features must be N x 2 numbers, got shape "
                         f"{feats.shape} of {feats.dtype})")
    feats = feats.astype(float)
    if not np.isfinite(feats).all():
        raise RunProblem(f"unusable {path.name} (features hold NaN or inf)")
    labels = arrays.get("labels")
    if labels is not None and (labels.shape != (n,) or labels.dtype.kind not in "iu"):
        raise RunProblem(f"unusable {path.name} (labels must be {n} integers, got shape {labels.shape} "
                         f"of {labels.dtype})")
    g2 = arrays.get("g2")
    if g2 is not None:
        if g2.shape != () or g2.dtype.kind not in "fiu" or not np.isfinite(g2):
            raise RunProblem(f"unusable {path.name} (g2 must be one finite number)")
        g2 = float(g2)
    return feats, labels, g2


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
    if status not in rundir.RUN_STATUSES:
        raise RunProblem(f"unknown run.json status {status!r} (one of {', '.join(rundir.RUN_STATUSES)})")
    if status != "finished":
        raise RunProblem(f"run.json status {status!r}")
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
    frame, _ = read_steps(path) if path.name == rundir.STEPS else read_metrics(path)
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
        base = {"probe_epochs": res.get("epochs"), "labels": _labels(res), "k": res.get("k"),
                "seconds": _number(res["seconds"]) if "seconds" in res else math.nan}
        rows.append({"probe": name, "top1": float(res["top1"]), **base})
        if name == "linear" and "top1_best" in res:
            if _valid_pct(res["top1_best"]):
                rows.append({"probe": "linear_best", "top1": float(res["top1_best"]),
                             **base, "seconds": math.nan})  # the same probe run: its time counts once
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
    if (run_dir / rundir.STEPS).exists():
        warnings += read_steps(run_dir / rundir.STEPS)[1]
    has_features = (run_dir / rundir.FEATURES_2D).exists()
    if has_features:
        try:
            read_features_2d(run_dir / rundir.FEATURES_2D)
        except RunProblem as err:
            warnings.append(f"{err}; no Fig 5 panel for this run")
            has_features = False
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
        "has_metrics": metrics.exists(), "has_features": has_features,
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
    """All directories under ``root`` holding config.json or results.json.

    A run directory's own sub-folders are searched too (its ``tensorboard/`` aside): a run written
    by an older version with ``run_name=.`` into a suite's folder must not hide the runs beside it.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if rundir.CONFIG in filenames or rundir.TRANSFER_RESULTS in filenames:
            found.append(Path(dirpath))
            dirnames[:] = [d for d in dirnames if d != rundir.TENSORBOARD]
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
