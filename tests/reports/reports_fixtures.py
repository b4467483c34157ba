"""Hand-made run directories following the run-directory contract (no training involved)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

BASE_CONFIG = {"suite": "table1", "profile": "demo", "method": "mocov2", "hallucinator": False,
               "extrapolation": "none", "dataset": "cifar10", "backbone": "resnet18_cifar",
               "width": 16, "epochs": 5, "batch_size": 128, "seed": 0}


def make_run(root: Path, name: str, *, status: str = "finished", top1: float | None = 50.0,
             metrics_epochs: int = 5, truncate_metrics: bool = False, knn: float | None = None,
             error: str | None = None, features: bool = False, **config) -> Path:
    """Write one run dir ``root/<suite>/<profile>/<name>``; ``top1=None`` writes no eval.json."""
    cfg = {**BASE_CONFIG, **config}
    run = root / cfg["suite"] / cfg["profile"] / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(cfg))
    prov = {"status": status, "git_commit": "0123456789abcdef", "git_dirty": False,
            "torch": "2.14.1", "cuda": None, "device_name": "cpu (test fixture)", "world_size": 1,
            "seed": cfg["seed"], "command": "python -m hallucinator.train", "wall_time_s": 12.5,
            "start_time": "2026-11-25T10:00:00", "end_time": f"2026-11-25T10:0{cfg['seed']}:30"}
    if error:
        prov["error"] = error
    (run / "run.json").write_text(json.dumps(prov))
    lines = []
    for e in range(1, metrics_epochs + 1):
        lines.append(json.dumps({
            "epoch": e, "loss": 5.0 / e, "lr": 0.5, "sim_qk": 0.5 + 0.05 * e,
            "sim_qhat_k": (0.4 + 0.06 * e) if cfg["hallucinator"] else None, "g2": 0.25,
            "knn_top1": 20.0 + 5 * e + cfg["seed"], "images_per_s": 100.0, "epoch_time_s": 1.0,
            "peak_mem_mb": 500.0}))
    text = "\n".join(lines) + "\n"
    if truncate_metrics:
        text += '{"epoch": 6, "loss": 0.8'
    (run / "metrics.jsonl").write_text(text)
    if top1 is not None and status == "finished":
        probes = {"linear": {"top1": top1, "top1_best": top1 + 0.5, "epochs": 10, "labels": "all"}}
        if knn is not None:
            probes["knn"] = {"top1": knn, "k": 20}
        (run / "eval.json").write_text(json.dumps({"status": "finished", "probes": probes}))
    if features:
        rng = np.random.default_rng(cfg["seed"])
        angles = rng.uniform(0, 2 * np.pi, 400) if cfg["hallucinator"] else rng.normal(0, 1.0, 400)
        feats = np.stack([np.cos(angles), np.sin(angles)], 1)
        np.savez(run / "features_2d.npz", features=feats, labels=rng.integers(0, 2, 400), g2=0.21)
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
    (run / "results.json").write_text(json.dumps(res))
    return run
