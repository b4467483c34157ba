"""SimSiam (Chen & He 2021): predictor, stop-gradient, symmetric negative-cosine loss."""
from __future__ import annotations

from torch import nn

from ..heads import Encoder
from ..losses import negative_cosine
from .base import SiameseMethod, StepOutput

PLACEMENTS = ("predictor", "projector")


class SimSiam(SiameseMethod):
    """SimSiam; the Hallucinator sits after the predictor (released code) or after the projector.

    Args:
        encoder: backbone + projector (output z, D wide).
        predictor: the MLP h mapping z to p (D -> hidden -> D).
        hallucinate_at: "predictor" (default, the authors' released code: q = p1, k = p2) or
            "projector" (Fig 2's placement after the encoder: q = z1, k = z2, and the
            hallucinated z goes through the predictor).

    The loss of a pair is SimSiam's symmetric one, ``(D(p1, sg z2) + D(p2, sg z1)) / 2``; for the
    hallucinated pair q_hat takes p1's place, so the two pairs' losses are averaged as in Sec 3.1.
    """

    def __init__(self, encoder: Encoder, predictor: nn.Module, hallucinate_at: str = "predictor", **kw) -> None:
        super().__init__(**kw)
        if hallucinate_at not in PLACEMENTS:
            raise ValueError(f"hallucinate_at must be one of {PLACEMENTS}, got {hallucinate_at!r}")
        self.encoder, self.predictor, self.hallucinate_at = encoder, predictor, hallucinate_at

    def forward(self, x1, x2) -> StepOutput:
        z1, z2 = self.encoder(x1), self.encoder(x2)                           # N x D
        p1, p2 = self.predictor(z1), self.predictor(z2)                       # N x D
        if self.hallucinate_at == "predictor":
            def pair_loss(query, key):  # query plays p1, key plays p2
                return 0.5 * (negative_cosine(query, z2) + negative_cosine(key, z1))
            loss, q, k, q_hat = self.contrast(p1, p2, pair_loss)
        else:
            def pair_loss(query, key):  # query plays z1, key plays z2
                p_q = p1 if query is z1 else self.predictor(query)
                return 0.5 * (negative_cosine(p_q, key) + negative_cosine(p2, z1))
            loss, q, k, q_hat = self.contrast(z1, z2, pair_loss)
        return self.output(loss, q, k, q_hat)
