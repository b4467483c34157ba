"""Builds a method (backbone, heads, optional Hallucinator) from a typed ``ModelConfig``."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from torch import nn

from ..backbones import build_backbone
from ..hallucinator import HALLUCINATOR_PRESETS, Hallucinator, SymmetricExtrapolation
from ..heads import Encoder, mlp
from .base import SiameseMethod
from .moco import MoCo
from .simclr import SimCLR
from .simsiam import SimSiam

METHODS = ("mocov1", "mocov2", "simclr", "simsiam")
DEFAULT_TEMPERATURE = {"mocov1": 0.07, "mocov2": 0.2, "simclr": 0.5}


@dataclass
class ModelConfig:
    """Model keys (None = the method's default for the backbone; see ``build_method``)."""

    method: str = "mocov2"                 # mocov1 | mocov2 | simclr | simsiam
    backbone: str = "resnet18_cifar"       # resnet18_cifar | resnet18 | resnet50 | resnet50_cifar
    width: int = 64                        # first-stage channels (64 = standard ResNet)
    in_channels: int = 3                   # 1 for grey images
    dim: Optional[int] = None              # embedding width; 128 (SimSiam: 512 small, 2048 R50)
    proj_hidden: Optional[int] = None      # projector hidden width; backbone feature width
    pred_hidden: Optional[int] = None      # SimSiam predictor hidden width; 128 small, 512 R50
    temperature: Optional[float] = None    # 0.07 MoCoV1, 0.2 MoCoV2, 0.5 SimCLR
    queue_size: int = 65536                # MoCo K
    moco_momentum: float = 0.999           # MoCo m
    shuffle_bn: bool = True                # MoCo shuffle-BN across processes
    hallucinator: bool = False             # add the Hallucinator (Eq 3-4)
    hallucinator_preset: str = "paper"     # paper (beta 0-0.1, n 3) | table5 (0-1) | non-parametric (n 0) | warmup | residual | normalized
    hallucinator_warmup_steps: Optional[int] = None  # extra pair's loss-weight warm-up (steps); overrides the preset
    hallucinator_layers: Optional[int] = None   # n; overrides the preset
    beta_range: Optional[tuple[float, float]] = None  # (beta1, beta2); overrides the preset
    lambda_per_sample: bool = False        # one lambda per sample instead of per iteration
    hallucinate_at: str = "predictor"      # SimSiam: predictor (released code) | projector (Fig 2)
    fuse_pairs: bool = False               # MoCo: both pairs in one InfoNCE call (exact)
    extrapolation: str = "none"            # none | symmetric (Zhu et al. 2021 baseline)
    seed: int = 0                          # seeds init and the lambda generator


def model_config_from(obj) -> ModelConfig:
    """The ``ModelConfig`` fields of any config object that has them (e.g. the training config)."""
    return ModelConfig(**{f.name: getattr(obj, f.name) for f in fields(ModelConfig)})


def build_method(cfg: ModelConfig) -> SiameseMethod:
    """Builds the method described by ``cfg`` with random weights."""
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; choose one of {METHODS}")
    if cfg.extrapolation not in ("none", "symmetric"):
        raise ValueError(f"extrapolation must be 'none' or 'symmetric', got {cfg.extrapolation!r}")
    backbone = build_backbone(cfg.backbone, width=cfg.width, in_channels=cfg.in_channels)
    feat = backbone.out_dim
    large = cfg.backbone.startswith("resnet50")
    if cfg.method == "simsiam":
        dim = cfg.dim or (2048 if large else 512)
    else:
        dim = cfg.dim or 128
    hidden = cfg.proj_hidden or feat
    kw: dict = {}
    if cfg.hallucinator:
        preset = HALLUCINATOR_PRESETS.get(cfg.hallucinator_preset)
        if preset is None:
            raise ValueError(f"unknown hallucinator_preset {cfg.hallucinator_preset!r}; "
                             f"choose one of {sorted(HALLUCINATOR_PRESETS)}")
        overrides: dict = dict(per_sample=cfg.lambda_per_sample or preset.per_sample, seed=cfg.seed)
        if cfg.hallucinator_layers is not None:
            overrides["layers"] = cfg.hallucinator_layers
        if cfg.beta_range is not None:
            overrides["beta"] = tuple(cfg.beta_range)
        if cfg.hallucinator_warmup_steps is not None:
            overrides["warmup_steps"] = cfg.hallucinator_warmup_steps
        kw["hallucinator"] = Hallucinator.from_preset(cfg.hallucinator_preset, dim, **overrides)
    if cfg.extrapolation == "symmetric":
        kw["pair_transform"] = SymmetricExtrapolation(seed=cfg.seed)
    if cfg.method in ("mocov1", "mocov2"):
        projector = mlp([feat, dim]) if cfg.method == "mocov1" else mlp([feat, hidden, dim])
        return MoCo(Encoder(backbone, projector), dim, queue_size=cfg.queue_size, momentum=cfg.moco_momentum,
                    temperature=cfg.temperature or DEFAULT_TEMPERATURE[cfg.method],
                    shuffle_bn=cfg.shuffle_bn, fuse_pairs=cfg.fuse_pairs, **kw)
    if cfg.fuse_pairs:
        raise ValueError(f"fuse_pairs is exact only for MoCo's row-wise InfoNCE, not {cfg.method}")
    if cfg.method == "simclr":
        projector = mlp([feat, hidden, dim], batch_norm=True)
        return SimCLR(Encoder(backbone, projector), temperature=cfg.temperature or DEFAULT_TEMPERATURE["simclr"], **kw)
    proj_dims = [feat, hidden, hidden, dim] if large else [feat, hidden, dim]
    projector: nn.Module = mlp(proj_dims, batch_norm=True, last_batch_norm=True, last_bn_affine=False)
    predictor = mlp([dim, cfg.pred_hidden or (512 if large else 128), dim], batch_norm=True)
    return SimSiam(Encoder(backbone, projector), predictor, hallucinate_at=cfg.hallucinate_at, **kw)
