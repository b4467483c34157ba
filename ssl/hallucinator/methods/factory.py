"""Builds a method (backbone, heads, optional Hallucinator) from a typed ``ModelConfig``.

Each method file owns its construction (heads, defaults) in a ``build(cfg, backbone, extras)``
function; ``BUILDERS`` is the table of names. The Hallucinator comes from
``Hallucinator.from_preset``, the one way presets become modules.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Literal, Optional, get_args

from ..backbones import BACKBONES, build_backbone, zero_init_residual
from ..hallucinator import HALLUCINATOR_PRESETS, Hallucinator, SymmetricExtrapolation
from . import moco, simclr, simsiam
from .base import SiameseMethod

BUILDERS: dict[str, Callable[..., SiameseMethod]] = {
    "mocov1": moco.build, "mocov2": moco.build, "simclr": simclr.build, "simsiam": simsiam.build,
}

# Allowed values of the model's choice keys, each written once; the config loader enforces them.
MethodName = Literal[tuple(BUILDERS)]
BackboneName = Literal[BACKBONES]
HallucinatorPresetName = Literal[tuple(HALLUCINATOR_PRESETS)]
Placement = Literal[simsiam.PLACEMENTS]
HallucinateViews = Literal[simsiam.VIEWS]
SimCLRForward = Literal["per_view", "joint"]
Extrapolation = Literal["none", "symmetric"]
METHODS: tuple[str, ...] = get_args(MethodName)


@dataclass
class ModelConfig:
    """Model keys (None = the method's default for the backbone; see each method's ``build``)."""

    method: MethodName = "mocov2"
    backbone: BackboneName = "resnet18_cifar"
    width: int = 64                        # first-stage channels (64 = standard ResNet)
    in_channels: int = 3                   # 1 for grey images
    zero_init_residual: bool = False       # zero each residual branch's last BN weight (released SimSiam)
    dim: Optional[int] = None              # embedding width; 128 (SimSiam: 512 small, 2048 R50)
    proj_hidden: Optional[int] = None      # projector hidden width; backbone feature width
    proj_layers: Optional[int] = None      # projector Linear layers. SimSiam: 2 small, 3 R50 (released: 3);
    #                                      MoCo: 1 (v1, linear) or 2 (v2, MLP); None = the method's own
    proj_batch_norm: Optional[bool] = None  # SimCLR projector BN; None = true (released code: false)
    pred_hidden: Optional[int] = None      # SimSiam predictor hidden width; 128 small, 512 R50
    fix_pred_lr: bool = False              # SimSiam: the predictor keeps the base lr (released configs: true)
    temperature: Optional[float] = None    # 0.07 MoCoV1, 0.2 MoCoV2, 0.5 SimCLR
    base_temperature: Optional[float] = None  # SimCLR: NT-Xent x T/base_T (released: 0.07); None = plain
    simclr_forward: SimCLRForward = "per_view"  # SimCLR: per_view (one encoder call per view) or joint (both views in one)
    queue_size: int = 65536                # MoCo K
    moco_momentum: float = 0.999           # MoCo m
    moco_enqueue_twice: bool = False       # MoCo + Hallucinator: enqueue [k; k] (released code; needs K % 2N == 0 to align)
    shuffle_bn: bool = True                # MoCo shuffle-BN across processes (no-op, with a warning, in one)
    hallucinator: bool = False             # add the Hallucinator (Eq 3-4)
    hallucinator_preset: HallucinatorPresetName = "paper"  # paper: beta 0-0.1, n 3; table5: 0-1; non-parametric: n 0;
    #                                      stabilised: warmup, residual, normalized (hallucinator.py)
    hallucinator_warmup_steps: Optional[int] = None  # extra pair's loss-weight warm-up (steps); overrides the preset
    hallucinator_layers: Optional[int] = None   # n; overrides the preset
    beta_range: Optional[tuple[float, float]] = None  # (beta1, beta2); overrides the preset
    lambda_per_sample: bool = False        # one lambda per sample instead of per iteration
    lambda_per_rank: bool = False          # each process its own lambda (released: unseeded per rank); still seeded
    train_hallucinator: bool = True        # false = the released SimSiam bug: H left out of the optimizer
    hallucinate_at: Placement = "predictor"  # SimSiam: predictor (released code) or projector (Fig 2)
    hallucinate_views: HallucinateViews = "both"  # SimSiam: both (released: p1_hat and p2_hat) or query (p1_hat only)
    fuse_pairs: bool = False               # one loss call over [q; q_hat] vs [k; k]: MoCo exact; SimCLR released
    extrapolation: Extrapolation = "none"  # symmetric: Zhu et al. 2021 baseline
    seed: int = 0                          # seeds init and the lambda generator


def model_config_from(obj) -> ModelConfig:
    """The ``ModelConfig`` fields of any config object that has them (e.g. the training config)."""
    return ModelConfig(**{f.name: getattr(obj, f.name) for f in fields(ModelConfig)})


def build_method(cfg: ModelConfig) -> SiameseMethod:
    """Builds the method described by ``cfg`` with random weights."""
    if cfg.method not in BUILDERS:
        raise ValueError(f"unknown method {cfg.method!r}; choose one of {METHODS}")
    if cfg.extrapolation not in get_args(Extrapolation):
        raise ValueError(f"extrapolation must be one of {get_args(Extrapolation)}, got {cfg.extrapolation!r}")
    if cfg.simclr_forward not in get_args(SimCLRForward):
        raise ValueError(f"simclr_forward must be one of {get_args(SimCLRForward)}, got {cfg.simclr_forward!r}")
    backbone = build_backbone(cfg.backbone, width=cfg.width, in_channels=cfg.in_channels)
    if cfg.zero_init_residual:
        zero_init_residual(backbone)

    def extras(dim: int) -> dict:
        """The ``SiameseMethod`` keywords for a method whose pair is ``dim`` wide."""
        kw: dict = {"fuse_pairs": cfg.fuse_pairs}
        if cfg.hallucinator:
            kw["hallucinator"] = Hallucinator.from_preset(
                cfg.hallucinator_preset, dim, layers=cfg.hallucinator_layers, beta=cfg.beta_range,
                per_sample=cfg.lambda_per_sample or None, warmup_steps=cfg.hallucinator_warmup_steps,
                seed=cfg.seed, per_rank=cfg.lambda_per_rank)
            if not cfg.train_hallucinator:
                kw["hallucinator"].requires_grad_(False)
        if cfg.extrapolation == "symmetric":
            kw["pair_transform"] = SymmetricExtrapolation(seed=cfg.seed)
        return kw

    return BUILDERS[cfg.method](cfg, backbone, extras)
