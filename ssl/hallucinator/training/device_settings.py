"""The device-dependent settings of a run, resolved once at run start: the one home of their "auto" rules.

Each of these config keys may be ``"auto"`` (the default) or an explicit value; ``resolve`` turns
a config into one whose values are all concrete, for the device the run trains on:

    key              auto on CUDA                                  auto on CPU
    precision        bf16 autocast (fp32 where bf16 is unsupported) fp32
    channels_last    true                                          false
    cudnn_benchmark  true                                          false (no cuDNN)
    augment_on       device for in-memory datasets, else cpu       cpu

``compile`` is a plain boolean (default false everywhere: its CPU effect is small, and it has not
been measured on a GPU; benchmarks/README.md). The trainer writes the resolved config to
config.json and checkpoints, and ``used_settings`` (requested and used value of each key) to
run.json and its banner.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..config import TrainConfig
from ..data import DATASETS

AUTO_KEYS = ("precision", "channels_last", "cudnn_benchmark", "augment_on")
RECORDED_KEYS = (*AUTO_KEYS, "compile")


def _auto(cfg: TrainConfig, key: str, device: torch.device) -> Any:
    cuda = device.type == "cuda"
    if key == "precision":
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if key == "augment_on":
        return "device" if cuda and DATASETS[cfg.dataset].in_memory else "cpu"
    return cuda  # channels_last, cudnn_benchmark


def resolve(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """A copy of ``cfg`` with every ``"auto"`` of ``AUTO_KEYS`` replaced by its value on ``device``."""
    values = {k: _auto(cfg, k, device) for k in AUTO_KEYS if getattr(cfg, k) == "auto"}
    out = dataclasses.replace(cfg, **values)
    out.validate()
    return out


def used_settings(requested: TrainConfig, used: TrainConfig) -> dict[str, dict[str, Any]]:
    """``{key: {"requested": ..., "used": ...}}`` for run.json."""
    return {k: {"requested": getattr(requested, k), "used": getattr(used, k)} for k in RECORDED_KEYS}


def describe(settings: dict[str, dict[str, Any]]) -> str:
    """One banner line: ``precision bf16 (auto), channels_last True (auto), ...``."""
    return ", ".join(f"{k} {v['used']}" + (" (auto)" if v["requested"] == "auto" else "")
                     for k, v in settings.items())


def apply_backend(cfg: TrainConfig) -> None:
    """Process-wide switches of a resolved config (``torch.backends.cudnn.benchmark``)."""
    if cfg.cudnn_benchmark == "auto":
        raise ValueError("resolve the config first (cudnn_benchmark=auto)")
    torch.backends.cudnn.benchmark = bool(cfg.cudnn_benchmark)
