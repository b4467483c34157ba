"""Two-view augmentation pipelines (uint8 in, uint8 out; normalisation happens on the device).

Recipes: ``small`` is the small-scale recipe of the paper's Table 1 (after ContrastiveCrop:
RandomResizedCrop(0.2, 1), color jitter (0.4, 0.4, 0.4, 0.1) p=0.8, grayscale p=0.2, flip; no
blur at 32 px); ``mocov1`` / ``mocov2`` / ``simclr`` / ``simsiam`` are the original methods'
ImageNet recipes (Table 2); ``grey`` is for 1-channel images (no saturation/hue, no grayscale).
The center-suppressed crop (Sec 3.2) replaces RandomResizedCrop on the query view (released code)
or on both views (Eq 2), see ``AugmentConfig.center_crop_views``.

``TwoViews`` is the per-sample pipeline (DataLoader workers). It draws every parameter of a sample
from one ``random.Random`` (seeded once per (seed, epoch, index) by the data path, ~20 us) and
computes in float with the batched pipeline's colour ops, rounding to uint8 once at the end, so
it and ``batch_augment.BatchTwoViews`` differ only in their random streams. ``view_transform`` is
the same recipe built from torchvision's transforms (global torch RNG, uint8 after every op): the
reference both are tested against, and the baseline of ``benchmarks.speed``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Optional

import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from . import colour_ops as ops
from .crops import RATIO, CenterSuppressedResizedCrop, check_crop_args, sample_crop_box


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of one view's augmentation."""

    size: int = 32
    crop_scale: tuple[float, float] = (0.2, 1.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    flip_p: float = 0.5
    crop_p: Optional[float] = None           # center-crop ratio p (Eq 1); None = plain crop
    beta_alpha: float = 0.6                  # Beta(alpha, alpha) of the crop centre (Eq 2)
    crop_placement: str = "released"         # released (ContrastiveCrop's corner rule) | centre-clamp
    center_crop_views: str = "query"         # query (released code) | both (Eq 2)


RECIPES = {
    "small": dict(crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.1), gray_p=0.2, blur_p=0.0),
    "mocov1": dict(crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.4), jitter_p=1.0, gray_p=0.2, blur_p=0.0),
    "mocov2": dict(crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.1), gray_p=0.2, blur_p=0.5),
    "simclr": dict(crop_scale=(0.08, 1.0), jitter=(0.8, 0.8, 0.8, 0.2), gray_p=0.2, blur_p=0.5),
    "simsiam": dict(crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.1), gray_p=0.2, blur_p=0.5),
    "grey": dict(crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.0, 0.0), gray_p=0.0, blur_p=0.0),
}


def recipe(name: str, **overrides) -> AugmentConfig:
    """An ``AugmentConfig`` from a named recipe with keyword overrides."""
    if name not in RECIPES:
        raise ValueError(f"unknown augmentation recipe {name!r}; choose one of {sorted(RECIPES)}")
    return replace(AugmentConfig(**RECIPES[name]), **overrides)


def blur_kernel_size(size: int) -> int:
    """An odd kernel of about 10 % of the image side (SimCLR's choice: 23 at 224 px)."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


def jitter_ranges(cfg: AugmentConfig) -> tuple[tuple[float, float], ...]:
    """ColorJitter's (brightness, contrast, saturation, hue) factor ranges for ``cfg.jitter``."""
    b, c, s, h = cfg.jitter
    return (max(0.0, 1 - b), 1 + b), (max(0.0, 1 - c), 1 + c), (max(0.0, 1 - s), 1 + s), (-h, h)


def view_transform(cfg: AugmentConfig, center_suppressed: bool) -> v2.Compose:
    """One view's pipeline from torchvision transforms (the reference; ``center_suppressed`` picks
    the Sec 3.2 crop for this view)."""
    crop = CenterSuppressedResizedCrop(cfg.size, cfg.crop_scale, p=cfg.crop_p if center_suppressed else None,
                                       alpha=cfg.beta_alpha, placement=cfg.crop_placement)
    ops: list = [crop]
    if cfg.jitter_p > 0 and any(cfg.jitter):
        ops.append(v2.RandomApply([v2.ColorJitter(*cfg.jitter)], p=cfg.jitter_p))
    if cfg.gray_p > 0:
        ops.append(v2.RandomGrayscale(p=cfg.gray_p))
    if cfg.blur_p > 0:
        ops.append(v2.RandomApply([v2.GaussianBlur(blur_kernel_size(cfg.size), cfg.blur_sigma)], p=cfg.blur_p))
    if cfg.flip_p > 0:
        ops.append(v2.RandomHorizontalFlip(p=cfg.flip_p))
    return v2.Compose(ops)


def center_suppressed_views(cfg: AugmentConfig) -> tuple[bool, bool]:
    """Which of (query view, key view) use the Sec 3.2 crop: the query whenever ``crop_p`` is
    set (released code), the key too when ``center_crop_views == "both"`` (Eq 2)."""
    if cfg.center_crop_views not in ("query", "both"):
        raise ValueError(f"center_crop_views must be 'query' or 'both', got {cfg.center_crop_views!r}")
    on = cfg.crop_p is not None
    return on, on and cfg.center_crop_views == "both"


class SampleView:
    """One view of one image: crop -> RandomApply(ColorJitter) -> RandomGrayscale ->
    RandomApply(GaussianBlur) -> flip, every parameter drawn from an explicit ``random.Random``."""

    def __init__(self, cfg: AugmentConfig, center_suppressed: bool) -> None:
        check_crop_args(cfg.crop_p, cfg.beta_alpha, cfg.crop_placement)
        self.cfg = cfg
        self.crop_p = cfg.crop_p if center_suppressed else None
        self.ranges = jitter_ranges(cfg)
        self.jitter_on = cfg.jitter_p > 0 and any(cfg.jitter)
        self.blur_size = blur_kernel_size(cfg.size)

    def __call__(self, img: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """uint8 ``C x H x W`` -> uint8 ``C x size x size`` (float in [0, 1] -> float, unrounded)."""
        cfg, size = self.cfg, self.cfg.size
        channels, height, width = img.shape
        top, left, h, w = sample_crop_box(rng, height, width, cfg.crop_scale, RATIO, self.crop_p, cfg.beta_alpha,
                                          placement=cfg.crop_placement)
        if h <= size and w <= size:  # upsampling: antialias is a no-op, plain bilinear on the float crop
            x = F.interpolate(img[None, :, top:top + h, left:left + w].float(), size=(size, size), mode="bilinear",
                              align_corners=False)
        else:  # downsampling: torchvision's antialiased resize (its fast uint8 kernel when uint8)
            x = TF.resized_crop(img, top, left, h, w, [size, size], antialias=True)[None].float()
        if img.is_floating_point():
            x = x * 255.0
        if self.jitter_on and rng.random() < cfg.jitter_p:
            for j in rng.sample(range(4), 4):  # ColorJitter: a random order, one factor per active op
                if cfg.jitter[j] > 0 and (channels == 3 or j < 2):
                    x = ops.JITTER_OPS[j](x, rng.uniform(*self.ranges[j]))
        if cfg.gray_p > 0 and rng.random() < cfg.gray_p and channels == 3:
            x = ops.rgb_to_grayscale(x).expand_as(x)
        if cfg.blur_p > 0 and rng.random() < cfg.blur_p:
            x = ops.gaussian_blur(x, self.blur_size, torch.tensor([rng.uniform(*cfg.blur_sigma)]))
        if cfg.flip_p > 0 and rng.random() < cfg.flip_p:
            x = x.flip(-1)
        if img.is_floating_point():
            return x[0] / 255.0
        return x[0].round().clamp_(0, 255).to(torch.uint8)


class TwoViews:
    """Maps one image to its (query view, key view) pair (per-sample pipeline, ``SampleView``)."""

    def __init__(self, cfg: AugmentConfig) -> None:
        query_cc, key_cc = center_suppressed_views(cfg)
        self.query = SampleView(cfg, center_suppressed=query_cc)
        self.key = SampleView(cfg, center_suppressed=key_cc)

    def __call__(self, img: torch.Tensor, rng: Optional[random.Random] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views of ``img`` from ``rng`` (default: one seeded from the torch RNG, so
        ``torch.manual_seed`` makes it repeatable)."""
        rng = rng if rng is not None else random.Random(int(torch.randint(2**62, (1,))))
        return self.query(img, rng), self.key(img, rng)


class Normalize(torch.nn.Module):
    """uint8 (or float in [0, 1]) batch -> float, mean/std normalised; runs on the device."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std
