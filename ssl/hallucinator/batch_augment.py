"""Batched on-device two-view augmentation, equivalent in distribution to ``augmentations.TwoViews``.

``BatchTwoViews(cfg)(images)`` maps a uint8 ``N x C x H x W`` batch (any device) to two uint8
``N x C x size x size`` views drawn from the same distribution as the per-sample CPU pipeline
(crop -> RandomApply(ColorJitter) -> RandomGrayscale -> RandomApply(GaussianBlur) -> flip). Every
op runs on the whole batch; per-sample randomness is expressed with masks and ``torch.where``.
Randomness comes from the ``torch.Generator`` passed in (on the batch's device), or else from the
device's global torch RNG; the training pipeline passes one seeded per step.

Approximations (all documented in the tests):

* crop + resize uses ``F.grid_sample`` (bilinear) on per-box affine grids whose sample coordinates
  are clamped to the box, which reproduces ``resized_crop`` (bilinear, align_corners=False) exactly
  along every axis that is upsampled -- always the case at 32 px from 32 px images.
  ``grid_sample`` rather than ``roi_align`` because roi_align clamps at the image border, not the
  box border (so it blends in pixels outside the crop), and cannot flip. Along downsampled axes
  torchvision's antialias (a triangle filter of half-width = the scale) is approximated by ``k``
  bilinear sub-samples per pixel and axis (``k = ceil(max(H, W) / size)``, at most 4) spread to
  match the triangle's variance, then averaged: within a few uint8 levels on smooth images.
* the CPU pipeline re-quantises to uint8 (truncating) after every op; here values stay float in
  [0, 255] (clamped after each colour op, as torchvision does) and are rounded once at the end.
  Individual ops therefore match torchvision to within 1-2 uint8 levels, not bit-exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from .augmentations import AugmentConfig, blur_kernel_size, center_suppressed_views, jitter_ranges
from .colour_ops import (JITTER_OPS, _per_sample, adjust_brightness, adjust_contrast, adjust_hue,  # noqa: F401
                         adjust_saturation, gaussian_blur, rgb_to_grayscale)
from .crops import RATIO, sample_crop_boxes

_MAX_SUPERSAMPLE = 4


def _sample_coords(start: torch.Tensor, length: torch.Tensor, size: int, k: int,
                   flip: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Source pixel-centre coordinates (``N x size*k``, clamped to the box) of ``k`` sub-samples per
    output pixel along one axis, and their weights: 1 inside the box, falling linearly to 0 one pixel
    outside it (the bilinear weight of the edge pixel that the clamped sub-sample reads)."""
    dev = start.device
    centre = ((torch.arange(size, device=dev, dtype=torch.float32) + 0.5) / size).repeat_interleave(k).expand(len(start), -1)
    if flip is not None:
        centre = torch.where(flip[:, None], 1.0 - centre, centre)
    coords = start[:, None] + centre * length[:, None] - 0.5  # align_corners=False: exact bilinear when k = 1
    if k > 1:  # sub-sample spread a with var(uniform k-grid of width a) + 1/6 = s^2 / 6 (antialias triangle)
        scale = length / size
        spread = torch.sqrt(2 * (scale ** 2 - 1).clamp_min(0) * k * k / (k * k - 1))  # 0 when upsampling
        sub = ((torch.arange(k, device=dev, dtype=torch.float32) + 0.5) / k - 0.5).repeat(size)
        coords = coords + spread[:, None] * sub
    clamped = torch.minimum(torch.maximum(coords, start[:, None]), (start + length - 1)[:, None])
    return clamped, (1 - (coords - clamped).abs()).clamp_min(0)


def resized_crop(images: torch.Tensor, boxes: torch.Tensor, size: int, flip: Optional[torch.Tensor] = None,
                 supersample: Optional[int] = None) -> torch.Tensor:
    """Crops every box and resizes it to ``size x size`` with one ``grid_sample`` call (bilinear).

    Sample coordinates are clamped to the box, as ``F.interpolate`` clamps at the crop border, so a
    box that is not larger than ``size`` gives exactly torchvision's bilinear ``resized_crop``. A box
    side ``s = side / size > 1`` times larger is supersampled: ``k`` bilinear sub-samples per output
    pixel and axis, spread so the effective filter has the variance of antialias's triangle of
    half-width ``s``, then averaged (``avg_pool2d``), down-weighting sub-samples past the box edge.

    Args:
        images: float ``N x C x H x W``.
        boxes: ``N x 4`` (top, left, height, width) in pixels, as from ``sample_crop_boxes``.
        size: output side.
        flip: optional bool ``N`` mask; flagged crops are mirrored horizontally (free: the grid is reversed).
        supersample: sub-samples per output pixel and axis; default ``ceil(max(H, W) / size)``
            clipped to [1, 4], i.e. 1 (plain bilinear) whenever the input is not larger than ``size``.

    Returns:
        float ``N x C x size x size``.
    """
    n, _, height, width = images.shape
    k = supersample or min(max(1, math.ceil(max(height, width) / size)), _MAX_SUPERSAMPLE)
    top, left, h, w = boxes.to(torch.float32).unbind(1)
    (ys, in_y), (xs, in_x) = _sample_coords(top, h, size, k, None), _sample_coords(left, w, size, k, flip)
    gy, gx = (2 * ys + 1) / height - 1, (2 * xs + 1) / width - 1  # align_corners=False normalisation
    grid = torch.stack((gx[:, None, :].expand(-1, size * k, -1), gy[:, :, None].expand(-1, -1, size * k)), dim=-1)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if k == 1:
        return out
    # weighted mean: antialias drops the pixels outside the box and renormalises its truncated filter
    weight = (in_y[:, :, None] * in_x[:, None, :]).unsqueeze(1)
    return F.avg_pool2d(out * weight, k) / F.avg_pool2d(weight, k).clamp_min(1e-6)




@dataclass
class ViewParams:
    """Per-sample random parameters of one view (all tensors of leading size ``N``, on the device).

    Attributes:
        boxes: ``N x 4`` long (top, left, h, w) from ``sample_crop_boxes``.
        jitter: bool, colour jitter applied.
        factors: ``N x 4`` float brightness, contrast, saturation, hue factors.
        order: ``N x 4`` long, a permutation of (0, 1, 2, 3) per sample: the jitter ops' order.
        gray, blur, flip: bool masks.
        sigma: ``N`` float blur sigma.
    """

    boxes: torch.Tensor
    jitter: torch.Tensor
    factors: torch.Tensor
    order: torch.Tensor
    gray: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor
    flip: torch.Tensor


class BatchView(torch.nn.Module):
    """One view's batched pipeline; ``center_suppressed`` picks the Sec 3.2 crop (``cfg.crop_p``)."""

    def __init__(self, cfg: AugmentConfig, center_suppressed: bool) -> None:
        super().__init__()
        self.cfg = cfg
        self.crop_p = cfg.crop_p if center_suppressed else None
        self.ranges = jitter_ranges(cfg)
        self.jitter_on = cfg.jitter_p > 0 and any(cfg.jitter)
        self._bounds: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _jitter_bounds(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """The jitter factors' (low, high) per op, built once per device (no host list per step)."""
        device = torch.device(device)
        if device not in self._bounds:
            self._bounds[device] = tuple(torch.tensor([r[i] for r in self.ranges], device=device) for i in (0, 1))
        return self._bounds[device]

    def sample_params(self, n: int, height: int, width: int, device: torch.device | str,
                      generator: Optional[torch.Generator] = None) -> ViewParams:
        """Draws one view's parameters for ``n`` images of ``height x width`` from ``generator``
        (None: the device's global RNG)."""
        cfg = self.cfg
        boxes = sample_crop_boxes(n, height, width, cfg.crop_scale, RATIO, self.crop_p, cfg.beta_alpha, device=device,
                                  placement=cfg.crop_placement, generator=generator)
        lo, hi = self._jitter_bounds(device)
        u = torch.rand(n, 9, device=device, generator=generator)
        order = torch.rand(n, 4, device=device, generator=generator).argsort(dim=1)
        return ViewParams(boxes=boxes, jitter=u[:, 0] < cfg.jitter_p, factors=lo + (hi - lo) * u[:, 1:5],
                          order=order, gray=u[:, 5] < cfg.gray_p,
                          blur=u[:, 6] < cfg.blur_p,
                          sigma=cfg.blur_sigma[0] + (cfg.blur_sigma[1] - cfg.blur_sigma[0]) * u[:, 7],
                          flip=u[:, 8] < cfg.flip_p)

    def apply(self, images: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """Applies given parameters to a uint8 ``N x C x H x W`` batch; returns uint8 ``N x C x size x size``."""
        cfg, channels = self.cfg, images.shape[1]
        x = resized_crop(images.to(torch.float32), params.boxes, cfg.size, flip=params.flip if cfg.flip_p > 0 else None)
        if self.jitter_on:
            # a torchvision op is skipped when its range is degenerate (factor 0 in cfg.jitter);
            # saturation / hue are identities on 1-channel images
            active = [j for j, x_j in enumerate(cfg.jitter) if x_j > 0 and (channels == 3 or j < 2)]
            for rnd in range(4):  # round r applies, per sample, the op order[:, r]
                for j in active:
                    sel = params.jitter & (params.order[:, rnd] == j)
                    x = torch.where(_per_sample(sel).bool(), JITTER_OPS[j](x, params.factors[:, j]), x)
        if cfg.gray_p > 0 and channels == 3:
            x = torch.where(_per_sample(params.gray).bool(), rgb_to_grayscale(x).expand_as(x), x)
        if cfg.blur_p > 0:
            x = torch.where(_per_sample(params.blur).bool(), gaussian_blur(x, blur_kernel_size(cfg.size), params.sigma), x)
        return x.round_().clamp_(0, 255).to(torch.uint8)

    def forward(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Samples parameters (from ``generator``, on the batch's device; None: the global RNG) and
        augments a uint8 ``N x C x H x W`` batch (1 or 3 channels)."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise TypeError(f"expected a uint8 N x C x H x W batch with C in (1, 3), got {images.dtype} "
                            f"{tuple(images.shape)}")
        n, _, height, width = images.shape
        return self.apply(images, self.sample_params(n, height, width, images.device, generator))


class BatchTwoViews(torch.nn.Module):
    """Batched ``TwoViews``: a uint8 ``N x C x H x W`` batch -> (query views, key views), on its device.

    The query view uses the center-suppressed crop when ``cfg.crop_p`` is set, the key view only when
    ``cfg.center_crop_views == "both"`` (as ``TwoViews``).
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        super().__init__()
        query_cc, key_cc = center_suppressed_views(cfg)
        self.query = BatchView(cfg, center_suppressed=query_cc)
        self.key = BatchView(cfg, center_suppressed=key_cc)

    def forward(self, images: torch.Tensor, generator: Optional[torch.Generator] = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views, the query's parameters drawn first, then the key's, from ``generator``."""
        return self.query(images, generator), self.key(images, generator)
