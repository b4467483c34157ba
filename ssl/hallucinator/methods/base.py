"""The contract every method follows, and the one hook through which the Hallucinator composes.

``forward(x1, x2)`` takes the two augmented views (N x C x H x W, already normalised) and returns
a ``StepOutput``: the loss to back-propagate plus detached tensors for the diagnostics of Sec 3.4.
A method computes its pair (q, k) and calls ``self.contrast(q, k, loss_fn)``; that hook applies
the optional pair transform (symmetric extrapolation) and the optional Hallucinator, so neither
is ever re-implemented per method.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from ..hallucinator import Hallucinator


PairLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class StepOutput:
    """What one training step returns. Everything but ``loss`` is detached.

    Attributes:
        loss: scalar to back-propagate.
        q: N x D query-branch embedding of the original pair.
        k: N x D key-branch embedding of the original pair.
        q_hat: N x D hallucinated query (None without the Hallucinator).
        lam: the Hallucinator's lambda (scalar or N x 1), None without it.
        pair_losses: NOT detached ``(L(q, k), L(q_hat, k), w)`` with ``loss = (L + w L_hat) / (1 + w)``;
            set only while ``record_pair_losses`` is on (step diagnostics), else None.
    """

    loss: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor
    q_hat: Optional[torch.Tensor] = None
    lam: Optional[torch.Tensor] = None
    pair_losses: Optional[tuple[torch.Tensor, torch.Tensor, float]] = None


class SiameseMethod(nn.Module):
    """Base of the four methods: owns the optional Hallucinator / pair transform.

    Args:
        hallucinator: a module ``(q, k) -> q_hat`` (e.g. ``Hallucinator``), or None.
        pair_transform: a module ``(q, k) -> (q', k')`` replacing the pair before the loss
            (e.g. ``SymmetricExtrapolation``), or None.
        fuse_pairs: compute the two pairs' losses in one call on the concatenated rows. Exact
            (the mean of the two) for losses whose rows are independent (``rowwise_loss``);
            for a method with ``joint_pairs_released`` it is the released code's joint loss.
    """

    rowwise_loss: bool = False  # True when loss(cat([a, b]), cat([k, k])) == mean of the two
    joint_pairs_released: bool = False  # True when the released code computed the joint loss instead

    def __init__(self, hallucinator: Optional[Hallucinator] = None,
                 pair_transform: Optional[nn.Module] = None, fuse_pairs: bool = False) -> None:
        super().__init__()
        if hallucinator is not None and pair_transform is not None:
            raise ValueError("use either the Hallucinator or a pair transform, not both")
        if fuse_pairs and not (self.rowwise_loss or self.joint_pairs_released):
            raise ValueError(f"{type(self).__name__}'s loss couples rows; fuse_pairs is not exact for it")
        self.hallucinator = hallucinator
        self.pair_transform = pair_transform
        self.fuse_pairs = fuse_pairs
        self.record_pair_losses = False   # set by the step diagnostics for one step
        self._pair_losses: Optional[tuple[torch.Tensor, torch.Tensor, float]] = None

    def contrast(self, q: torch.Tensor, k: torch.Tensor, loss_fn: PairLoss, both: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Loss of the pair (q, k), plus the hallucinated pair's when a Hallucinator is set.

        Returns ``(loss, q_used, k_used, q_hat)``. With the Hallucinator the loss is
        ``(loss_fn(q, k) + w loss_fn(q_hat, k)) / (1 + w)`` with w the extra pair's weight
        (1 = Sec 3.1's average of the two pairs, the method's loss unchanged; a warm-up variant
        raises w from 0, where the loss is exactly the baseline's). ``both=True`` hallucinates
        the key too, ``k_hat = H(k, q)`` with its own lambda draw, and the second pair is
        ``(q_hat, k_hat)`` (the released SimSiam, whose loss is symmetric in its two branches).
        While ``record_pair_losses`` is on, the two pairs' losses are also computed separately for
        the diagnostics; the returned loss is the same expression as on any other step (with
        ``fuse_pairs`` the fused one), so recording never changes training. ``loss_fn`` must be
        free of side effects (InfoNCE and NT-Xent are; ``fuse_pairs`` is refused for SimSiam).
        """
        self._pair_losses = None
        if self.pair_transform is not None:
            q, k = self.pair_transform(q, k)
        if self.hallucinator is None:
            return loss_fn(q, k), q, k, None
        q_hat = self.hallucinator(q, k)                                        # N x D
        w = self.hallucinator.last_weight
        k2 = self.hallucinator(k, q) if both else k                            # N x D
        fused = self.fuse_pairs and w == 1.0
        pair = extra = None
        if self.record_pair_losses or not fused:
            pair, extra = loss_fn(q, k), loss_fn(q_hat, k2)
        if self.record_pair_losses:   # diagnostics read them; the training loss below is unchanged
            self._pair_losses = (pair, extra, w)
        if fused:
            return loss_fn(torch.cat([q, q_hat]), torch.cat([k, k2])), q, k, q_hat  # 2N rows
        return (pair + w * extra) / (1.0 + w), q, k, q_hat

    def optimizer_groups(self) -> list[dict]:
        """Parameter groups for the optimiser; a group with ``fix_lr=True`` keeps the base lr."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "fix_lr": False}]

    def output(self, loss: torch.Tensor, q: torch.Tensor, k: torch.Tensor,
               q_hat: Optional[torch.Tensor]) -> StepOutput:
        lam = None if self.hallucinator is None else self.hallucinator.last_lambda
        pair_losses, self._pair_losses = self._pair_losses, None   # the output holds the graph, not the module
        return StepOutput(loss=loss, q=q.detach(), k=k.detach(),
                          q_hat=None if q_hat is None else q_hat.detach(), lam=lam,
                          pair_losses=pair_losses)
