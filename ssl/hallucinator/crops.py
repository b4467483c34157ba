"""Center cropping + center-suppressed sampling (Sec 3.2, Eq 1-2; after ContrastiveCrop).

A RandomResizedCrop draws the crop's scale and aspect ratio as usual; its position is then drawn
so that the crop CENTRE lies in a fixed central box of side ratio ``p`` (Eq 1), Beta(alpha, alpha)
distributed per axis; alpha < 1 makes the density U-shaped, suppressing the middle (Eq 2).

Two placements (``PLACEMENTS``) realise "centre in the box, crop inside the image":

* ``"released"`` (default; the authors' ContrastiveCrop sampler): per axis, the top-left corner
  ``lo + int((hi - lo) * Beta(alpha, alpha))`` with ``lo = max(int(S * (1 - p) / 2) - s // 2, 0)``,
  ``hi = min(int(S * (1 + p) / 2) - s // 2, S - s)`` (image side ``S``, crop side ``s``): the corner
  is interpolated between its clamped extreme positions.
* ``"centre-clamp"`` (this project's earlier rule): the centre
  ``S * (1 - p) / 2 + S * p * Beta(alpha, alpha)``, then the crop shifted inside the image. At
  28 px, alpha 0.6, scale (0.2, 1) it makes about twice as many crops touch the border (~0.6 vs
  ~0.3), because every centre drawn outside the clamped range piles up on the border.

When 10 (scale, ratio) draws all fail, both fall back to torchvision's central crop, as the
released code does. ``sample_crop_boxes`` draws ``n`` boxes from a ``torch.Generator`` (the batched
on-device pipeline); ``sample_crop_box`` draws one from a ``random.Random`` (the per-sample
pipeline, where torch calls per scalar would cost more than the crop itself). Both follow the same
distribution, the released float32 sampler's (``beta_variate`` clamps Python's float64 draw to it).
"""
from __future__ import annotations

import math
import random
from typing import Optional

import torch
from torchvision.transforms.v2 import functional as TF

PLACEMENTS = ("released", "centre-clamp")
RATIO = (3 / 4, 4 / 3)
# Device types on which ``sample_crop_boxes`` stops its rejection rounds once every box is
# accepted. The stop reads a flag on the host: free on the CPU (and it keeps the CPU random stream
# bit-identical to earlier releases); on other devices it would synchronise with the device, so
# all ``attempts`` rounds run there. Either way the first accepted (scale, ratio) draw of each box
# wins, so the boxes' distribution is the same.
EARLY_EXIT_DEVICES = ("cpu",)


def check_crop_args(p: Optional[float], alpha: float, placement: str) -> None:
    """Raises ``ValueError`` for a box ratio outside (0, 1], alpha <= 0 or an unknown placement."""
    if p is not None and not 0.0 < p <= 1.0:
        raise ValueError(f"center-crop ratio p must be in (0, 1], got {p}")
    if alpha <= 0:
        raise ValueError(f"Beta alpha must be > 0, got {alpha}")
    if placement not in PLACEMENTS:
        raise ValueError(f"crop placement must be one of {PLACEMENTS}, got {placement!r}")


def _fallback_size(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """torchvision's fallback: the whole image cut to the nearest allowed aspect ratio."""
    in_ratio = width / height
    if in_ratio < ratio[0]:
        return int(round(width / ratio[0])), width
    if in_ratio > ratio[1]:
        return height, int(round(height * ratio[1]))
    return height, width


def sample_crop_boxes(n: int, height: int, width: int, scale: tuple[float, float] = (0.2, 1.0),
                      ratio: tuple[float, float] = RATIO, p: Optional[float] = 0.5, alpha: float = 0.6,
                      device: torch.device | str = "cpu", attempts: int = 10, placement: str = "released",
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Draws ``n`` crop boxes as an ``n x 4`` long tensor of (top, left, h, w).

    Args:
        n, height, width: number of boxes and the image size.
        scale, ratio: RandomResizedCrop's area fraction and aspect-ratio ranges.
        p: side ratio of the central box the centre lies in (Eq 1); None = plain
            RandomResizedCrop (top/left uniform over the valid positions).
        alpha: Beta(alpha, alpha) parameter of the position (alpha < 1: centre suppressed).
        attempts: rejection rounds for (scale, ratio) before the central fallback crop.
        placement: ``"released"`` or ``"centre-clamp"`` (module docstring).
        generator: the source of every draw, on ``device``; None = the device's global torch RNG.

    No host synchronisation outside ``EARLY_EXIT_DEVICES``.
    """
    check_crop_args(p, alpha, placement)
    early_exit = torch.device(device).type in EARLY_EXIT_DEVICES
    area = float(height * width)
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    h = torch.zeros(n, dtype=torch.long, device=device)
    w = torch.zeros(n, dtype=torch.long, device=device)
    todo = torch.ones(n, dtype=torch.bool, device=device)
    for _ in range(attempts):
        target = area * torch.empty(n, device=device).uniform_(*scale, generator=generator)
        aspect = torch.exp(torch.empty(n, device=device).uniform_(*log_r, generator=generator))
        cw = torch.round(torch.sqrt(target * aspect)).long()
        ch = torch.round(torch.sqrt(target / aspect)).long()
        ok = todo & (cw > 0) & (ch > 0) & (cw <= width) & (ch <= height)
        h, w = torch.where(ok, ch, h), torch.where(ok, cw, w)
        todo &= ~ok
        if early_exit and not bool(todo.any()):
            break
    fh, fw = _fallback_size(height, width, ratio)
    h, w = torch.where(todo, fh, h), torch.where(todo, fw, w)
    if p is None:
        top = (torch.rand(n, device=device, generator=generator) * (height - h + 1)).floor().long()
        left = (torch.rand(n, device=device, generator=generator) * (width - w + 1)).floor().long()
    else:
        u, v = beta_sample(alpha, (2, n), device, generator)
        top, left = _place(u, height, h, p, placement), _place(v, width, w, p, placement)
    top = torch.where(todo, (height - h) // 2, top)
    left = torch.where(todo, (width - w) // 2, left)
    return torch.stack([top, left, h, w], dim=1)


def beta_sample(alpha: float, shape: tuple[int, ...], device: torch.device | str,
                generator: Optional[torch.Generator]) -> torch.Tensor:
    """Beta(alpha, alpha) draws of ``shape`` from ``generator``.

    ``torch.distributions.Beta`` takes no generator; this is the draw its ``sample`` makes (a
    two-class Dirichlet, first component), with the generator passed through, so it equals
    ``Beta(alpha, alpha).sample(shape)`` under the same seed (``tests/lib/test_batch_augment.py``).
    """
    concentration = torch.full((*shape, 2), float(alpha), device=device)
    return torch._sample_dirichlet(concentration, generator=generator)[..., 0]


# The largest float32 below 1: torch's float32 Beta sampler (``beta_sample``, and the released
# ``torch.distributions.Beta``) never returns more, so ``int((hi - lo) * b)`` never reaches ``hi``.
BETA_MAX = 1.0 - 2.0 ** -24


def beta_variate(rng: random.Random, alpha: float) -> float:
    """One Beta(alpha, alpha) draw from ``rng`` with the float32 torch sampler's range.

    ``random.betavariate`` computes ``x / (x + y)`` in float64 and returns exactly 1.0 when ``y`` is
    below ``x``'s rounding step (~1.2 % of draws at alpha 0.1), a value the torch sampler clamps to
    ``BETA_MAX``; without the clamp ~1.25 % of crops would sit on the ``hi`` corner the released
    rule never produces.
    """
    return min(rng.betavariate(alpha, alpha), BETA_MAX)


def _place(b: torch.Tensor, side: int, crop: torch.Tensor, p: float, placement: str) -> torch.Tensor:
    """Top-left positions along one axis from Beta draws ``b`` (``n``) for crop sides ``crop``."""
    if placement == "released":
        lo = (int(side * (1 - p) / 2) - crop // 2).clamp(min=0)
        hi = torch.minimum(int(side * (1 + p) / 2) - crop // 2, side - crop)
        return lo + ((hi - lo) * b).floor().long()
    centre = side * (1 - p) / 2 + side * p * b
    return torch.minimum(torch.round(centre - crop / 2).long().clamp(min=0), side - crop)


def sample_crop_box(rng: random.Random, height: int, width: int, scale: tuple[float, float] = (0.2, 1.0),
                    ratio: tuple[float, float] = RATIO, p: Optional[float] = 0.5, alpha: float = 0.6,
                    attempts: int = 10, placement: str = "released") -> tuple[int, int, int, int]:
    """One (top, left, h, w) box from ``rng``; the arguments and distribution of ``sample_crop_boxes``.

    Arguments are not validated here (the per-sample hot path): callers validate them once with
    ``check_crop_args`` (``CenterSuppressedResizedCrop``, ``augmentations.SampleView``).
    """
    area = height * width
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_r))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            break
    else:
        h, w = _fallback_size(height, width, ratio)
        return (height - h) // 2, (width - w) // 2, h, w
    if p is None:
        return rng.randrange(height - h + 1), rng.randrange(width - w + 1), h, w
    tops = []
    for side, crop in ((height, h), (width, w)):
        b = beta_variate(rng, alpha)
        if placement == "released":
            lo = max(int(side * (1 - p) / 2) - crop // 2, 0)
            hi = min(int(side * (1 + p) / 2) - crop // 2, side - crop)
            tops.append(lo + int((hi - lo) * b))
        else:
            tops.append(min(max(round(side * (1 - p) / 2 + side * p * b - crop / 2), 0), side - crop))
    return tops[0], tops[1], h, w


class CenterSuppressedResizedCrop(torch.nn.Module):
    """RandomResizedCrop whose centre lies in a central box of ratio p, Beta(alpha, alpha) distributed.

    Works on uint8/float CHW tensors and PIL images (torchvision v2 functional ops). Each call
    draws one seed from ``generator`` (default: torch's global RNG, as torchvision's transforms do).
    ``p=None`` gives the plain RandomResizedCrop.
    """

    def __init__(self, size: int, scale: tuple[float, float] = (0.2, 1.0), ratio: tuple[float, float] = RATIO,
                 p: Optional[float] = 0.5, alpha: float = 0.6, placement: str = "released",
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        check_crop_args(p, alpha, placement)
        self.size, self.scale, self.ratio, self.p, self.alpha = size, tuple(scale), tuple(ratio), p, alpha
        self.placement, self.generator = placement, generator

    def forward(self, img):
        height, width = TF.get_size(img)
        rng = random.Random(int(torch.randint(2**62, (1,), generator=self.generator)))
        top, left, h, w = sample_crop_box(rng, height, width, self.scale, self.ratio, self.p, self.alpha,
                                          placement=self.placement)
        return TF.resized_crop(img, top, left, h, w, [self.size, self.size], antialias=True)

    def extra_repr(self) -> str:
        return (f"size={self.size}, scale={self.scale}, ratio={self.ratio}, p={self.p}, alpha={self.alpha}, "
                f"placement={self.placement}")
