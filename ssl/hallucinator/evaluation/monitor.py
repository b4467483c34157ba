"""Per-epoch diagnostics of a training encoder: uniformity G2 (Eq 6) on fixed test images, kNN top-1."""
from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import Dataset

from ..metrics import uniformity
from .batches import eval_batches
from .features import extract_features
from .knn import knn_top1


class Monitor:
    """G2 of the encoder's l2-normalised embeddings of the first ``metrics_batch`` test images, every
    epoch; weighted kNN top-1 of the backbone every ``knn_every`` epochs and at the last epoch.

    Both are skipped (None) when the dataset has no test split on this machine.
    """

    def __init__(self, cfg, test: Optional[Dataset], knn_train: Optional[Dataset]) -> None:
        """``test``: the held-out images (None: no diagnostics); ``knn_train``: the kNN memory bank."""
        self.cfg = cfg
        self.probe: Optional[torch.Tensor] = None
        self.knn_sets = (knn_train, test) if test is not None and knn_train is not None else None
        if test is None:
            return
        head = test.head(cfg.metrics_batch) if cfg.metrics_batch < len(test) else test
        self.probe = torch.cat([x for x, _ in eval_batches(head, cfg.dataset, torch.device("cpu"), cfg.image_size,
                                                           batch_size=len(head))])

    @torch.no_grad()
    def measure(self, encoder: torch.nn.Module, epoch: int, device: torch.device) -> dict[str, Optional[float]]:
        """``{"g2", "knn_top1"}`` after ``epoch`` completed epochs (None where not measured)."""
        out: dict[str, Optional[float]] = {"g2": None, "knn_top1": None}
        if self.probe is None:
            return out
        cfg = self.cfg
        was = encoder.training
        encoder.eval()
        x = self.probe.to(device)
        emb = torch.cat([encoder(x[i:i + 256]).float() for i in range(0, x.shape[0], 256)])
        encoder.train(was)
        out["g2"] = uniformity(emb).item()
        if self.knn_sets is not None and (epoch % cfg.knn_every == 0 or epoch == cfg.epochs):
            train, test = self.knn_sets
            ftr, ltr = extract_features(encoder.backbone, train, cfg.dataset, device, cfg.image_size)
            fte, lte = extract_features(encoder.backbone, test, cfg.dataset, device, cfg.image_size)
            out["knn_top1"] = knn_top1(ftr, ltr, fte, lte, k=cfg.knn_k, temperature=cfg.knn_temperature)
        return out
