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
    is part of the state_dict, so a resumed run draws the same sequence.
  * q' is not detached (released code): gradients reach theta, the encoder through q, and the
    encoder through k when k carries gradient (SimCLR, SimSiam).
  * Widths: input 2*dim, hidden 2*dim, output dim -- the released 256->256->128 for MoCo's 128-d
    head and 1024->1024->512 for SimSiam's 512-d predictor output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .heads import mlp


@dataclass(frozen=True)
class HallucinatorPreset:
    """Named settings of the Hallucinator (see the module docstring for the sources)."""

    beta: tuple[float, float] = (0.0, 0.1)
    layers: int = 3
    per_sample: bool = False


HALLUCINATOR_PRESETS: dict[str, HallucinatorPreset] = {
    "paper": HallucinatorPreset(beta=(0.0, 0.1), layers=3),        # Sec 3.3 / 4.1, released code
    "table5": HallucinatorPreset(beta=(0.0, 1.0), layers=3),       # Table 5's "eventually set"
    "non-parametric": HallucinatorPreset(beta=(0.0, 0.1), layers=0),  # Table 6, n = 0
}


class Hallucinator(nn.Module):
    """Asymmetric feature extrapolation (Eq 3) followed by a learned n-layer MLP (Eq 4).

    Args:
        dim: feature width D of q and k.
        layers: n, the number of Linear layers of H_theta (0 = identity on q').
        hidden: hidden widths (an int for all, or a list of n-1 ints); default 2*dim.
        beta: (beta1, beta2), the range of the uniform lambda of Eq 3.
        per_sample: one lambda per row instead of one per call.
        seed: seed of the lambda generator (the same on every process).

    Shapes: ``forward(q: N x D, k: N x D) -> q_hat: N x D``. After a call, ``last_lambda`` holds
    the lambda(s) used, for logging.
    """

    def __init__(self, dim: int, layers: int = 3, hidden: Optional[int | Sequence[int]] = None,
                 beta: tuple[float, float] = (0.0, 0.1), per_sample: bool = False, seed: int = 0) -> None:
        super().__init__()
        if dim < 1 or layers < 0:
            raise ValueError(f"need dim >= 1 and layers >= 0, got dim={dim}, layers={layers}")
        if not beta[0] <= beta[1]:
            raise ValueError(f"beta range must satisfy beta1 <= beta2, got {beta}")
        if hidden is None or isinstance(hidden, int):
            hidden_dims = [hidden or 2 * dim] * max(layers - 1, 0)
        else:
            hidden_dims = list(hidden)
        if layers > 0 and len(hidden_dims) != layers - 1:
            raise ValueError(f"{layers} layers need {layers - 1} hidden widths, got {hidden_dims}")
        self.dim, self.layers, self.beta, self.per_sample = dim, layers, tuple(beta), per_sample
        self.net: nn.Module = mlp([2 * dim, *hidden_dims, dim]) if layers > 0 else nn.Identity()
        self._generator = torch.Generator().manual_seed(seed)
        self.last_lambda: Optional[torch.Tensor] = None

    @classmethod
    def from_preset(cls, name: str, dim: int, **overrides) -> "Hallucinator":
        """The Hallucinator of preset ``name``; keyword ``overrides`` set to None keep the preset's value."""
        if name not in HALLUCINATOR_PRESETS:
            raise ValueError(f"unknown Hallucinator preset {name!r}; choose one of {sorted(HALLUCINATOR_PRESETS)}")
        p = HALLUCINATOR_PRESETS[name]
        kw = dict(beta=p.beta, layers=p.layers, per_sample=p.per_sample)
        kw.update({k: v for k, v in overrides.items() if v is not None})
        if kw["beta"] is not None:
            kw["beta"] = tuple(kw["beta"])
        return cls(dim, **kw)

    def sample_lambda(self, n: int) -> torch.Tensor:
        """lambda ~ U(beta1, beta2): a scalar tensor, or ``n x 1`` when ``per_sample`` (CPU)."""
        shape = (n, 1) if self.per_sample else ()
        u = torch.rand(shape, generator=self._generator, dtype=torch.float64)
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

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        if q.shape != k.shape or q.shape[-1] != self.dim:
            raise ValueError(f"q and k must both be N x {self.dim}, got {tuple(q.shape)} and {tuple(k.shape)}")
        lam = self.sample_lambda(q.shape[0])
        self.last_lambda = lam.detach()
        q_prime = self.extrapolate(q, k, lam)                                  # N x D
        if self.layers == 0:
            return q_prime
        return self.net(torch.cat([q, q_prime], dim=1))                        # N x 2D -> N x D

    # The generator state travels in the state_dict so a resumed run draws the same lambdas.
    def get_extra_state(self) -> dict:
        return {"generator": self._generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self._generator.set_state(state["generator"])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, layers={self.layers}, beta={self.beta}, per_sample={self.per_sample}"


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
