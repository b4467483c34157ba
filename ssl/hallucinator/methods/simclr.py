"""SimCLR (Chen et al. 2020): one shared encoder, NT-Xent over all other views as negatives."""
from __future__ import annotations

import torch
from torch import nn

from ..heads import Encoder, mlp
from ..losses import nt_xent
from .base import SiameseMethod, StepOutput


class SimCLR(SiameseMethod):
    """SimCLR with negatives gathered across processes.

    Args:
        encoder: backbone + projector shared by both views.
        temperature: T of NT-Xent (0.5 in the small-scale recipe).
        base_temperature: None = plain NT-Xent; 0.07 = the released loss, scaled by T / 0.07.
        joint_forward: both views in one encoder call (BN statistics over 2N images, as the
            released baseline) instead of one call per view (the released Hallucinator runs).
        **kw: ``hallucinator`` / ``pair_transform`` / ``fuse_pairs`` of ``SiameseMethod``.

    With a Hallucinator the extra pair (q_hat, k) gets its own NT-Xent over its own 2N views,
    averaged with the original pair's (Sec 3.1). ``fuse_pairs=True`` is the released code's one
    NT-Xent over [q; q_hat] vs [k; k], where the duplicated keys are each other's negatives.
    """

    joint_pairs_released = True

    def __init__(self, encoder: Encoder, temperature: float = 0.5, base_temperature: float | None = None,
                 joint_forward: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.encoder, self.temperature, self.base_temperature = encoder, temperature, base_temperature
        self.joint_forward = joint_forward

    def forward(self, x1, x2) -> StepOutput:
        if self.joint_forward:
            z1, z2 = self.encoder(torch.cat([x1, x2])).chunk(2)               # 2N x D -> N x D each
        else:
            z1, z2 = self.encoder(x1), self.encoder(x2)                       # N x D each
        loss, q, k, q_hat = self.contrast(
            z1, z2, lambda a, b: nt_xent(a, b, self.temperature, base_temperature=self.base_temperature))
        return self.output(loss, q, k, q_hat)


def build(cfg, backbone: nn.Module, extras) -> SimCLR:
    """SimCLR from a ``ModelConfig``: D 128, T 0.5; projector Linear-BN-ReLU-Linear, or with
    ``proj_batch_norm=false`` the released Linear(bias)-ReLU-Linear(bias)."""
    dim = cfg.dim or 128
    bn = True if cfg.proj_batch_norm is None else cfg.proj_batch_norm
    projector = mlp([backbone.out_dim, cfg.proj_hidden or backbone.out_dim, dim], batch_norm=bn)
    return SimCLR(Encoder(backbone, projector), temperature=cfg.temperature or 0.5,
                  base_temperature=cfg.base_temperature, joint_forward=cfg.simclr_forward == "joint", **extras(dim))
