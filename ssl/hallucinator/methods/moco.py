"""MoCo v1 / v2 (He et al. 2020; Chen et al. 2020): momentum encoder and a queue of keys."""
from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F

from .. import distributed
from ..heads import Encoder, mlp
from ..losses import info_nce
from .base import SiameseMethod, StepOutput


class MoCo(SiameseMethod):
    """MoCo with a FIFO queue in which each key is enqueued once (any batch size works).

    Args:
        encoder: backbone + projector of the query branch (deep-copied for the key branch).
        dim: embedding width D (the projector's output).
        queue_size: K, number of negative keys.
        momentum: m of the key-encoder update ``theta_k <- m theta_k + (1-m) theta_q``.
        temperature: T of InfoNCE (0.07 for v1, 0.2 for v2).
        enqueue_twice: with a Hallucinator, enqueue ``[k; k]`` as the released code did (each key
            twice, K/2 distinct negatives); default once.
        shuffle_bn: MoCo's shuffle-BN for the key branch. It needs several processes: in one
            process it is a no-op, and the first training step warns so.
        **kw: ``hallucinator`` / ``pair_transform`` / ``fuse_pairs`` of ``SiameseMethod``.

    With a Hallucinator, the released code's convention is kept: H sees the un-normalised query
    q and the normalised key k; InfoNCE normalises q_hat. Both pairs share one queue snapshot and
    k is enqueued once (the released code enqueued it twice, forcing K % 2N == 0).
    """

    rowwise_loss = True

    def __init__(self, encoder: Encoder, dim: int, queue_size: int = 65536, momentum: float = 0.999,
                 temperature: float = 0.2, shuffle_bn: bool = True, enqueue_twice: bool = False, **kw) -> None:
        super().__init__(**kw)
        if queue_size < 1 or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"need queue_size >= 1 and 0 <= momentum <= 1, got {queue_size}, {momentum}")
        self.encoder = encoder
        self.momentum_encoder = copy.deepcopy(encoder)
        for p in self.momentum_encoder.parameters():
            p.requires_grad_(False)
        self.momentum, self.temperature, self.shuffle_bn = momentum, temperature, shuffle_bn
        self.enqueue_twice = enqueue_twice and self.hallucinator is not None
        self._warned_shuffle_bn = False
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))  # K x D
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        for pq, pk in zip(self.encoder.parameters(), self.momentum_encoder.parameters()):
            pk.mul_(self.momentum).add_(pq.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Writes ``keys`` (B x D, already gathered) after the newest entry, wrapping around."""
        size = self.queue.shape[0]
        keys = keys[-size:].to(self.queue.dtype)
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[idx] = keys
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)

    def ordered_queue(self) -> torch.Tensor:
        """The queue from oldest to newest key (for inspection and tests)."""
        return torch.roll(self.queue, -int(self.queue_ptr), dims=0)

    @torch.no_grad()
    def _keys(self, x2: torch.Tensor) -> torch.Tensor:
        self._momentum_update()
        if self.shuffle_bn and self.training and not self._warned_shuffle_bn and distributed.world_size() == 1:
            self._warned_shuffle_bn = True
            warnings.warn("MoCo shuffle_bn=true has no effect in one process: the key encoder's BN sees the same "
                          "batch as the query encoder's (use torchrun with >= 2 processes for shuffle-BN, or set "
                          "shuffle_bn=false to silence this)", UserWarning, stacklevel=3)
        if self.shuffle_bn:
            x2, unshuffle = distributed.batch_shuffle(x2)
            k = distributed.batch_unshuffle(self.momentum_encoder(x2), unshuffle)
        else:
            k = self.momentum_encoder(x2)
        return F.normalize(k.float(), dim=1)                                   # N x D

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> StepOutput:
        q = self.encoder(x1)                                                   # N x D
        k = self._keys(x2)                                                     # N x D
        queue = self.queue.clone()
        loss, q, k_used, q_hat = self.contrast(q, k, lambda a, b: info_nce(a, b, queue, self.temperature))
        self.enqueue(distributed.gather(torch.cat([k, k]) if self.enqueue_twice else k))  # N (2N) x D
        return self.output(loss, q, k_used, q_hat)


DEFAULT_TEMPERATURE = {"mocov1": 0.07, "mocov2": 0.2}


DEFAULT_HEAD_LAYERS = {"mocov1": 1, "mocov2": 2}


def build(cfg, backbone: torch.nn.Module, extras) -> MoCo:
    """MoCo from a ``ModelConfig``: D 128; v1 a linear head and T 0.07, v2 an MLP head
    (Linear-ReLU-Linear) and T 0.2. ``proj_layers`` overrides the head's Linear count (the released
    MoCo v1 Hallucinator configs use the MLP head)."""
    dim, feat = cfg.dim or 128, backbone.out_dim
    layers = cfg.proj_layers or DEFAULT_HEAD_LAYERS[cfg.method]
    projector = mlp([feat, *[cfg.proj_hidden or feat] * (layers - 1), dim])
    return MoCo(Encoder(backbone, projector), dim, queue_size=cfg.queue_size, momentum=cfg.moco_momentum,
                temperature=cfg.temperature or DEFAULT_TEMPERATURE[cfg.method], shuffle_bn=cfg.shuffle_bn,
                enqueue_twice=cfg.moco_enqueue_twice, **extras(dim))
