"""The run directory: its files, their keys, and the one atomic JSON writer (no torch import).

A pretraining run lives in ``output_dir/run_name``; the trainer, ``evaluate``, the reports and
the transfer results read and write it only through the names defined here:

  ``config.json``    the resolved ``TrainConfig`` (``to_dict``); ``suite``/``profile``/``row`` say
                     which benchmark cell it fills (``ROW_KEYS``)
  ``run.json``       provenance and ``status`` (``RUN_STATUSES``; keys ``RUN_KEYS``)
  ``metrics.jsonl``  one JSON object per finished epoch (``METRIC_KEYS``)
  ``steps.jsonl``    optional step-level diagnostics (``STEP_KEYS``)
  ``checkpoint.pt``  weights-only checkpoint (``checkpoint.py``)
  ``eval.json``      ``{"status", "probes": {name: {"top1", "labels", "n_train", "n_test", ...}}}``
  ``features_2d.npz`` Fig 5's l2-normalised 2-D test embeddings, their labels and G2 (Eq 6)
  ``tensorboard/``   TensorBoard event files of every metric in ``metrics.jsonl``
  ``results.json``   a detection-transfer run's AP numbers (Table 7)
  ``.lock``          the one writer's OS-level lock (``training/run_lock.py``)
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

CONFIG = "config.json"
RUN = "run.json"
METRICS = "metrics.jsonl"
STEPS = "steps.jsonl"
CHECKPOINT = "checkpoint.pt"
EVAL = "eval.json"
FEATURES_2D = "features_2d.npz"
TENSORBOARD = "tensorboard"
TRANSFER_RESULTS = "results.json"
LOCK = ".lock"

# config.json: the keys that place a run in a benchmark table (written as config overrides).
ROW_KEYS = ("suite", "profile", "row")
REQUIRED_CONFIG_KEYS = (*ROW_KEYS, "method", "dataset", "seed")
# Config keys that name, place or schedule a run rather than define its recipe: a checkpoint may
# resume under different values, and runs that differ only here are the same configuration.
NON_DEFINING_KEYS = frozenset({"output_dir", "run_name", "device", "dist_backend", "threads", "num_workers",
                               "knn_every", "data_root", "on_corrupt", "tensorboard", "suite", "profile", "row",
                               "source", "cudnn_benchmark", "compile"})

RUN_STATUSES = ("running", "finished", "interrupted", "failed")
RUN_KEYS = ("status", "git_commit", "git_dirty", "torch", "cuda", "device_name", "world_size", "seed",
            "python", "host", "command", "start_time", "end_time", "resumed_at", "wall_time_s", "error",
            "kind", "settings", "process_group")
# run.json "kind": how the encoder was obtained (a reference encoder is not pretrained).
KIND_PRETRAIN = "pretrain"
BASELINE_KINDS = ("random-init", "raw-pixels")

METRIC_KEYS = ("epoch", "loss", "lr", "sim_qk", "sim_qhat_k", "g2", "knn_top1", "images_per_s",
               "epoch_time_s", "peak_mem_mb", "skipped_images")
STEP_KEYS = ("step", "epoch", "lr", "loss", "q_norm", "k_norm", "q_hat_norm", "sim_qk", "sim_qhat_k",
             "q_pairwise_cos", "q_hat_pairwise_cos", "q_erank", "lambda", "extra_weight", "grad_norm_pair",
             "grad_norm_extra", "grad_share_extra")  # written by training/step_diagnostics.py


class RunFileError(ValueError):
    """A run-directory file that exists but is not what it should be (not JSON, not an object);
    the message names the file. The CLIs report it as a data error (exit 3)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {reason}")


def read_json(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path`` (run.json, config.json, eval.json); ``RunFileError`` naming the
    file when it is not UTF-8 JSON or not an object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFileError(path, f"not a valid JSON file ({e})") from None
    if not isinstance(obj, dict):
        raise RunFileError(path, f"expected a JSON object, found {type(obj).__name__}")
    return obj


def write_atomic(path: str | Path, write: Callable[[IO], None], binary: bool = False) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, fsyncs, then renames it over ``path``:
    readers see the old file or the new one, never a part (checkpoints use it too). On failure the
    temporary file is removed, freeing its space, and an ``OSError`` (a full disk) names ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON, atomically (``write_atomic``)."""
    write_atomic(path, lambda f: json.dump(obj, f, indent=2))


def update_json(path: str | Path, **updates: Any) -> dict[str, Any]:
    """Reads the JSON object at ``path`` (empty if absent), updates it, writes it atomically."""
    path = Path(path)
    obj = read_json(path) if path.exists() else {}
    obj.update(updates)
    write_json(path, obj)
    return obj


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Appends one JSON line (the epoch/step logs; a torn last line is tolerated by readers)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def keep_jsonl(path: str | Path, key: str, last: int) -> None:
    """Drops the records of a JSONL log whose ``key`` exceeds ``last`` (a resumed run writes them
    again). A line that is not such a record (torn by a kill or a full disk) is kept, ended by a
    newline, for the reports to flag: it is never silently deleted."""
    path = Path(path)
    if not path.exists():
        return
    keep, lines = [], path.read_text(errors="surrogateescape").split("\n")
    for line in lines[:-1] if lines[-1] == "" else lines:
        try:
            value = json.loads(line)[key]
            if value > last:
                continue
        except (json.JSONDecodeError, KeyError, TypeError, IndexError):
            pass
        keep.append(line)
    write_atomic(path, lambda f: f.write("".join(k + "\n" for k in keep).encode(errors="surrogateescape")),
                 binary=True)


def metric_record(values: dict[str, Any]) -> dict[str, Any]:
    """The ``metrics.jsonl`` line of one epoch: exactly ``METRIC_KEYS`` (missing ones null)."""
    extra = sorted(set(values) - set(METRIC_KEYS))
    if extra:
        raise KeyError(f"metrics.jsonl has no keys {extra}; add them to rundir.METRIC_KEYS")
    return {k: values.get(k) for k in METRIC_KEYS}


def defining_config(config: dict[str, Any]) -> dict[str, Any]:
    """The keys of a config that define its recipe (``NON_DEFINING_KEYS`` and ``seed`` removed)."""
    return {k: v for k, v in config.items() if k not in NON_DEFINING_KEYS and k != "seed"}

