"""The paper's linear-classification protocol (Sec 4.1) on a frozen backbone.

Frozen backbone in eval mode (BN statistics frozen), a linear classifier trained with SGD
(momentum 0.9, weight decay 0) for 100 epochs, lr 10 (ImageNet: 30) divided by 10 at epochs 60
and 80; training views: RandomResizedCrop + flip, test: the eval resize. The headline is the
FINAL-epoch top-1; the best epoch's top-1 (what the released code reports) is kept beside it.
Resumable: the classifier, optimiser and per-epoch accuracies are checkpointed every epoch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from tqdm import tqdm

from ..augmentations import Normalize
from ..data import DATASETS
from .. import checkpoint
from .batches import eval_batches


class _Augmented(Dataset):
    """The probe's training views: RandomResizedCrop + horizontal flip (MoCo's lincls)."""

    def __init__(self, base: Dataset, size: int) -> None:
        self.base = base
        self.tf = v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()])

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        img, label = self.base[i]
        return self.tf(img), label


def _state_fingerprint(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def linear_probe(backbone: nn.Module, feat_dim: int, train: Dataset, test: Dataset, dataset_name: str,
                 device: torch.device, work_dir: Path, epochs: int = 100, lr: float = 10.0,
                 milestones: tuple[int, ...] = (60, 80), batch_size: int = 512, num_workers: int = 4,
                 size: Optional[int] = None, seed: int = 0, show_progress: bool = True) -> dict[str, Any]:
    """Trains the linear classifier; returns {"top1", "top1_best", "best_epoch", "epochs", "history"}."""
    info = DATASETS[dataset_name]
    size = size or info.image_size
    norm = Normalize(info.mean, info.std).to(device)
    torch.manual_seed(seed)
    clf = nn.Linear(feat_dim, info.num_classes).to(device)
    clf.weight.data.normal_(0, 0.01)
    clf.bias.data.zero_()
    opt = torch.optim.SGD(clf.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma=0.1)
    ckpt = Path(work_dir) / "linear_probe.pt"
    history: list[float] = []
    start = 0
    if ckpt.exists():
        st = checkpoint.load(ckpt)
        clf.load_state_dict(st["classifier"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        history, start = list(st["history"]), st["epoch"]
        torch.set_rng_state(st["rng_cpu"])
    backbone.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    before = _state_fingerprint(backbone)
    labelled = [i for i, t in enumerate(train.targets.tolist()) if t >= 0]  # -1: STL-10's unlabeled images
    train_ds = torch.utils.data.Subset(train, labelled) if len(labelled) < len(train) else train
    loader = DataLoader(_Augmented(train_ds, size), batch_size=batch_size, shuffle=True, num_workers=num_workers,
                        drop_last=False, pin_memory=device.type == "cuda", persistent_workers=num_workers > 0)
    bar = tqdm(range(start, epochs), desc="linear probe", disable=not show_progress, dynamic_ncols=True)
    for epoch in bar:
        clf.train()
        for x, y in loader:
            x, y = norm(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)
            with torch.no_grad():
                f = backbone(x)
            loss = F.cross_entropy(clf(f), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        history.append(_evaluate(backbone, clf, test, dataset_name, size, device, batch_size, num_workers))
        bar.set_postfix(top1=f"{history[-1]:.2f}")
        checkpoint.save_atomic({"format": checkpoint.FORMAT, "classifier": clf.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": sched.state_dict(), "history": history, "epoch": epoch + 1,
                                "rng_cpu": torch.get_rng_state()}, ckpt)
    after = _state_fingerprint(backbone)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if changed:  # MoCo's lincls sanity check: probing must not touch the backbone
        raise RuntimeError(f"the backbone changed during linear probing: {changed[:5]}")
    best = max(range(len(history)), key=history.__getitem__)
    return {"top1": history[-1], "top1_best": history[best], "best_epoch": best + 1, "epochs": epochs,
            "lr": lr, "labels": "all", "history": history}


@torch.no_grad()
def _evaluate(backbone, clf, test, dataset_name, size, device, batch_size, num_workers) -> float:
    """Top-1 (%) of ``clf`` on the frozen backbone's features of ``test`` (the shared eval loop)."""
    clf.eval()
    correct = total = 0
    for x, y in eval_batches(test, dataset_name, device, size, batch_size, num_workers):
        correct += (clf(backbone(x)).argmax(1).cpu() == y).sum().item()
        total += len(y)
    return 100.0 * correct / total
