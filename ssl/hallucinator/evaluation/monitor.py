"""Per-epoch diagnostics of a training encoder: uniformity G2 (Eq 6) on fixed test images, kNN top-1."""
from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import Dataset

from .. import precision
from ..data.splits import spread, subset
from ..metrics import uniformity
from .batches import eval_batches
from .features import extract_features
from .knn import knn_top1


class Monitor:
    """G2 of the encoder's l2-normalised embeddings of ``metrics_batch`` fixed test images
    (``data.splits.subset``: the first ones of an in-memory split, evenly spaced ones of a folder), every
    epoch; weighted kNN top-1 of the backbone every ``knn_every`` epochs and at the last epoch.

    The kNN memory bank is ``knn_train_subset`` training images and its queries ``knn_test_subset``
    test images, each evenly spread over the split; images are decoded by ``num_workers`` DataLoader
    workers, and features and the kNN vote are computed on the training device at the run's
    precision. Both are skipped (None) when the dataset has no test split on this machine, and on
    processes other than rank 0 (the trainer builds them without data).
    """

    def __init__(self, cfg, test: Optional[Dataset], knn_train: Optional[Dataset]) -> None:
        """``test``: the held-out images (None: no diagnostics); ``knn_train``: the training split."""
        self.cfg = cfg
        self.probe: Optional[torch.Tensor] = None
        self.knn_sets = None
        if test is None:
            return
        if knn_train is not None:
            self.knn_sets = (spread(knn_train, cfg.knn_train_subset), spread(test, cfg.knn_test_subset))
        fixed = subset(test, cfg.metrics_batch)
        self.probe = torch.cat([x for x, _ in eval_batches(fixed, cfg.dataset, torch.device("cpu"), cfg.image_size,
                                                           batch_size=256, num_workers=cfg.num_workers)])

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
        with precision.autocast(device, cfg.precision):
            emb = torch.cat([encoder(x[i:i + 256]).float() for i in range(0, x.shape[0], 256)])
        encoder.train(was)
        out["g2"] = uniformity(emb).item()
        if self.knn_sets is not None and (epoch % cfg.knn_every == 0 or epoch == cfg.epochs):
            kw = dict(size=cfg.image_size, num_workers=cfg.num_workers, precision=cfg.precision, on_device=True)
            ftr, ltr = extract_features(encoder.backbone, self.knn_sets[0], cfg.dataset, device, **kw)
            fte, lte = extract_features(encoder.backbone, self.knn_sets[1], cfg.dataset, device, **kw)
            out["knn_top1"] = knn_top1(ftr, ltr, fte, lte, k=cfg.knn_k, temperature=cfg.knn_temperature)
        return out
