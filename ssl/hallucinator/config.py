"""The training configuration: one typed, flat dataclass, named presets, ``key=value`` overrides.

A run is ``preset (or YAML file) + overrides``. Every key has one default, here; presets only
list what differs. Unknown keys, values of the wrong type, choices outside their ``Literal``
type and values out of range fail (as ``ConfigError``, one line) before any work is done.
YAML (files and ``key=value`` values) is read by ``_StrictLoader``: no aliases or anchors (a
few hundred bytes of nested aliases expand to gigabytes) and no duplicate keys.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from .augmentations import RECIPES
from .crops import PLACEMENTS
from .data import DATASETS
from .data.folders import OnCorrupt
from .methods.factory import ModelConfig

# Allowed values of the training choice keys, each written once (model keys: methods/factory.py).
DatasetName = Literal[tuple(DATASETS)]
AugmentRecipe = Literal[tuple(RECIPES)]
CenterCropViews = Literal["query", "both"]
AugmentOn = Literal["auto", "cpu", "device"]    # auto: training/device_settings.py
Optimizer = Literal["sgd"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
AutoBool = Literal["auto", True, False]
Device = Literal["auto", "cpu", "cuda"]
DistBackend = Literal["auto", "gloo", "nccl"]
CropPlacement = Literal[PLACEMENTS]
LrSchedule = Literal["cosine", "epoch_cosine", "multistep"]  # training/schedule.py builds each

# Range rules that a type cannot express.
_AT_LEAST_ONE = ("epochs", "batch_size", "width", "in_channels", "train_subset", "image_size", "knn_k",
                 "knn_train_subset", "knn_test_subset", "eval_train_subset", "eval_test_subset", "metrics_batch",
                 "queue_size", "dim", "proj_hidden", "pred_hidden", "max_steps_per_epoch", "threads", "max_image_pixels")
_AT_LEAST_ZERO = ("num_workers", "knn_every", "hallucinator_layers", "weight_decay", "warmup_epochs",
                  "crop_warmup_epochs", "diag_every", "hallucinator_warmup_steps")
_POSITIVE = ("lr", "beta_alpha", "temperature", "knn_temperature")


@dataclass
class TrainConfig(ModelConfig):
    """All keys of a pretraining run (model keys come from ``ModelConfig``)."""

    # data
    dataset: DatasetName = "cifar10"
    data_root: Optional[str] = None        # local dataset root; None only for fashion_mnist (Debian path);
                                           # benchmarks.run fills it from --data-root / $DATA_ROOT
    train_split: Optional[str] = None      # None = the dataset's pretraining split
    train_subset: Optional[int] = None     # N training images (small profiles); data.splits.subset: the
                                           # first N in memory, N evenly spaced of a class-sorted folder
    image_size: Optional[int] = None       # None = the dataset's native size (224 for ImageNet)
    augment: AugmentRecipe = "small"       # augmentation recipe
    crop_p: Optional[float] = None         # center-crop ratio p (Eq 1); None = plain RandomResizedCrop
    beta_alpha: float = 0.6                # Beta(alpha, alpha) of the crop centre (paper 0.6; small-scale code 0.1)
    center_crop_views: CenterCropViews = "query"  # query (released code) or both (Eq 2)
    crop_warmup_epochs: int = 0            # plain RandomResizedCrop for the first N epochs (released ImageNet: 20)
    crop_placement: CropPlacement = "released"  # released (ContrastiveCrop's corner rule) or centre-clamp (crops.py)
    augment_on: AugmentOn = "auto"         # cpu: per-sample, DataLoader workers; device: batched on the device;
                                           # auto: device on CUDA for in-memory datasets, else cpu
    num_workers: int = 4                   # DataLoader workers per process
    on_corrupt: OnCorrupt = "error"        # skip: count and skip undecodable images
    max_image_pixels: Optional[int] = None  # larger images are refused before decoding; None = Pillow's limit
    # optimisation
    epochs: int = 500
    batch_size: int = 512                  # global batch (split over processes)
    lr: float = 0.5                        # peak learning rate for the global batch
    optimizer: Optimizer = "sgd"           # training/step.py OPTIMIZERS builds each (LARS is not needed here)
    sgd_momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0             # linear warmup, then cosine to 0 (per iteration)
    lr_schedule: LrSchedule = "cosine"     # cosine (per iteration); epoch_cosine, multistep (per epoch, no warmup: released)
    lr_min_ratio: float = 0.0              # the cosine ends at lr_min_ratio x lr (released small-scale: 0.1)
    lr_milestones: tuple[int, ...] = (60, 80)  # multistep: lr x lr_decay from each of these (0-based) epochs on
    lr_decay: float = 0.1                  # multistep factor (released MoCo v1 ImageNet configs: 0, lr 0 from epoch 61)
    precision: Precision = "auto"          # bf16/fp16: autocast; fp16 uses a grad scaler; auto: bf16 on CUDA, fp32 on CPU
    channels_last: AutoBool = "auto"       # auto: true on CUDA, false on CPU
    cudnn_benchmark: AutoBool = "auto"     # torch.backends.cudnn.benchmark; auto: true on CUDA
    compile: bool = False                  # torch.compile each encoder of the method (training/step.py)
    sync_bn: bool = False                  # SyncBatchNorm across processes
    # run, logging, evaluation
    output_dir: str = "runs/pretrain"
    run_name: Optional[str] = None         # None = derived from method/dataset/seed
    device: Device = "auto"
    dist_backend: DistBackend = "auto"    # torchrun's process group; auto = nccl on CUDA, gloo on CPU
    threads: Optional[int] = None          # torch CPU threads
    max_steps_per_epoch: Optional[int] = None  # cap steps per epoch (smoke runs)
    knn_every: int = 1                     # kNN top-1 every N epochs (0 = never)
    knn_k: int = 200
    knn_temperature: float = 0.1
    knn_train_subset: Optional[int] = 10000  # per-epoch kNN: memory bank, evenly spread over the training split
    knn_test_subset: Optional[int] = 10000   # per-epoch kNN: queries, evenly spread over the test split
    eval_train_subset: Optional[int] = None  # evaluate.py: N training images for the probes (None = all;
                                             # chosen as train_subset's are)
    eval_test_subset: Optional[int] = None   # evaluate.py: N test images (None = all; as train_subset)
    metrics_batch: int = 1024              # fixed test images for the per-epoch G2 (as train_subset)
    tensorboard: bool = True               # also write TensorBoard event files (run_dir/tensorboard)
    diag_every: int = 50                   # step diagnostics (steps.jsonl) every N steps (0 = off)
    linear_drop_last: bool = False         # evaluate.py's linear probe drops the last incomplete batch (released: true)
    suite: str = ""                        # where the run sits in the benchmarks' tables (hallucinator.rundir)
    profile: str = ""
    row: str = ""                          # the row label of its suite's table (benchmarks/suites.py)
    source: str = ""                       # released/ presets: the released config file mirrored (docs/fidelity.md)

    def validate(self) -> None:
        """Checks every key's type and choice, then the ranges a type cannot express.

        Raises:
            ConfigError: The first bad key, named, with the rule it breaks.
        """
        hints = _hints()
        for f in fields(self):
            _coerce(f.name, getattr(self, f.name), hints[f.name])  # also configs built in code
        for f in fields(self):
            values = getattr(self, f.name)
            for v in values if isinstance(values, tuple) else (values,):
                if isinstance(v, float) and not math.isfinite(v):
                    raise ConfigError(f"{f.name} must be a finite number, got {v}")
        rules = [(_AT_LEAST_ONE, lambda v: v >= 1, ">= 1"), (_AT_LEAST_ZERO, lambda v: v >= 0, ">= 0"),
                 (_POSITIVE, lambda v: v > 0, "> 0")]
        for keys, ok, text in rules:
            for key in keys:
                value = getattr(self, key)
                if value is not None and not ok(value):
                    raise ConfigError(f"{key} must be {text}, got {value}")
        if self.crop_p is not None and not 0 < self.crop_p <= 1:
            raise ConfigError(f"crop_p must be in (0, 1] (or none), got {self.crop_p}")
        if not 0 <= self.sgd_momentum < 1:
            raise ConfigError(f"sgd_momentum must be in [0, 1), got {self.sgd_momentum}")
        if not 0 <= self.moco_momentum <= 1:
            raise ConfigError(f"moco_momentum must be in [0, 1], got {self.moco_momentum}")
        if self.beta_range is not None and not self.beta_range[0] <= self.beta_range[1]:
            raise ConfigError(f"beta_range must be (low, high) with low <= high, got {self.beta_range}")
        if self.lr_schedule != "cosine" and self.warmup_epochs:
            raise ConfigError(f"lr_schedule={self.lr_schedule} has no warmup; set warmup_epochs=0")
        if not 0.0 <= self.lr_decay <= 1.0:
            raise ConfigError(f"lr_decay must be in [0, 1], got {self.lr_decay}")
        if any(m < 1 for m in self.lr_milestones) or list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            raise ConfigError(f"lr_milestones must be increasing epochs >= 1, got {self.lr_milestones}")
        if not 0.0 <= self.lr_min_ratio <= 1.0:
            raise ConfigError(f"lr_min_ratio must be in [0, 1], got {self.lr_min_ratio}")
        if self.run_name is not None:
            check_run_name(self.run_name)
        if self.dist_backend == "nccl" and self.device == "cpu":
            raise ConfigError("dist_backend=nccl needs CUDA; with device=cpu use dist_backend=gloo (or auto)")
        channels = DATASETS[self.dataset].num_channels
        if self.in_channels != channels:
            raise ConfigError(f"in_channels={self.in_channels} but {self.dataset} images have {channels} "
                              f"channel(s); set in_channels={channels}")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used."""


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors, aliases and duplicate mapping keys."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "YAML anchors and aliases (&name, *name) are not "
                                              "allowed in configs; write each value out", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_StrictLoader)


def check_run_name(name: str) -> None:
    """Refuses a ``run_name`` that is not one plain path component inside ``output_dir``.

    Raises:
        ConfigError: empty, ``.``/``..`` or any other leading dot (a hidden folder the reports
            skip), a slash or backslash, a control character (NUL included), or over 255 bytes.
    """
    problem = ("is empty" if not name else
               "starts with '.'" if name.startswith(".") else
               "contains a slash or backslash" if "/" in name or "\\" in name else
               "contains a control character" if any(ord(c) < 32 or ord(c) == 127 for c in name) else
               "is longer than 255 bytes" if len(name.encode("utf-8", "surrogateescape")) > 255 else "")
    if problem:
        raise ConfigError(f"run_name={name!r} {problem}; it must be one plain folder name inside output_dir "
                          "(letters, digits, '-', '_', ...)")


def _hints() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Converts a YAML-parsed ``value`` to the annotated type, or raises ``ConfigError``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value is None and "none" in args:  # key=none parses as None
            return "none"
        if isinstance(value, (str, bool)) and any(value == a and type(value) is type(a) for a in args):
            return value
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(str(a).lower() for a in args)}")
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner)
    if origin is tuple:
        if isinstance(value, str):
            try:
                value = _load_yaml(f"[{value}]")
            except yaml.YAMLError as e:
                raise ConfigError(f"{key}: cannot parse {value!r}: {_one_line(e)}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and args[-1] is Ellipsis:
            value = [value]                                   # lr_milestones=60: one value
        if args[-1] is Ellipsis:  # tuple[X, ...]: any length
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{key} expects comma-separated values, got {value!r}")
            return tuple(_coerce(key, v, args[0]) for v in value)
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
    try:
        value = _load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"{key.strip()}: cannot parse {raw!r}: {_one_line(e)}") from None
    if isinstance(value, str) and value.lower() in ("none", "null"):
        value = None
    return key.strip(), value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's mapping of keys; unreadable, non-text or malformed files raise ``ConfigError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read as a text file ({_one_line(e)})") from None
    try:
        data = _load_yaml(text) or {}
    except yaml.YAMLError as e:  # malformed, an alias, a duplicate key, or a tag such as !!python/object
        raise ConfigError(f"{path}: not a valid YAML config: {_one_line(e)}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"{path}: expected a mapping of config keys, found {type(data).__name__}")
    return data


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
