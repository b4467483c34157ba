"""Projector and predictor heads: stacks of Linear (+ BatchNorm) (+ ReLU) layers."""
from __future__ import annotations

from typing import Sequence

from torch import nn


def mlp(dims: Sequence[int], batch_norm: bool = False, last_batch_norm: bool = False,
        last_bn_affine: bool = True) -> nn.Sequential:
    """Linear layers ``dims[0] -> dims[1] -> ... -> dims[-1]`` with ReLU between them.

    Args:
        dims: layer widths, input first; ``len(dims) == 2`` gives a single linear layer.
        batch_norm: BatchNorm1d after every hidden Linear (SimCLR/SimSiam style).
        last_batch_norm: BatchNorm1d after the output Linear too (SimSiam's projector).
        last_bn_affine: whether that last BatchNorm has affine parameters.
    """
    if len(dims) < 2:
        raise ValueError(f"an MLP needs at least input and output widths, got {list(dims)}")
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        last = i == len(dims) - 2
        layers.append(nn.Linear(d_in, d_out, bias=not (batch_norm and (not last or last_batch_norm))))
        if not last:
            if batch_norm:
                layers.append(nn.BatchNorm1d(d_out))
            layers.append(nn.ReLU(inplace=True))
        elif last_batch_norm:
            layers.append(nn.BatchNorm1d(d_out, affine=last_bn_affine))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Backbone followed by a projector: ``x -> projector(backbone(x))`` (Fig 2's "encoder")."""

    def __init__(self, backbone: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    def forward(self, x):
        return self.projector(self.backbone(x))
