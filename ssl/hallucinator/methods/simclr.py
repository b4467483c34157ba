"""SimCLR (Chen et al. 2020): one shared encoder, NT-Xent over all other views as negatives."""
from __future__ import annotations

from ..heads import Encoder
from ..losses import nt_xent
from .base import SiameseMethod, StepOutput


class SimCLR(SiameseMethod):
    """SimCLR with negatives gathered across processes.

    Args:
        encoder: backbone + projector shared by both views.
        temperature: T of NT-Xent (0.5 in the small-scale recipe).
        **kw: ``hallucinator`` / ``pair_transform`` of ``SiameseMethod``.

    With a Hallucinator the extra pair (q_hat, k) gets its own NT-Xent over its own 2N views,
    averaged with the original pair's. (The released code instead ran one NT-Xent over
    [q; q_hat] vs [k; k], which makes the duplicated keys each other's negatives; we keep the
    method's loss unchanged per pair, as Sec 3.1 describes.)
    """

    def __init__(self, encoder: Encoder, temperature: float = 0.5, **kw) -> None:
        super().__init__(**kw)
        self.encoder, self.temperature = encoder, temperature

    def forward(self, x1, x2) -> StepOutput:
        z1, z2 = self.encoder(x1), self.encoder(x2)                           # N x D each
        loss, q, k, q_hat = self.contrast(z1, z2, lambda a, b: nt_xent(a, b, self.temperature))
        return self.output(loss, q, k, q_hat)
