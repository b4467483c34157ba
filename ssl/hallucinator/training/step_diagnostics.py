"""Step-level diagnostics of the Hallucinator's training dynamics, written to ``steps.jsonl``.

Every ``diag_every`` steps (config key; 0 = off) the trainer records one JSON line for the step
it is about to take, computed from that step's own batch (no extra forward pass, no RNG use):

    step               global step index (0-based: epoch * steps_per_epoch + step in epoch)
    epoch              epoch index (0-based) the step belongs to
    lr, loss           learning rate and the method's loss of the step
    q_norm, k_norm     mean l2 norm of the rows of q and k as the loss sees them
    q_hat_norm         mean l2 norm of the rows of q_hat (null without the Hallucinator)
    sim_qk, sim_qhat_k positive-pair cosine similarity S (Eq 5) of (q, k) and (q_hat, k)
    q_pairwise_cos     mean cosine between different rows of q in the batch (1 = collapsed)
    q_hat_pairwise_cos the same for q_hat (near 1: H outputs one vector for every sample)
    q_erank            effective rank exp(H(s / sum s)) of the l2-normalised q (s = singular values)
    lambda             the Hallucinator's lambda (mean over rows when drawn per sample)
    extra_weight       w, the extra pair's loss weight: loss = (L(q,k) + w L(q_hat,k)) / (1 + w)
    grad_norm_pair     || d L(q, k) / d theta_backbone ||  (query backbone, one process only)
    grad_norm_extra    || d L(q_hat, k) / d theta_backbone ||
    grad_share_extra   w g_extra / (g_pair + w g_extra): the extra pair's share of the backbone
                       gradient in the combined loss (0.5 = as much as the original pair)

The gradient norms come from ``torch.autograd.grad`` on the step's graph (retained), so they cost
two extra backward passes on recorded steps only, and leave ``.grad`` untouched. They are null
with several processes (DDP's reducer expects exactly one backward) and without the Hallucinator.
On a recorded step the two pairs' losses are computed separately for the record, in addition to
the training loss, which stays the one of every other step (with ``fuse_pairs`` the fused loss):
the weights after training are the same with diagnostics on or off. The file is truncated on resume to the steps before the
checkpoint, so a resumed run's file equals an uninterrupted run's.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

from .. import rundir
from ..methods.base import SiameseMethod, StepOutput
from ..metrics import positive_similarity

FILENAME = rundir.STEPS


@torch.no_grad()
def mean_pairwise_cosine(x: torch.Tensor) -> float:
    """Mean cosine similarity over ordered pairs i != j of the rows of ``x`` (N x D, N >= 2)."""
    z = F.normalize(x.float(), dim=1)
    n = z.shape[0]
    total = z.sum(0).pow(2).sum() - z.pow(2).sum()                  # sum_{i != j} z_i . z_j
    return float(total / (n * (n - 1)))


@torch.no_grad()
def effective_rank(x: torch.Tensor) -> float:
    """Effective rank (Roy & Vetterli 2007) of the l2-normalised rows of ``x``: 1 when collapsed."""
    s = torch.linalg.svdvals(F.normalize(x.float(), dim=1))
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def _grad_norm(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    sq = sum(g.float().pow(2).sum() for g in grads if g is not None)
    return math.sqrt(float(sq)) if torch.is_tensor(sq) else 0.0


def _round(v: Optional[float]) -> Optional[float]:
    return None if v is None or not math.isfinite(v) else float(f"{v:.6g}")


class StepDiagnostics:
    """Records ``steps.jsonl`` every ``every`` steps for a ``SiameseMethod`` (rank 0 writes).

    Usage in the loop: ``begin(global_step)`` before the forward pass, ``record(...)`` after it
    and before ``backward``.
    """

    def __init__(self, model: SiameseMethod, run_dir: Path, every: int, write: bool, grads: bool) -> None:
        self.model, self.every, self.write, self.grads = model, every, write, grads
        self.path = Path(run_dir) / FILENAME
        self.params = [p for p in model.encoder.backbone.parameters() if p.requires_grad]

    def due(self, global_step: int) -> bool:
        return self.every > 0 and global_step % self.every == 0

    def begin(self, global_step: int) -> None:
        """Asks the model to keep each pair's loss (graph attached) on a recorded step."""
        self.model.record_pair_losses = self.due(global_step) and self.grads

    def record(self, out: StepOutput, global_step: int, epoch: int, lr: float) -> Optional[dict[str, Any]]:
        """Computes and appends the record of a due step; returns it (None on other steps)."""
        if not self.due(global_step):
            return None
        self.model.record_pair_losses = False
        rec: dict[str, Any] = {"step": global_step, "epoch": epoch, "lr": lr, "loss": float(out.loss.detach()),
                               "q_norm": float(out.q.float().norm(dim=1).mean()),
                               "k_norm": float(out.k.float().norm(dim=1).mean()),
                               "q_hat_norm": None, "sim_qk": float(positive_similarity(out.q, out.k)),
                               "sim_qhat_k": None, "q_pairwise_cos": mean_pairwise_cosine(out.q),
                               "q_hat_pairwise_cos": None, "q_erank": effective_rank(out.q),
                               "lambda": None, "extra_weight": None, "grad_norm_pair": None,
                               "grad_norm_extra": None, "grad_share_extra": None}
        if out.q_hat is not None:
            rec.update(q_hat_norm=float(out.q_hat.float().norm(dim=1).mean()),
                       sim_qhat_k=float(positive_similarity(out.q_hat, out.k)),
                       q_hat_pairwise_cos=mean_pairwise_cosine(out.q_hat))
        if out.lam is not None:
            rec["lambda"] = float(out.lam.float().mean())
        if out.pair_losses is not None:
            pair, extra, w = out.pair_losses
            g_pair, g_extra = _grad_norm(pair, self.params), _grad_norm(extra, self.params)
            denom = g_pair + w * g_extra
            rec.update(extra_weight=w, grad_norm_pair=g_pair, grad_norm_extra=g_extra,
                       grad_share_extra=w * g_extra / denom if denom > 0 else None)
        rec = {k: _round(v) if isinstance(v, float) else v for k, v in rec.items()}
        if self.write:
            rundir.append_jsonl(self.path, rec)
        return rec

    def truncate(self, next_step: int) -> None:
        """Keeps the records of steps before ``next_step`` (on resume from a checkpoint)."""
        if self.write:
            rundir.keep_jsonl(self.path, "step", next_step - 1)


def read_steps(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's ``steps.jsonl`` (empty when absent); a line that is not JSON (torn,
    and kept in the file by ``rundir.keep_jsonl``) is passed over, the records after it are read."""
    path = Path(run_dir) / FILENAME
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
