"""Weighted kNN classifier on l2-normalised features (Wu et al. 2018), as used to monitor SSL."""
from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_top1(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
             test_labels: torch.Tensor, k: int = 200, temperature: float = 0.1, chunk: int = 1024) -> float:
    """Top-1 accuracy (%) of a kNN vote weighted by ``exp(cos / T)`` over the ``k`` nearest.

    Unlabelled training items (label < 0) are ignored. Runs on the features' device.
    """
    keep = train_labels >= 0
    train_feats, train_labels = F.normalize(train_feats[keep].float(), dim=1), train_labels[keep]
    test_feats = F.normalize(test_feats.float(), dim=1)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    k = min(k, train_feats.shape[0])
    correct = 0
    for start in range(0, test_feats.shape[0], chunk):
        sim = test_feats[start:start + chunk] @ train_feats.T                 # B x Ntrain
        top_sim, top_idx = sim.topk(k, dim=1)                                 # B x k
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(sim.shape[0], num_classes, device=sim.device)
        votes.scatter_add_(1, train_labels[top_idx], weights)
        correct += (votes.argmax(1) == test_labels[start:start + chunk]).sum().item()
    return 100.0 * correct / test_feats.shape[0]
