"""SimSiam (Chen & He 2021): predictor, stop-gradient, symmetric negative-cosine loss."""
from __future__ import annotations

from torch import nn

from ..heads import Encoder, mlp
from ..losses import negative_cosine
from .base import SiameseMethod, StepOutput

PLACEMENTS = ("predictor", "projector")
VIEWS = ("both", "query")


class SimSiam(SiameseMethod):
    """SimSiam; the Hallucinator sits after the predictor (released code) or after the projector.

    Args:
        encoder: backbone + projector (output z, D wide).
        predictor: the MLP h mapping z to p (D -> hidden -> D).
        hallucinate_at: "predictor" (default, the released code: q = p1, k = p2) or "projector"
            (Fig 2's placement after the encoder: q = z1, k = z2; hallucinated z go through h).
        hallucinate_views: "both" (released code: p1_hat = H(p1, p2) and p2_hat = H(p2, p1), two
            lambda draws) or "query" (p1_hat only; the (p2, z1) term then counts twice).
        fix_pred_lr: the predictor keeps the base lr (SimSiam's recommendation, every released
            config); see ``optimizer_groups``.

    The loss of a pair (a, b) is SimSiam's symmetric ``(D(a, sg z2) + D(b, sg z1)) / 2`` with the
    targets always the encoder's z; the hook averages the original and hallucinated pairs (Sec 3.1).
    With both views, ``StepOutput.q_hat`` is p1_hat and ``lam`` the last draw (p2_hat's).
    """

    def __init__(self, encoder: Encoder, predictor: nn.Module, hallucinate_at: str = "predictor",
                 hallucinate_views: str = "both", fix_pred_lr: bool = False, **kw) -> None:
        super().__init__(**kw)
        if hallucinate_at not in PLACEMENTS or hallucinate_views not in VIEWS:
            raise ValueError(f"hallucinate_at must be one of {PLACEMENTS} and hallucinate_views one of {VIEWS}, "
                             f"got {hallucinate_at!r}, {hallucinate_views!r}")
        self.encoder, self.predictor, self.hallucinate_at = encoder, predictor, hallucinate_at
        self.both, self.fix_pred_lr = hallucinate_views == "both", fix_pred_lr

    def forward(self, x1, x2) -> StepOutput:
        z1, z2 = self.encoder(x1), self.encoder(x2)                           # N x D
        p1, p2 = self.predictor(z1), self.predictor(z2)                       # N x D
        at_predictor = self.hallucinate_at == "predictor"

        def predict(v, z, p):  # the prediction of a (possibly hallucinated) view
            return v if at_predictor else (p if v is z else self.predictor(v))

        def pair_loss(a, b):  # a plays view 1, b plays view 2
            return 0.5 * (negative_cosine(predict(a, z1, p1), z2) + negative_cosine(predict(b, z2, p2), z1))

        q, k = (p1, p2) if at_predictor else (z1, z2)
        loss, q, k, q_hat = self.contrast(q, k, pair_loss, both=self.both)
        return self.output(loss, q, k, q_hat)

    def optimizer_groups(self) -> list[dict]:
        if not self.fix_pred_lr:
            return super().optimizer_groups()
        pred = {id(p) for p in self.predictor.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in pred]
        return [{"params": rest, "fix_lr": False},
                {"params": [p for p in self.predictor.parameters() if p.requires_grad], "fix_lr": True}]


def build(cfg, backbone: nn.Module, extras) -> SimSiam:
    """SimSiam from a ``ModelConfig``: D 512 (ResNet-50: 2048); projector ``proj_layers`` Linear
    layers (default 2, ResNet-50 3; the released configs use 3) with BN; predictor D -> 128 -> D
    (ResNet-50: 512). ``extras(D)`` gives the Hallucinator / pair-transform keywords."""
    large = cfg.backbone.startswith("resnet50")
    dim = cfg.dim or (2048 if large else 512)
    hidden = cfg.proj_hidden or backbone.out_dim
    layers = cfg.proj_layers or (3 if large else 2)
    projector = mlp([backbone.out_dim, *[hidden] * (layers - 1), dim], batch_norm=True, last_batch_norm=True,
                    last_bn_affine=False)
    predictor = mlp([dim, cfg.pred_hidden or (512 if large else 128), dim], batch_norm=True)
    return SimSiam(Encoder(backbone, projector), predictor, hallucinate_at=cfg.hallucinate_at,
                   hallucinate_views=cfg.hallucinate_views, fix_pred_lr=cfg.fix_pred_lr, **extras(dim))
