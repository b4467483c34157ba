"""Named configurations: the paper's Tables 1-2 (every method x with/without x dataset), the
authors' released recipes, and the CPU profiles (``demo``, ``smoke``) on the real Fashion-MNIST.

Names: ``<method>[-hal]-<dataset>`` (e.g. ``mocov2-hal-cifar10``, ``simsiam-in200``) for the
paper's recipes (the default family), ``released/<method>[-hal]-<dataset>`` for the released
code's recipe, one per released config file (named in its ``source`` key; SimCLR/SimSiam ``-hal``
are inferred, see docs/fidelity.md), and ``<profile>/<method>[-hal]`` for the CPU profiles. "-hal"
adds the Hallucinator AND the center-suppressed crop (the paper's full method, Table 3's last
row); the baseline keeps the plain RandomResizedCrop.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .config import ConfigError, TrainConfig, apply_overrides, parse_override, read_yaml
from .methods.factory import METHODS

SMALL_DATASETS = ("cifar10", "cifar100", "tiny_imagenet", "stl10")
LARGE_DATASETS = ("in200", "imagenet")

# Table 1 recipe (Sec 4.1, after ContrastiveCrop): ResNet-18 CIFAR stem, batch 512, 500 epochs,
# SGD lr 0.5 m 0.9 wd 1e-4, cosine; MoCo K 65536 m 0.999.
SMALL = dict(backbone="resnet18_cifar", epochs=500, batch_size=512, lr=0.5, weight_decay=1e-4, augment="small")

# Table 2 recipe: ResNet-50, 100 epochs, each method's original settings (SimCLR as in [44]).
LARGE = {
    "mocov1": dict(batch_size=256, lr=0.03, weight_decay=1e-4, augment="mocov1"),
    "mocov2": dict(batch_size=256, lr=0.03, weight_decay=1e-4, augment="mocov2"),
    "simclr": dict(batch_size=512, lr=0.5, weight_decay=1e-4, augment="simclr"),
    "simsiam": dict(batch_size=512, lr=0.1, weight_decay=1e-4, augment="simsiam"),  # 0.05 x 512/256
}
HALLUCINATED = dict(hallucinator=True, crop_p=0.5, beta_alpha=0.6)
# SimSiam as in every SimSiam config the paper follows (ContrastiveCrop small scale, SimSiam's own
# ImageNet recipe): zero-init residual BN, predictor at a constant lr; 3-layer projector everywhere.
SIMSIAM = dict(zero_init_residual=True, fix_pred_lr=True, proj_layers=3)

# The released recipes (docs/fidelity.md has the table, config by config). Every ``released/``
# preset names the config file it mirrors in ``source`` ("<repository>:<path>"; "inferred from"
# where no released config exists for that combination and one was rebuilt).
AUTHORS_REPO = "jingwu6/Hallucination-improves-the-performance-of-unsupervised-visual-representation-learning"
CC_REPO = "xyupeng/ContrastiveCrop"
CONFIG_DIRS = {"cifar10": "cifar10", "cifar100": "cifar100", "stl10": "stl10", "tiny_imagenet": "tiny200",
               "in200": "IN200", "imagenet": "IN1K"}
# Every released config: its runs under runs/released, the linear probe drops the last incomplete
# batch; with the Hallucinator each process draws its own lambda (seeded here, unseeded there).
RELEASED = dict(output_dir="runs/released", linear_drop_last=True)
RELEASED_HAL = dict(hallucinator=True, lambda_per_rank=True)
# Small scale: ResNet-18 (CIFAR stem), batch 512, 500 epochs, lr 0.5, per-epoch cosine to 0.1 x lr,
# Beta alpha 0.1; box (0.25, 0.75) = p 0.5, Tiny ImageNet (0.15, 0.85) = p 0.7; no crop warm-up.
RELEASED_SMALL = dict(SMALL, **RELEASED, lr_schedule="epoch_cosine", lr_min_ratio=0.1, beta_alpha=0.1)
RELEASED_P = {"tiny_imagenet": 0.7}
# MoCo at small scale (authors' configs/small/*): T 0.2 only. Baselines (moco_rcrop.py): batch 504,
# K 65520, a linear head except CIFAR-100's MLP. Hallucinator (moco_center_hallucinate.py): MLP
# head, K 65536, [k; k] enqueued; batch 512 (CIFAR-10; CIFAR-100/STL-10/Tiny ImageNet write 504,
# which the released assert K % 2N == 0 refuses at any practical world size: 512 is used, the paper's).
RELEASED_MOCO_BASELINE_HEAD = {"cifar100": 2}     # proj_layers; the other datasets 1 (linear)
# SimCLR / SimSiam at small scale: only ContrastiveCrop's configs exist (inferred for -hal).
RELEASED_SIMCLR = dict(method="simclr", base_temperature=0.07, proj_batch_norm=False, sync_bn=True)
RELEASED_SIMSIAM = dict(method="simsiam", **SIMSIAM, sync_bn=True)
RELEASED_SMALL_DATASETS = {"simclr": SMALL_DATASETS, "simsiam": ("cifar10", "cifar100")}  # MoCo: all four
# ImageNet / IN-200 (authors' configs/IN1K, configs/IN200): ResNet-50, 100 epochs, lr 0.03, the
# imagenet_pretrain_rcrop/ccrop augmentation (= MoCo v2's: jitter (.4,.4,.4,.1) p 0.8, blur p 0.5)
# for v1 and v2 alike, Beta alpha 0.6, box (0.2, 0.8) = p 0.6.
RELEASED_LARGE = dict(backbone="resnet50", epochs=100, num_workers=8, lr=0.03, weight_decay=1e-4, augment="mocov2",
                      beta_alpha=0.6, **RELEASED)
COSINE_TO_0 = dict(lr_schedule="epoch_cosine", lr_min_ratio=0.0)
MULTISTEP_TO_0 = dict(lr_schedule="multistep", lr_milestones=(60, 80), lr_decay=0.0)  # lr 0 from epoch 61
# (method, with Hallucinator, dataset) -> keys. IN-200 writes batch 259 / K 65786 (= 127 x 518: a
# global 259 with [k; k]) everywhere. IN-1K's Hallucinator configs write 259 with K 65536, which the
# released assert refuses at a global 259 (65536 % 518 != 0); its per-GPU floor(259 / world) runs at
# a global 256 on 4, 8, 16, ... GPUs: 256 is used.
RELEASED_LARGE_CONFIGS = {
    ("mocov1", False, "in200"): dict(proj_layers=1, temperature=0.2, batch_size=259, queue_size=65786, **MULTISTEP_TO_0),
    ("mocov1", True, "in200"): dict(proj_layers=2, temperature=0.2, batch_size=259, queue_size=65786, **MULTISTEP_TO_0),
    ("mocov2", False, "in200"): dict(proj_layers=2, temperature=0.2, batch_size=259, queue_size=65786, **COSINE_TO_0),
    ("mocov2", True, "in200"): dict(proj_layers=2, temperature=0.2, batch_size=259, queue_size=65786, **COSINE_TO_0),
    ("mocov1", False, "imagenet"): dict(proj_layers=1, temperature=0.07, batch_size=256, queue_size=65536,
                                        **MULTISTEP_TO_0),
    ("mocov1", True, "imagenet"): dict(proj_layers=2, temperature=0.2, batch_size=256, queue_size=65536, **COSINE_TO_0),
    ("mocov2", False, "imagenet"): dict(proj_layers=2, temperature=0.2, batch_size=259, queue_size=65786, **COSINE_TO_0),
    ("mocov2", True, "imagenet"): dict(proj_layers=2, temperature=0.2, batch_size=256, queue_size=65536, **COSINE_TO_0),
}
# Hallucinator on ImageNet: p 0.6, [k; k]; plain crops for the first 20 epochs on IN-1K, none on IN-200.
RELEASED_LARGE_HAL = dict(RELEASED_HAL, crop_p=0.6, moco_enqueue_twice=True)
RELEASED_CROP_WARMUP = {"imagenet": 20, "in200": 0}

# CPU profiles on Fashion-MNIST (28x28 grey). ``demo``: a narrow ResNet-18 (CIFAR stem, width 4 =
# 1/16 of the standard 64 channels, 0.04 M backbone parameters), 3 epochs over 20k training images
# at batch 128 (468 steps), MoCo momentum 0.99 (at 0.999 the key encoder would still hold ~63 % of
# its initial weights after 468 steps). Chosen from accuracy-vs-minutes measurements
# (``benchmarks/demo_sizing.py``, README "Demo sizing"): ``make reproduce-table1`` took 59 min 22 s
# on a 2-core CPU (2026-11-28, commit cc98f20). Probes use all 60k labelled training images and the
# 10k test images.
DEMO = dict(dataset="fashion_mnist", backbone="resnet18_cifar", width=4, in_channels=1, augment="grey",
            image_size=28, epochs=3, train_subset=20000, batch_size=128, lr=0.5, weight_decay=5e-4,
            warmup_epochs=0.3, queue_size=4096, moco_momentum=0.99, num_workers=0, augment_on="device",
            knn_every=1, knn_train_subset=5000, metrics_batch=1024, threads=2, profile="demo")
# smoke: 32 steps, a step record every 4 (8 points on its report's dynamics pages; the default 50 gave one)
SMOKE = dict(DEMO, width=8, moco_momentum=0.999, epochs=2, train_subset=2048, batch_size=128, knn_train_subset=1024,
             diag_every=4,
             metrics_batch=256, queue_size=1024, eval_train_subset=4096, eval_test_subset=2000, profile="smoke")


def _make(**values) -> TrainConfig:
    cfg = dataclasses.replace(TrainConfig(), **values)
    cfg.validate()
    return cfg


def _build() -> dict[str, TrainConfig]:
    presets: dict[str, TrainConfig] = {}
    for method in METHODS:
        for hal in (False, True):
            tag = f"{method}-hal" if hal else method
            extra = HALLUCINATED if hal else {}
            own = SIMSIAM if method == "simsiam" else {}
            for ds in SMALL_DATASETS:
                presets[f"{tag}-{ds}"] = _make(method=method, dataset=ds, **SMALL, **own, **extra)
            for ds in LARGE_DATASETS:
                presets[f"{tag}-{ds}"] = _make(method=method, dataset=ds, backbone="resnet50", epochs=100,
                                               num_workers=8, **LARGE[method], **own, **extra)
            presets[f"demo/{tag}"] = _make(method=method, **DEMO, **extra)
            presets[f"smoke/{tag}"] = _make(method=method, **SMOKE, **extra)
    presets.update(_released())
    for method in ("mocov1", "mocov2"):  # Table 7: 200-epoch ImageNet pre-training (Sec 4.4)
        for hal in (False, True):
            tag = f"{method}-hal" if hal else method
            presets[f"{tag}-imagenet-200ep"] = _make(
                method=method, dataset="imagenet", backbone="resnet50", epochs=200, num_workers=8,
                output_dir="runs/pretrain/imagenet-200ep",  # beside, not over, the 100-epoch runs
                **LARGE[method], **(HALLUCINATED if hal else {}))
    # the detection smoke chain (transfer/): a full-width ResNet-50 (ImageNet stem, converts to
    # detectron2) pre-trained for a few steps on grey Fashion-MNIST; conv1 takes 1 channel.
    presets["smoke/mocov2-hal-r50"] = _make(
        method="mocov2", **dict(SMOKE, backbone="resnet50", width=64, epochs=1, train_subset=64,
                                batch_size=32, queue_size=64, knn_every=0, metrics_batch=64,
                                eval_train_subset=256, eval_test_subset=128), **HALLUCINATED)
    return presets


def _released() -> dict[str, TrainConfig]:
    """``released/<method>[-hal]-<dataset>``: one preset per released config file (``source``)."""
    out: dict[str, TrainConfig] = {}

    def add(name: str, repo: str, path: str, inferred: bool = False, **keys) -> None:
        source = f"{'inferred from ' if inferred else ''}{repo}:{path}"
        out[f"released/{name}"] = _make(source=source, **keys)

    for ds in SMALL_DATASETS:
        d = f"configs/small/{CONFIG_DIRS[ds]}"
        hal = dict(RELEASED_HAL, crop_p=RELEASED_P.get(ds, 0.5))
        add(f"moco-{ds}", AUTHORS_REPO, f"{d}/moco_rcrop.py", **{
            **RELEASED_SMALL, "dataset": ds, "method": "mocov1", "proj_layers": RELEASED_MOCO_BASELINE_HEAD.get(ds, 1),
            "temperature": 0.2, "batch_size": 504, "queue_size": 65520})
        add(f"moco-hal-{ds}", AUTHORS_REPO, f"{d}/moco_center_hallucinate.py", **{
            **RELEASED_SMALL, **hal, "dataset": ds, "method": "mocov2", "proj_layers": 2, "temperature": 0.2,
            "moco_enqueue_twice": True})
        for name, keys in (("simclr", RELEASED_SIMCLR), ("simsiam", RELEASED_SIMSIAM)):
            if ds not in RELEASED_SMALL_DATASETS[name]:
                continue
            # the baseline forwards both views in one call (ContrastiveCrop); the Hallucinator runs
            # one per view and one joint NT-Xent over [q; q_hat] vs [k; k] (authors' DDP_simclr.py)
            base_extra = dict(simclr_forward="joint") if name == "simclr" else {}
            hal_extra = dict(fuse_pairs=True) if name == "simclr" else dict(train_hallucinator=False)  # the released bug
            add(f"{name}-{ds}", CC_REPO, f"{d}/{name}_rcrop.py", **{**RELEASED_SMALL, **keys, **base_extra, "dataset": ds})
            add(f"{name}-hal-{ds}", CC_REPO, f"{d}/{name}_ccrop.py", inferred=True,
                **{**RELEASED_SMALL, **keys, **hal, **hal_extra, "dataset": ds})
    for (method, hal, ds), keys in RELEASED_LARGE_CONFIGS.items():
        stem = "center_hallucinate" if hal else "rcrop"
        extra = dict(RELEASED_LARGE_HAL, crop_warmup_epochs=RELEASED_CROP_WARMUP[ds]) if hal else {}
        add(f"{method}{'-hal' if hal else ''}-{ds}", AUTHORS_REPO, f"configs/{CONFIG_DIRS[ds]}/{method}_{stem}.py",
            **{**RELEASED_LARGE, **keys, **extra, "method": method, "dataset": ds})
    return out


PRESETS: dict[str, TrainConfig] = _build()


def load_config(name_or_path: str, overrides: list[str] | None = None) -> TrainConfig:
    """A preset name or a YAML file of keys, then ``key=value`` overrides."""
    if name_or_path in PRESETS:
        base = PRESETS[name_or_path]
    elif Path(name_or_path).is_file():
        data = read_yaml(Path(name_or_path))
        preset = data.pop("preset", None)
        if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
            raise ConfigError(f"{name_or_path}: unknown preset {preset!r}; see --list-presets")
        base = PRESETS[preset] if preset else TrainConfig()
        base = apply_overrides(base, data)
    else:
        close = [p for p in PRESETS if name_or_path in p][:10]
        raise ConfigError(f"{name_or_path!r} is neither a preset nor a YAML file"
                          + (f"; similar presets: {close}" if close else "; see --list-presets"))
    return apply_overrides(base, dict(parse_override(o) for o in overrides or []))
