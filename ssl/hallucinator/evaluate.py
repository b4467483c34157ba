"""Evaluate a pretraining run's frozen backbone, or a reference encoder, into ``eval.json``.

    python -m hallucinator.evaluate runs/pretrain/mocov2-hal-cifar10-s0 --probes linear,knn
    python -m hallucinator.evaluate OUT_DIR --baseline random-init --config demo/mocov2 seed=1
    python -m hallucinator.evaluate OUT_DIR --baseline raw-pixels --config demo/mocov2

Probes: ``linear`` (the paper's protocol, 100 epochs; headline = final epoch, best epoch kept
beside it), ``fast_linear`` (features once + L-BFGS logistic regression, all labels),
``fast_linear_1k`` (the same on 1000 class-balanced labels), ``knn`` (weighted kNN, k=200),
``features_2d`` (l2-normalised test embeddings and their G2, for Fig 5; needs dim=2).
Finished probes are kept when the command is re-run; the linear probe resumes mid-way.
With ``on_corrupt=skip`` an unreadable image is left out, never replaced by another: ``n_test`` /
``n_train`` count the images used and ``skipped_test`` / ``skipped_train`` the ones left out.
One process at a time writes a run directory (the run lock of ``training/run_lock.py``, shared
with pretraining): a second one is refused at once (exit 1). ``--baseline`` writes only into a new
directory or one that holds the same reference encoder. A checkpoint whose config differs from
the run's ``config.json``, or whose weights are not finite, is refused. Errors are one line
(exit 1, 2 config, 3 data: an unreadable file, a run directory's JSON files included);
``--debug`` or HALLUCINATOR_DEBUG=1 shows the traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import cli_errors
from .config import ConfigError, TrainConfig, from_dict, to_dict
from .presets import load_config
from .data import DATASETS
from .evaluation.fast_probe import balanced_subset, logistic_regression_top1
from .evaluation.features import extract_features
from .evaluation.knn import knn_top1
from .evaluation.linear_probe import linear_probe
from .methods import build_method, model_config_from
from .metrics import uniformity
from .rundir import write_json
from . import rundir
from . import checkpoint
from .data.splits import load_split, subset
from .device import pick_device
from .training import provenance
from .training.run_lock import RunDirLock

PROBES = ("linear", "fast_linear", "fast_linear_1k", "knn", "features_2d")
BASELINES = ("random-init", "raw-pixels")


class _RawPixels(torch.nn.Module):
    """The "encoder" of the raw-pixel baseline: flattened normalised pixels."""

    def forward(self, x):
        return x.flatten(1)


def _encoder_from_run(run_dir: Path, cfg: TrainConfig, device: torch.device):
    """The trained encoder, only from a finished, finite checkpoint of this very config."""
    path = run_dir / rundir.CHECKPOINT
    state = checkpoint.load(path)
    checkpoint.check_compatible(state["config"], to_dict(cfg), path, action="evaluate it as this run")
    checkpoint.require_finite(state["model"], str(path))
    if state["epoch"] < cfg.epochs:
        raise RuntimeError(f"{run_dir} finished {state['epoch']}/{cfg.epochs} epochs; pretraining is not done")
    model = build_method(model_config_from(cfg))
    model.load_state_dict(state["model"])
    return model.encoder.to(device)


def _num_skipped(dataset) -> int:
    """Unreadable files left out of ``dataset`` so far (``on_corrupt=skip``; 0 for in-memory data)."""
    return getattr(dataset, "num_skipped", 0)


def evaluate(run_dir: Path, probes: list[str], cfg: TrainConfig, baseline: str | None = None,
             linear_epochs: int = 100, linear_lr: float | None = None, linear_batch: int | None = None,
             show_progress: bool = True) -> dict[str, Any]:
    """Runs the probes not yet in ``run_dir/eval.json`` and adds them to it, holding the run
    directory's lock (``RunDirLock``) throughout.

    Raises:
        RunDirLockedError: another process (a pretraining or an evaluation) holds ``run_dir``.
    """
    with RunDirLock(run_dir):
        return _run_probes(run_dir, probes, cfg, baseline, linear_epochs, linear_lr, linear_batch, show_progress)


def _run_probes(run_dir: Path, probes: list[str], cfg: TrainConfig, baseline: str | None = None,
                linear_epochs: int = 100, linear_lr: float | None = None, linear_batch: int | None = None,
                show_progress: bool = True) -> dict[str, Any]:
    """``evaluate`` for a caller that already holds the run directory's lock (``main``)."""
    unknown = sorted(set(probes) - set(PROBES))
    if unknown:
        raise ValueError(f"unknown probe(s) {unknown}; choose from {PROBES}")
    device = pick_device(cfg, 0)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_path = run_dir / rundir.EVAL
    result = rundir.read_json(out_path) if out_path.exists() else {}
    result.setdefault("probes", {})
    result["status"] = "running"
    todo = [p for p in probes if p not in result["probes"]]
    if not todo:
        result["status"] = "finished"
        _write_eval(out_path, result)
        return result
    if baseline == "raw-pixels":
        encoder = None
        backbone: torch.nn.Module = _RawPixels()
    elif baseline == "random-init":
        torch.manual_seed(cfg.seed)
        encoder = build_method(model_config_from(cfg)).encoder.to(device)
        backbone = encoder.backbone
    else:
        encoder = _encoder_from_run(run_dir, cfg, device)
        backbone = encoder.backbone
    train = subset(load_split(cfg, "train"), cfg.eval_train_subset)
    test = subset(load_split(cfg, "test"), cfg.eval_test_subset)
    size = cfg.image_size or DATASETS[cfg.dataset].image_size
    feats: dict[str, Any] = {}
    run_kw = dict(num_workers=cfg.num_workers, precision=cfg.precision)  # the run's workers and precision

    def features():
        if not feats:
            t0 = time.time()
            feats["train"] = extract_features(backbone, train, cfg.dataset, device, size, **run_kw)
            feats["test"] = extract_features(backbone, test, cfg.dataset, device, size, **run_kw)
            feats["seconds"] = time.time() - t0
        return feats["train"], feats["test"]

    for probe in todo:
        t0 = time.time()
        if probe == "knn":
            (ftr, ltr), (fte, lte) = features()
            res = {"top1": knn_top1(ftr, ltr, fte, lte, k=cfg.knn_k, temperature=cfg.knn_temperature), "k": cfg.knn_k,
                   "labels": "all", "n_test": len(lte)}
        elif probe in ("fast_linear", "fast_linear_1k"):
            (ftr, ltr), (fte, lte) = features()
            idx = balanced_subset(ltr, 1000, seed=0) if probe == "fast_linear_1k" else None
            res = {"top1": logistic_regression_top1(ftr, ltr, fte, lte, train_idx=idx),
                   "labels": 1000 if idx is not None else "all", "solver": "L-BFGS logistic regression, wd 1e-4",
                   "n_test": len(lte)}
        elif probe == "linear":
            if baseline == "raw-pixels":
                continue
            big = cfg.dataset in ("imagenet", "in200")
            feat_dim = backbone.out_dim
            res = linear_probe(backbone, feat_dim, train, test, cfg.dataset, device, run_dir, epochs=linear_epochs,
                               lr=linear_lr or (30.0 if big else 10.0), batch_size=linear_batch or (256 if big else 512),
                               size=size, seed=cfg.seed, show_progress=show_progress,
                               drop_last=cfg.linear_drop_last, **run_kw)
        else:  # features_2d
            if encoder is None:
                continue
            emb, labels = extract_features(encoder, test, cfg.dataset, device, size, **run_kw)  # projector output
            if emb.shape[1] != 2:
                raise ValueError(f"features_2d needs a 2-D embedding (dim=2), this run has dim={emb.shape[1]}")
            emb = torch.nn.functional.normalize(emb, dim=1)
            g2 = uniformity(emb).item()
            rundir.write_atomic(run_dir / rundir.FEATURES_2D, binary=True, write=lambda f: np.savez(
                f, features=emb.numpy(), labels=labels.numpy(), g2=g2))  # a full disk leaves no partial file
            res = {"g2": g2, "n": emb.shape[0], "skipped_test": _num_skipped(test)}
        if "top1" in res:  # how many labelled images the probe saw; n_test: those it scored
            res.update(n_train=res["labels"] if isinstance(res.get("labels"), int) else len(train) - _num_skipped(train),
                       skipped_train=_num_skipped(train), skipped_test=_num_skipped(test))
        res["seconds"] = round(time.time() - t0, 1)
        result["probes"][probe] = res
        _write_eval(out_path, result)  # each finished probe is kept even if a later one fails
        print(f"{run_dir.name}: {probe} " + (f"top1 {res['top1']:.2f}" if "top1" in res else f"G2 {res.get('g2')}"), flush=True)
    result["status"] = "finished"
    _write_eval(out_path, result)
    return result


def _write_eval(path: Path, result: dict[str, Any]) -> None:
    """Writes eval.json with ``result``'s probes added to those already in the file: a probe that
    an earlier evaluate wrote is never dropped."""
    if path.exists():
        result["probes"] = {**rundir.read_json(path).get("probes", {}), **result["probes"]}
    write_json(path, result)


def _check_baseline_dir(run_dir: Path, cfg: TrainConfig, baseline: str) -> None:
    """``--baseline`` rewrites config.json and run.json: only in a new directory, or in one that
    holds the same reference encoder with the same config (to add probes)."""
    held = [n for n in (rundir.CONFIG, rundir.RUN, rundir.CHECKPOINT, rundir.METRICS, rundir.EVAL)
            if (run_dir / n).exists()]
    if not held:
        return
    run_json = run_dir / rundir.RUN
    kind = rundir.read_json(run_json).get("kind", rundir.KIND_PRETRAIN) if run_json.exists() else None
    if kind != baseline:
        raise ConfigError(f"{run_dir} holds {f'a {kind} run' if kind else 'another run'} ({', '.join(held)}), not a "
                          f"{baseline} reference; --baseline {baseline} needs a new directory or one of its own")
    if (run_dir / rundir.CONFIG).exists():
        checkpoint.check_compatible(rundir.read_json(run_dir / rundir.CONFIG), to_dict(cfg), run_dir / rundir.CONFIG,
                                    action=f"add {baseline} probes to it")


def _write_baseline_run(run_dir: Path, cfg: TrainConfig, baseline: str) -> None:
    """config.json is the encoder's own (loadable) config; run.json's ``kind`` says it was not pretrained."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / rundir.CONFIG, to_dict(cfg))
    info = provenance.collect(pick_device(cfg, 0), 1, cfg.seed)
    write_json(run_dir / rundir.RUN, {**info, "status": "finished", "kind": baseline, "end_time": provenance.now(),
                                      "wall_time_s": None})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hallucinator.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a pretraining run directory (or the output dir of a --baseline)")
    p.add_argument("--probes", default="fast_linear,fast_linear_1k,knn", help=f"comma-separated, from {PROBES}")
    p.add_argument("--baseline", choices=BASELINES, help="evaluate a reference encoder instead of a run")
    p.add_argument("--config", help="preset/YAML for --baseline (the encoder and dataset to use)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for --baseline")
    p.add_argument("--linear-epochs", type=int, default=100)
    p.add_argument("--linear-lr", type=float, default=None, help="default 10 (ImageNet: 30)")
    p.add_argument("--linear-batch", type=int, default=None, help="default 512 (ImageNet: 256)")
    p.add_argument("--debug", action="store_true", help=f"show tracebacks (also: {cli_errors.DEBUG_ENV}=1)")
    args = p.parse_intermixed_args(argv)
    probes = [x for x in args.probes.split(",") if x]
    if args.baseline and not args.config:
        p.error("--baseline needs --config (the encoder and dataset)")
    cfg_path = args.run_dir / rundir.CONFIG
    if not args.baseline and not cfg_path.exists():
        print(f"error: {args.run_dir} has no config.json: not a run directory", file=sys.stderr)
        return 2
    lock = RunDirLock(args.run_dir)
    try:
        lock.acquire()  # one writer per run directory, as for pretraining
        if args.baseline:
            cfg = load_config(args.config, args.overrides)
            _check_baseline_dir(args.run_dir, cfg, args.baseline)
        else:
            cfg = from_dict(rundir.read_json(cfg_path))
    except Exception as e:  # refused before anything was written: eval.json stays as it was
        lock.release()
        if cli_errors.debug_requested(args.debug):
            raise
        return cli_errors.report(e)
    previous = _link_previous(args.run_dir / rundir.EVAL)  # under the lock: no other writer removes it
    try:
        if args.baseline:
            _write_baseline_run(args.run_dir, cfg, args.baseline)
        _run_probes(args.run_dir, probes, cfg, baseline=args.baseline, linear_epochs=args.linear_epochs,
                    linear_lr=args.linear_lr, linear_batch=args.linear_batch)
    except Exception as e:
        _mark_failed(args.run_dir / rundir.EVAL, e, previous)
        if cli_errors.debug_requested(args.debug):
            raise
        return cli_errors.report(e)
    finally:
        if previous is not None:
            previous.unlink(missing_ok=True)
        lock.release()
    return 0


def _link_previous(path: Path) -> Path | None:
    """A hard link to the eval.json this command starts from (absent if there is none), so that it
    can be put back without writing a byte; None where the file system has no hard links."""
    previous = path.with_name(f".{path.name}.previous")
    try:
        previous.unlink(missing_ok=True)
        if path.exists():
            os.link(path, previous)
    except OSError:
        return None
    return previous


def _mark_failed(path: Path, exc: Exception, previous: Path | None = None) -> None:
    """An eval.json left "running" by a failed probe says "failed" and why (finished probes stay).
    When even that cannot be written (a full disk), the eval.json this command started from is
    put back by a rename (``previous``, from ``_link_previous``), so none is left "running"."""
    try:
        result = rundir.read_json(path)
        if result.get("status") == "running":
            write_json(path, {**result, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
    except ValueError:
        pass
    except OSError:
        if previous is None:
            return
        try:
            if previous.exists():
                os.replace(previous, path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
