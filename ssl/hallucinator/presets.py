"""Named configurations: the paper's Tables 1-2 (every method x with/without x dataset), the
authors' released recipes, and the CPU profiles (``demo``, ``smoke``) on the real Fashion-MNIST.

Names: ``<method>[-hal]-<dataset>`` (e.g. ``mocov2-hal-cifar10``, ``simsiam-in200``) for the
paper's recipes (the default family), ``released/<method>[-hal]-<dataset>`` for the released
code's recipe where it has one, and ``<profile>/<method>[-hal]`` for the CPU profiles. "-hal"
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

# The released recipe (authors' repository + the ContrastiveCrop configs it follows; DESIGN 3b):
# per-epoch cosine to 0.1 x lr (ImageNet: to 0), Beta alpha 0.1 (ImageNet 0.6), p 0.5 (Tiny
# ImageNet 0.7, ImageNet 0.6 = box 0.2-0.8, switched on after 20 plain-crop epochs).
RELEASED_SMALL = dict(SMALL, output_dir="runs/released", lr_schedule="epoch_cosine", lr_min_ratio=0.1, beta_alpha=0.1)
RELEASED_P = {"tiny_imagenet": 0.7}
RELEASED_LARGE = dict(backbone="resnet50", epochs=100, output_dir="runs/released", num_workers=8, lr_schedule="epoch_cosine",
                      lr_min_ratio=0.0, beta_alpha=0.6)
RELEASED_HAL_LARGE = dict(hallucinator=True, crop_p=0.6, crop_warmup_epochs=20, moco_enqueue_twice=True)
# (name, with Hallucinator) -> method keys. MoCo: the released small-scale code has T = 0.2 only;
# its Hallucinator config has an MLP head, batch 512, K 65536, its baseline a linear head, batch
# 504, K 65520 (not like-for-like; the paper presets pair MLP/512/65536 on both sides).
RELEASED_METHODS = {
    ("moco", False): dict(method="mocov1", temperature=0.2, batch_size=504, queue_size=65520),
    ("moco", True): dict(method="mocov2", temperature=0.2, moco_enqueue_twice=True),
    ("simclr", False): dict(method="simclr", base_temperature=0.07, proj_batch_norm=False, simclr_forward="joint"),
    ("simclr", True): dict(method="simclr", base_temperature=0.07, proj_batch_norm=False, fuse_pairs=True),
    ("simsiam", False): dict(method="simsiam", **SIMSIAM),
    ("simsiam", True): dict(method="simsiam", **SIMSIAM, train_hallucinator=False),  # the released bug
}
# Datasets with a released small-scale config (ContrastiveCrop's configs/small/*).
RELEASED_SMALL_DATASETS = {"moco": ("cifar10", "cifar100"), "simclr": ("cifar10", "cifar100", "stl10", "tiny_imagenet"),
                           "simsiam": ("cifar10", "cifar100")}

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
SMOKE = dict(DEMO, width=8, moco_momentum=0.999, epochs=2, train_subset=2048, batch_size=128, knn_train_subset=1024,
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
    """``released/<method>[-hal]-<dataset>``: the released code's recipe, exactly where it has one."""
    out: dict[str, TrainConfig] = {}
    for (name, hal), keys in RELEASED_METHODS.items():
        tag = f"released/{name}-hal" if hal else f"released/{name}"
        for ds in RELEASED_SMALL_DATASETS[name]:
            extra = dict(hallucinator=True, crop_p=RELEASED_P.get(ds, 0.5)) if hal else {}
            out[f"{tag}-{ds}"] = _make(dataset=ds, **{**RELEASED_SMALL, **keys, **extra})
    for method in ("mocov1", "mocov2"):  # ImageNet configs exist for MoCo only
        for hal in (False, True):
            for ds in LARGE_DATASETS:
                out[f"released/{method}{'-hal' if hal else ''}-{ds}"] = _make(
                    method=method, dataset=ds, **RELEASED_LARGE, **LARGE[method], **(RELEASED_HAL_LARGE if hal else {}))
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
