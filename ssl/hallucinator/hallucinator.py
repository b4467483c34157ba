"""The Hallucinator (Sec 3.3) and the symmetric-extrapolation baseline (Zhu et al., ICCV 2021).

The Hallucinator sits on ONE branch of a Siamese model. From a positive pair (q, k) it makes an
extra query
    q' = (1 + lambda) q - lambda k,      lambda ~ U(beta1, beta2)          (Eq 3)
    q_hat = H_theta([q, q'])                                              (Eq 4)
where H_theta is n Linear layers with ReLU between them (n = 0: H is the identity on q' and no
concatenation happens, the paper's "non-parametric" case). The method then applies its own loss
to (q_hat, k) and averages it with the loss of (q, k); see ``methods.base.SiameseMethod``.

Defaults and where the paper and the authors' released code differ:
  * beta range: Sec 3.3 and 4.1 state (0, 0.1), which is also what the released code samples;
    Table 5's text says they "eventually set (0.0, 1.0)". Default (0, 0.1) -- the range stated
    as the default twice and the one that produced the released numbers. Preset "table5" = (0, 1).
  * lambda is drawn once per iteration (released code); ``per_sample=True`` draws one per row.
    The draw comes from the module's own generator, seeded identically on every process and
    advanced once per call, so all ranks use the same lambda with no communication; its state
    is part of the state_dict, so a resumed run draws the same sequence. The released code drew
    lambda from each process's unseeded Python ``random``, so ranks differed (and reruns did);
    ``per_rank=True`` gives each rank its own lambda while staying seeded: every rank draws
    ``world_size`` values from the shared generator and uses the one at its rank, so the generator
    state stays equal on all ranks (a rank-0 checkpoint resumes every rank exactly) and one
    process draws what ``per_rank=False`` draws.
  * q' is not detached (released code): gradients reach theta, the encoder through q, and the
    encoder through k when k carries gradient (SimCLR, SimSiam).
  * Widths: input 2*dim, hidden 2*dim, output dim -- the released 256->256->128 for MoCo's 128-d
    head and 1024->1024->512 for SimSiam's 512-d predictor output.

Stabilised variants (named presets; not in the paper, the defaults stay paper-faithful). At
initialisation H_theta's output is mostly its bias, unrelated to q, and its gradient into the
backbone dominates the original pair's (measured in docs/results.md, "Why the Hallucinator loses
at short schedules"). Each variant removes one cause:
  * ``warmup``: the extra pair's loss weight w rises linearly from 0 to 1 over ``warmup_steps``
    training calls; the method loss becomes ``(L(q, k) + w L(q_hat, k)) / (1 + w)`` (w = 1: the
    paper's average; w = 0: exactly the baseline loss). See ``extra_pair_weight``.
  * ``residual``: ``q_hat = q' + H_theta([q, q'])`` with H's last Linear initialised to zero, so
    training starts from the pure extrapolation of Eq 3.
  * ``normalized``: q is l2-normalised before Eq 3 and H (MoCo feeds H the un-normalised q and the
    normalised k; this puts both on the unit sphere).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from .heads import mlp


@dataclass(frozen=True)
class HallucinatorPreset:
    """Named settings of the Hallucinator (see the module docstring for the sources)."""

    beta: tuple[float, float] = (0.0, 0.1)
    layers: int = 3
    per_sample: bool = False
    warmup_steps: int = 0        # loss-weight warm-up of the extra pair (0 = weight 1 throughout)
    residual: bool = False       # q_hat = q' + H([q, q']), H's last layer zero at init
    normalize: bool = False      # l2-normalise q before Eq 3 and H


HALLUCINATOR_PRESETS: dict[str, HallucinatorPreset] = {
    "paper": HallucinatorPreset(beta=(0.0, 0.1), layers=3),        # Sec 3.3 / 4.1, released code
    "table5": HallucinatorPreset(beta=(0.0, 1.0), layers=3),       # Table 5's "eventually set"
    "non-parametric": HallucinatorPreset(beta=(0.0, 0.1), layers=0),  # Table 6, n = 0
    # stabilised variants (see the module docstring); everything else as "paper"
    "warmup": HallucinatorPreset(warmup_steps=500),
    "residual": HallucinatorPreset(residual=True),
    "normalized": HallucinatorPreset(normalize=True),
}
STABILISED_PRESETS = ("warmup", "residual", "normalized")  # not in the paper: each is "paper" with one change


class Hallucinator(nn.Module):
    """Asymmetric feature extrapolation (Eq 3) followed by a learned n-layer MLP (Eq 4).

    Args:
        dim: feature width D of q and k.
        layers: n, the number of Linear layers of H_theta (0 = identity on q').
        hidden: hidden widths (an int for all, or a list of n-1 ints); default 2*dim.
        beta: (beta1, beta2), the range of the uniform lambda of Eq 3.
        per_sample: one lambda per row instead of one per call.
        seed: seed of the lambda generator (the same on every process).
        per_rank: each process uses its own draw (module docstring); a no-op in one process.
        warmup_steps: training calls over which the extra pair's loss weight rises 0 -> 1 (one call
            per step; SimSiam with ``hallucinate_views=both`` makes two).
        residual: ``q_hat = q' + H([q, q'])`` with H's last Linear zero at init (needs layers >= 1).
        normalize: l2-normalise q before Eq 3 and H.

    Shapes: ``forward(q: N x D, k: N x D) -> q_hat: N x D``. After a call, ``last_lambda`` holds
    the lambda(s) used and ``last_weight`` the extra pair's loss weight, for logging.
    """

    def __init__(self, dim: int, layers: int = 3, hidden: Optional[int | Sequence[int]] = None,
                 beta: tuple[float, float] = (0.0, 0.1), per_sample: bool = False, seed: int = 0,
                 warmup_steps: int = 0, residual: bool = False, normalize: bool = False,
                 per_rank: bool = False) -> None:
        super().__init__()
        if dim < 1 or layers < 0 or warmup_steps < 0:
            raise ValueError(f"need dim >= 1, layers >= 0 and warmup_steps >= 0, "
                             f"got dim={dim}, layers={layers}, warmup_steps={warmup_steps}")
        if residual and layers == 0:
            raise ValueError("residual=True needs layers >= 1 (with n = 0 there is no H to add)")
        if not beta[0] <= beta[1]:
            raise ValueError(f"beta range must satisfy beta1 <= beta2, got {beta}")
        if hidden is None or isinstance(hidden, int):
            hidden_dims = [hidden or 2 * dim] * max(layers - 1, 0)
        else:
            hidden_dims = list(hidden)
        if layers > 0 and len(hidden_dims) != layers - 1:
            raise ValueError(f"{layers} layers need {layers - 1} hidden widths, got {hidden_dims}")
        self.dim, self.layers, self.beta, self.per_sample = dim, layers, tuple(beta), per_sample
        self.warmup_steps, self.residual, self.normalize = warmup_steps, residual, normalize
        self.per_rank = per_rank
        self.net: nn.Module = mlp([2 * dim, *hidden_dims, dim]) if layers > 0 else nn.Identity()
        if residual:
            last = self.net[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self._generator = torch.Generator().manual_seed(seed)
        self._calls = 0                      # training calls so far (drives the warm-up)
        self.last_lambda: Optional[torch.Tensor] = None
        self.last_weight = 1.0

    @classmethod
    def from_preset(cls, name: str, dim: int, **overrides) -> "Hallucinator":
        """The Hallucinator of preset ``name``; keyword ``overrides`` set to None keep the preset's value."""
        if name not in HALLUCINATOR_PRESETS:
            raise ValueError(f"unknown Hallucinator preset {name!r}; choose one of {sorted(HALLUCINATOR_PRESETS)}")
        p = HALLUCINATOR_PRESETS[name]
        kw = dict(beta=p.beta, layers=p.layers, per_sample=p.per_sample, warmup_steps=p.warmup_steps,
                  residual=p.residual, normalize=p.normalize)
        kw.update({k: v for k, v in overrides.items() if v is not None})
        kw["beta"] = tuple(kw["beta"])
        return cls(dim, **kw)

    def sample_lambda(self, n: int) -> torch.Tensor:
        """lambda ~ U(beta1, beta2): a scalar tensor, or ``n x 1`` when ``per_sample`` (CPU)."""
        shape = (n, 1) if self.per_sample else ()
        world = distributed.world_size() if self.per_rank else 1
        u = torch.rand((world, *shape), generator=self._generator, dtype=torch.float64)  # world x shape
        u = u[distributed.rank() if world > 1 else 0]
        return (self.beta[0] + (self.beta[1] - self.beta[0]) * u).float()

    def extrapolate(self, q: torch.Tensor, k: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
        """Eq 3: ``q' = (1 + lambda) q - lambda k``.

        A scalar lambda is applied as a Python float: no host-to-device copy, so the step never
        waits for the GPU queue to drain.
        """
        if isinstance(lam, float) or lam.dim() == 0:
            lam = float(lam)
        else:
            lam = lam.to(device=q.device, dtype=q.dtype, non_blocking=True)
        return (1 + lam) * q - lam * k.to(q.dtype)

    def extra_pair_weight(self) -> float:
        """The extra pair's loss weight w for the current call: ``min(1, calls / warmup_steps)``."""
        return 1.0 if self.warmup_steps == 0 else min(1.0, self._calls / self.warmup_steps)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        if q.shape != k.shape or q.shape[-1] != self.dim:
            raise ValueError(f"q and k must both be N x {self.dim}, got {tuple(q.shape)} and {tuple(k.shape)}")
        self.last_weight = self.extra_pair_weight()
        if self.training:
            self._calls += 1
        lam = self.sample_lambda(q.shape[0])
        self.last_lambda = lam.detach()
        if self.normalize:
            q = F.normalize(q, dim=1)
        q_prime = self.extrapolate(q, k, lam)                                  # N x D
        if self.layers == 0:
            return q_prime
        h = self.net(torch.cat([q, q_prime], dim=1))                           # N x 2D -> N x D
        return q_prime + h if self.residual else h

    # The generator state and the warm-up position travel in the state_dict, so a resumed run
    # draws the same lambdas and weights.
    def get_extra_state(self) -> dict:
        return {"generator": self._generator.get_state(), "calls": self._calls}

    def set_extra_state(self, state: dict) -> None:
        self._generator.set_state(state["generator"])
        self._calls = int(state.get("calls", 0))

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, layers={self.layers}, beta={self.beta}, per_sample={self.per_sample}, "
                f"warmup_steps={self.warmup_steps}, residual={self.residual}, normalize={self.normalize}, "
                f"per_rank={self.per_rank}")


class SymmetricExtrapolation(nn.Module):
    """Positive extrapolation of Zhu et al. (ICCV 2021), the baseline of Fig 4.

    Replaces the pair (no extra pair): ``q_hat = l q + (1-l) k``, ``k_hat = l k + (1-l) q`` with
    ``l = 1 + Beta(a, a)`` (a = 2) drawn per sample, pushing both views apart. q and k are
    l2-normalised first, as in Zhu et al.: mixing an un-normalised MoCo query with a unit key
    would otherwise let the larger vector dominate both outputs.
    """

    def __init__(self, alpha: float = 2.0, seed: int = 0) -> None:
        super().__init__()
        self.alpha = alpha
        self._generator = torch.Generator().manual_seed(seed)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Beta(a, a) from two Gammas, drawn on the module's generator for reproducibility.
        shape = (q.shape[0], 1)
        ga = _gamma(self.alpha, shape, self._generator)
        gb = _gamma(self.alpha, shape, self._generator)
        lam = (1.0 + ga / (ga + gb)).to(device=q.device, dtype=q.dtype)
        q, k = F.normalize(q, dim=1), F.normalize(k.to(q.dtype), dim=1)
        return lam * q + (1 - lam) * k, lam * k + (1 - lam) * q

    def get_extra_state(self) -> dict:
        return {"generator": self._generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self._generator.set_state(state["generator"])


def _gamma(shape_k: float, size: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Gamma(shape_k, 1) samples for integer ``shape_k`` as a sum of exponentials."""
    if float(shape_k) != int(shape_k) or shape_k < 1:
        raise ValueError(f"symmetric extrapolation supports integer alpha >= 1, got {shape_k}")
    u = torch.rand((int(shape_k), *size), generator=generator, dtype=torch.float64)
    return (-torch.log1p(-u)).sum(0).float()
