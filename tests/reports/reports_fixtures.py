"""Run directories written as the engine writes them: configs from its presets (``hallucinator.config``),
file names, keys and writer from ``hallucinator.rundir``; only the measured numbers are chosen here."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hallucinator import rundir
from hallucinator.config import apply_overrides, to_dict
from hallucinator.data import DATASETS
from hallucinator.presets import PRESETS


def engine_config(method: str = "mocov2", hallucinator: bool = False, *, suite: str = "table1",
                  profile: str = "demo", row: str | None = None, **overrides) -> dict:
    """config.json of a demo-profile run, checked by the engine's own loader."""
    base = PRESETS[f"demo/{method}{'-hal' if hallucinator else ''}"]
    if "dataset" in overrides:  # the demo encoder, re-pointed at another dataset's channels
        overrides.setdefault("in_channels", DATASETS[overrides["dataset"]].num_channels)
    cfg = apply_overrides(base, {"suite": suite, "profile": profile, "row": method if row is None else row,
                                 **overrides})
    return to_dict(cfg)


def make_run(root: Path, name: str, *, status: str = "finished", top1: float | None = 50.0,
             metrics_epochs: int = 5, truncate_metrics: bool = False, knn: float | None = None,
             error: str | None = None, features: bool = False, kind: str = rundir.KIND_PRETRAIN,
             g2: float = 0.25, epoch_time_s: float = 1.0, probe_seconds: float | None = None,
             **config) -> Path:
    """Write one run dir ``root/<suite>/<profile>/<name>``; ``top1=None`` writes no eval.json."""
    cfg = engine_config(**config)
    run = root / cfg["suite"] / cfg["profile"] / name
    run.mkdir(parents=True)
    rundir.write_json(run / rundir.CONFIG, cfg)
    prov = {"status": status, "kind": kind, "git_commit": "0123456789abcdef", "git_dirty": False,
            "torch": "2.14.1", "cuda": None, "device_name": "cpu (test fixture)", "world_size": 1,
            "seed": cfg["seed"], "command": "python -m hallucinator.pretrain", "wall_time_s": 12.5,
            "start_time": "2026-11-25T10:00:00", "end_time": f"2026-11-25T10:0{cfg['seed'] % 10}:30"}
    if error:
        prov["error"] = error
    assert set(prov) <= set(rundir.RUN_KEYS)
    rundir.write_json(run / rundir.RUN, prov)
    for e in range(1, metrics_epochs + 1):
        rundir.append_jsonl(run / rundir.METRICS, rundir.metric_record({
            "epoch": e, "loss": 5.0 / e, "lr": 0.5, "sim_qk": 0.5 + 0.05 * e,
            "sim_qhat_k": (0.4 + 0.06 * e) if cfg["hallucinator"] else None, "g2": g2,
            "knn_top1": 20.0 + 5 * e + cfg["seed"], "images_per_s": 100.0, "epoch_time_s": epoch_time_s,
            "peak_mem_mb": 500.0, "skipped_images": 0}))
    if truncate_metrics:
        with open(run / rundir.METRICS, "a") as f:
            f.write('{"epoch": 6, "loss": 0.8')
    if top1 is not None and status == "finished":
        probes = {"linear": {"top1": top1, "top1_best": top1 + 0.5, "epochs": 10, "labels": "all",
                             "n_train": 60000, "n_test": 10000}}
        if probe_seconds is not None:
            probes["linear"]["seconds"] = probe_seconds
        if knn is not None:
            probes["knn"] = {"top1": knn, "k": 20, "labels": "all", "n_train": 60000, "n_test": 10000}
        if features:
            probes["features_2d"] = {"g2": g2, "n": 400}
        rundir.write_json(run / rundir.EVAL, {"status": "finished", "probes": probes})
    if features:
        rng = np.random.default_rng(cfg["seed"])
        angles = rng.uniform(0, 2 * np.pi, 400) if cfg["hallucinator"] else rng.normal(0, 1.0, 400)
        feats = np.stack([np.cos(angles), np.sin(angles)], 1)
        np.savez(run / rundir.FEATURES_2D, features=feats, labels=rng.integers(0, 2, 400), g2=g2)
    return run


def make_transfer(root: Path, name: str, task: str, method: str, hallucinator: bool, trial: int,
                  ap: float, profile: str = "demo", pretrain_run: str | None = None) -> Path:
    run = root / "table7" / profile / name
    run.mkdir(parents=True)
    res = {"task": task, "weights": "w.pkl", "pretrain_run": pretrain_run, "method": method,
           "hallucinator": hallucinator, "trial": trial, "iterations": 20, "profile": profile,
           "bbox": {"AP": ap, "AP50": ap + 20, "AP75": ap + 5}}
    if task == "coco":
        res["segm"] = {"AP": ap - 2, "AP50": ap + 15, "AP75": ap + 1}
    rundir.write_json(run / rundir.TRANSFER_RESULTS, res)
    return run
