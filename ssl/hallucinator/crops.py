"""Center cropping + center-suppressed sampling (Sec 3.2, Eq 1-2; after ContrastiveCrop).

A RandomResizedCrop draws the crop's scale and aspect ratio as usual; the crop CENTRE is then
drawn inside a fixed central box of side ratio ``p`` (Eq 1): per axis
``centre = box_lo + (box_hi - box_lo) * Beta(alpha, alpha)``. With alpha < 1 the Beta density is
U-shaped, so centres near the middle of the box are suppressed (Eq 2's alpha < 1). The crop is
then shifted to lie inside the image.

The parameter sampler is vectorised (``sample_crop_boxes``) so the per-image CPU transform and a
batched GPU pipeline draw from exactly the same distribution.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch.distributions import Beta
from torchvision.transforms.v2 import functional as TF

# Paper vs released code for the Beta parameter: the paper (Sec 4.1) and the ImageNet code use
# alpha = 0.6; the authors' small-scale code uses 0.1.
BETA_ALPHA = {"paper": 0.6, "released-small": 0.1}


def sample_crop_boxes(n: int, height: int, width: int, scale: tuple[float, float] = (0.2, 1.0),
                      ratio: tuple[float, float] = (3 / 4, 4 / 3), p: Optional[float] = 0.5,
                      alpha: float = 0.6, device: torch.device | str = "cpu", attempts: int = 10
                      ) -> torch.Tensor:
    """Draws ``n`` crop boxes as an ``n x 4`` long tensor of (top, left, h, w).

    Args:
        n, height, width: number of boxes and the image size.
        scale, ratio: RandomResizedCrop's area fraction and aspect-ratio ranges.
        p: side ratio of the central box the centre is drawn in (Eq 1); None = plain
            RandomResizedCrop (top/left uniform over the valid positions).
        alpha: Beta(alpha, alpha) parameter of the centre (alpha < 1: centre suppressed).
        attempts: rejection rounds for (scale, ratio) before falling back to the largest
            box of the clamped ratio, as torchvision does.
    """
    if p is not None and not 0.0 < p <= 1.0:
        raise ValueError(f"center-crop ratio p must be in (0, 1], got {p}")
    if alpha <= 0:
        raise ValueError(f"Beta alpha must be > 0, got {alpha}")
    area = float(height * width)
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    h = torch.zeros(n, dtype=torch.long, device=device)
    w = torch.zeros(n, dtype=torch.long, device=device)
    todo = torch.ones(n, dtype=torch.bool, device=device)
    for _ in range(attempts):
        target = area * torch.empty(n, device=device).uniform_(*scale)
        aspect = torch.exp(torch.empty(n, device=device).uniform_(*log_r))
        cw = torch.round(torch.sqrt(target * aspect)).long()
        ch = torch.round(torch.sqrt(target / aspect)).long()
        ok = todo & (cw > 0) & (ch > 0) & (cw <= width) & (ch <= height)
        h, w = torch.where(ok, ch, h), torch.where(ok, cw, w)
        todo &= ~ok
        if not bool(todo.any()):
            break
    if bool(todo.any()):  # fallback: the whole image cut to the nearest allowed ratio
        in_ratio = width / height
        if in_ratio < ratio[0]:
            fw, fh = width, int(round(width / ratio[0]))
        elif in_ratio > ratio[1]:
            fh, fw = height, int(round(height * ratio[1]))
        else:
            fw, fh = width, height
        h = torch.where(todo, torch.full_like(h, fh), h)
        w = torch.where(todo, torch.full_like(w, fw), w)
    if p is None:
        top = (torch.rand(n, device=device) * (height - h + 1)).floor().long()
        left = (torch.rand(n, device=device) * (width - w + 1)).floor().long()
    else:
        beta = Beta(torch.tensor(float(alpha), device=device), torch.tensor(float(alpha), device=device))
        cy = height * (1 - p) / 2 + height * p * beta.sample((n,))
        cx = width * (1 - p) / 2 + width * p * beta.sample((n,))
        top = torch.minimum(torch.clamp(torch.round(cy - h / 2).long(), min=0), height - h)
        left = torch.minimum(torch.clamp(torch.round(cx - w / 2).long(), min=0), width - w)
    return torch.stack([top, left, h, w], dim=1)


class CenterSuppressedResizedCrop(torch.nn.Module):
    """RandomResizedCrop whose centre follows Beta(alpha, alpha) inside a central box of ratio p.

    Works on uint8/float CHW tensors and PIL images (torchvision v2 functional ops).
    ``p=None`` gives the plain RandomResizedCrop.
    """

    def __init__(self, size: int, scale: tuple[float, float] = (0.2, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), p: Optional[float] = 0.5, alpha: float = 0.6) -> None:
        super().__init__()
        self.size, self.scale, self.ratio, self.p, self.alpha = size, tuple(scale), tuple(ratio), p, alpha
        sample_crop_boxes(1, 8, 8, self.scale, self.ratio, p, alpha)  # validates the arguments now

    def forward(self, img):
        height, width = TF.get_size(img)
        top, left, h, w = sample_crop_boxes(1, height, width, self.scale, self.ratio, self.p, self.alpha)[0].tolist()
        return TF.resized_crop(img, top, left, h, w, [self.size, self.size], antialias=True)

    def extra_repr(self) -> str:
        return f"size={self.size}, scale={self.scale}, ratio={self.ratio}, p={self.p}, alpha={self.alpha}"
