"""The training data path: epoch-seeded index order and augmentations, on CPU workers or batched
on the device. Every random draw is a function of (seed, epoch, position), so a run resumed
mid-epoch sees exactly the samples and augmentations the uninterrupted run would have.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ..augmentations import AugmentConfig, Normalize, TwoViews, recipe
from ..data import DATASETS, InMemoryImageDataset
from ..data.splits import load_split, subset


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style), stable across processes and runs."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2))) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class EpochIndexSampler(Sampler[int]):
    """This rank's indices for one epoch (DistributedSampler order), from step ``start_step`` on.

    Yields ``epoch * N + index`` so the dataset wrapper (even in persistent workers) knows the
    epoch for its per-sample seed.
    """

    def __init__(self, n: int, local_batch: int, seed: int, rank: int, world: int) -> None:
        self.n, self.local_batch = n, local_batch
        self.base = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.epoch, self.start_step = 0, 0

    @property
    def steps_per_epoch(self) -> int:
        return len(self.base) // self.local_batch

    def set_position(self, epoch: int, start_step: int) -> None:
        self.epoch, self.start_step = epoch, start_step
        self.base.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        order = list(self.base)[self.start_step * self.local_batch: self.steps_per_epoch * self.local_batch]
        return iter([self.epoch * self.n + i for i in order])

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.local_batch


class SeededTwoViews(Dataset):
    """Two augmented uint8 views of item ``i``, seeded by (seed, epoch, i); epochs before
    ``warmup_epochs`` use ``warmup_views`` (the plain crop of the released ImageNet recipe)."""

    def __init__(self, base: Dataset, views: TwoViews, seed: int, warmup_views: Optional[TwoViews] = None,
                 warmup_epochs: int = 0) -> None:
        self.base, self.views, self.seed, self.n = base, views, seed, len(base)
        self.warmup_views, self.warmup_epochs = warmup_views or views, warmup_epochs

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, code: int):
        epoch, index = divmod(code, self.n)
        img, label = self.base[index]
        v1, v2 = (self.warmup_views if epoch < self.warmup_epochs else self.views)(
            img, random.Random(mix_seed(self.seed, epoch, index)))
        return v1, v2, label


def augment_config(cfg) -> AugmentConfig:
    info = DATASETS[cfg.dataset]
    return recipe(cfg.augment, size=cfg.image_size or info.image_size, crop_p=cfg.crop_p,
                  beta_alpha=cfg.beta_alpha, center_crop_views=cfg.center_crop_views,
                  crop_placement=cfg.crop_placement)


def warmup_augment_config(cfg) -> AugmentConfig:
    """The augmentation of the first ``crop_warmup_epochs`` epochs: no center-suppressed crop."""
    return dataclasses.replace(augment_config(cfg), crop_p=None)


class TrainData:
    """Builds the batches of one epoch: ``(x1, x2)`` float, normalised, on ``device``."""

    def __init__(self, cfg, device: torch.device, rank: int, world: int) -> None:
        info = DATASETS[cfg.dataset]
        split = cfg.train_split or info.pretrain_split
        self.dataset = subset(load_split(cfg, split), cfg.train_subset)
        if cfg.batch_size % world:
            raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the {world} processes")
        self.local_batch = cfg.batch_size // world
        if len(self.dataset) < cfg.batch_size:
            raise ValueError(f"{cfg.dataset} ({split}) has {len(self.dataset)} images, fewer than one batch of {cfg.batch_size}")
        self.device, self.seed, self.cfg = device, cfg.seed, cfg
        self.aug = augment_config(cfg)
        self.normalize = Normalize(info.mean, info.std).to(device)
        if cfg.augment_on == "auto":
            raise ValueError("augment_on=auto: resolve the config first (training/device_settings.resolve)")
        self.on_device = cfg.augment_on == "device"
        if self.on_device:
            if not isinstance(self.dataset, InMemoryImageDataset):
                raise ValueError(f"augment_on=device needs an in-memory dataset; {cfg.dataset} is read from files")
            from ..batch_augment import BatchTwoViews
            self.batch_views = BatchTwoViews(self.aug)
            self.warmup_batch_views = BatchTwoViews(warmup_augment_config(cfg))
            self.images = self.dataset.images.to(device)  # the whole dataset, uint8, on the device
            self.generator = torch.Generator(device=device)  # reseeded per step: resume needs no RNG state
        self.sampler = EpochIndexSampler(len(self.dataset), self.local_batch, cfg.seed, rank, world)
        if not self.on_device:  # per-sample augmentation in DataLoader workers
            workers = cfg.num_workers
            # The loader's own generator: a new iterator (each epoch, and on resume mid-epoch) must not
            # draw from the global RNG, whose state the checkpoint restores (shuffle-BN's permutation).
            loader_rng = torch.Generator().manual_seed(cfg.seed)
            views = SeededTwoViews(self.dataset, TwoViews(self.aug), cfg.seed,
                                   TwoViews(warmup_augment_config(cfg)), cfg.crop_warmup_epochs)
            self.loader = DataLoader(views,
                                     batch_size=self.local_batch, sampler=self.sampler, num_workers=workers,
                                     pin_memory=device.type == "cuda", drop_last=True,
                                     persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                                     generator=loader_rng)
        self.max_steps = cfg.max_steps_per_epoch

    @property
    def steps_per_epoch(self) -> int:
        s = self.sampler.steps_per_epoch
        return min(s, self.max_steps) if self.max_steps else s

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yields the (x1, x2) batches of ``epoch`` from ``start_step`` on."""
        self.sampler.set_position(epoch, start_step)
        if self.on_device:
            order = torch.tensor(list(self.sampler.base), device=self.device)
            for step in range(start_step, self.steps_per_epoch):
                idx = order[step * self.local_batch:(step + 1) * self.local_batch]
                self.generator.manual_seed(mix_seed(self.seed, epoch, step, self.sampler.base.rank))
                views = self.warmup_batch_views if epoch < self.cfg.crop_warmup_epochs else self.batch_views
                x1, x2 = views(self.images[idx], self.generator)
                yield self.normalize(x1), self.normalize(x2)
            return
        for step, (x1, x2, _) in enumerate(self.loader, start=start_step):
            if step >= self.steps_per_epoch:
                break
            x1, x2 = x1.to(self.device, non_blocking=True), x2.to(self.device, non_blocking=True)
            yield self.normalize(x1), self.normalize(x2)
