"""The training configuration: one typed, flat dataclass, named presets, ``key=value`` overrides.

A run is ``preset (or YAML file) + overrides``. Every key has one default, here; presets only
list what differs. Unknown keys and values of the wrong type fail before any work is done.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional

import yaml

from .methods.factory import ModelConfig


@dataclass
class TrainConfig(ModelConfig):
    """All keys of a pretraining run (model keys come from ``ModelConfig``)."""

    # data
    dataset: str = "cifar10"               # cifar10 | cifar100 | stl10 | tiny_imagenet | imagenet | in200 | fashion_mnist
    data_root: Optional[str] = None        # local root; None = $DATA_ROOT/<dataset> (fashion_mnist: Debian path)
    train_split: Optional[str] = None      # None = the dataset's pretraining split
    train_subset: Optional[int] = None     # use only the first N training images (small profiles)
    image_size: Optional[int] = None       # None = the dataset's native size (224 for ImageNet)
    augment: str = "small"                 # augmentation recipe: small | mocov1 | mocov2 | simclr | simsiam | grey
    crop_p: Optional[float] = None         # center-crop ratio p (Eq 1); None = plain RandomResizedCrop
    beta_alpha: float = 0.6                # Beta(alpha, alpha) of the crop centre (paper 0.6; small-scale code 0.1)
    center_crop_views: str = "query"       # query (released code) | both (Eq 2)
    augment_on: str = "cpu"                # cpu (per-sample, DataLoader workers) | device (batched on the training device)
    num_workers: int = 4                   # DataLoader workers per process
    on_corrupt: str = "error"              # error | skip (count and skip undecodable images)
    # optimisation
    epochs: int = 500
    batch_size: int = 512                  # global batch (split over processes)
    lr: float = 0.5                        # peak learning rate for the global batch
    optimizer: str = "sgd"                 # sgd (LARS is not needed at these batch sizes)
    sgd_momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0             # linear warmup, then cosine to 0 (per iteration)
    precision: str = "fp32"                # fp32 | bf16 | fp16 (autocast; fp16 uses a grad scaler)
    channels_last: bool = False
    sync_bn: bool = False                  # SyncBatchNorm across processes
    # run, logging, evaluation
    output_dir: str = "runs/pretrain"
    run_name: Optional[str] = None         # None = derived from method/dataset/seed
    device: str = "auto"                   # auto | cpu | cuda
    threads: Optional[int] = None          # torch CPU threads
    max_steps_per_epoch: Optional[int] = None  # cap steps per epoch (smoke runs)
    knn_every: int = 1                     # kNN top-1 every N epochs (0 = never)
    knn_k: int = 200
    knn_temperature: float = 0.1
    knn_train_subset: Optional[int] = 10000  # memory-bank size for the per-epoch kNN
    eval_train_subset: Optional[int] = None  # evaluate.py: first N training images for the probes (None = all)
    eval_test_subset: Optional[int] = None   # evaluate.py: first N test images (None = all)
    metrics_batch: int = 1024              # fixed held-out images for G2 / similarity diagnostics
    diag_every: int = 50                   # step diagnostics (steps.jsonl) every N steps (0 = off)
    suite: str = ""                        # tags read by the benchmarks' aggregation
    profile: str = ""

    def validate(self) -> None:
        """Checks values that a type cannot express; raises ``ConfigError``."""
        choices = {"augment_on": ("cpu", "device"), "on_corrupt": ("error", "skip"),
                   "optimizer": ("sgd",), "precision": ("fp32", "bf16", "fp16"),
                   "device": ("auto", "cpu", "cuda"), "center_crop_views": ("query", "both")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}={getattr(self, key)!r} is not one of {allowed}")
        for key in ("epochs", "batch_size", "width"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used."""


def _hints() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Converts a YAML-parsed ``value`` to the annotated type, or raises ``ConfigError``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner)
    if origin is tuple:
        if isinstance(value, str):
            value = yaml.safe_load(f"[{value}]")
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key} expects {len(args)} comma-separated values, got {value!r}")
        return tuple(_coerce(key, v, a) for v, a in zip(value, args))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} expects true/false, got {value!r}")
    if hint in (int, float) and isinstance(value, str):  # YAML reads "1e-4" as a string
        try:
            value = hint(value)
        except ValueError:
            raise ConfigError(f"{key} expects {'an integer' if hint is int else 'a number'}, got {value!r}") from None
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} expects an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key} expects a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key} expects a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {hint}")


def apply_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of ``cfg`` with ``overrides`` type-checked and applied; unknown keys are refused."""
    hints = _hints()
    unknown = sorted(set(overrides) - set(hints))
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown}; valid keys: {', '.join(sorted(hints))}")
    values = {k: _coerce(k, v, hints[k]) for k, v in overrides.items()}
    out = dataclasses.replace(cfg, **values)
    out.validate()
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, YAML-parsed value): ``lr=0.1``, ``hallucinator=true``, ``crop_p=none``."""
    if "=" not in text:
        raise ConfigError(f"overrides look like key=value, got {text!r}")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(value, str) and value.lower() in ("none", "null"):
        value = None
    return key.strip(), value


def load_config(name_or_path: str, overrides: list[str] | None = None) -> TrainConfig:
    """A preset name or a YAML file of keys, then ``key=value`` overrides."""
    from .presets import PRESETS  # presets import this module

    if name_or_path in PRESETS:
        base = PRESETS[name_or_path]
    elif Path(name_or_path).is_file():
        data = yaml.safe_load(Path(name_or_path).read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{name_or_path}: expected a mapping of config keys")
        preset = data.pop("preset", None)
        base = PRESETS[preset] if preset else TrainConfig()
        base = apply_overrides(base, data)
    else:
        close = [p for p in PRESETS if name_or_path in p][:10]
        raise ConfigError(f"{name_or_path!r} is neither a preset nor a YAML file"
                          + (f"; similar presets: {close}" if close else "; see --list-presets"))
    return apply_overrides(base, dict(parse_override(o) for o in overrides or []))


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain-type dict (tuples as lists) for JSON and weights_only checkpoints."""
    return {f.name: list(v) if isinstance(v := getattr(cfg, f.name), tuple) else v for f in fields(cfg)}


def from_dict(data: dict[str, Any]) -> TrainConfig:
    return apply_overrides(TrainConfig(), data)


def describe_keys() -> str:
    """One line per key with its type and default (for --help)."""
    hints = _hints()
    lines = []
    for f in fields(TrainConfig):
        t = str(hints[f.name]).replace("typing.", "").replace("<class '", "").replace("'>", "")
        lines.append(f"  {f.name:<22} {t:<28} default: {f.default!r}")
    return "\n".join(lines)
