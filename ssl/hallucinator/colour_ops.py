"""The colour ops of both augmentation paths (the per-sample ``augmentations.SampleView`` on one image,
the batched ``batch_augment.BatchView`` on N): torchvision's ColorJitter, grayscale and Gaussian
blur on float images in [0, 255], with per-sample factors (an ``N`` tensor, or a float for one
image). Values are clamped after each op, as torchvision does, and rounded once by the caller.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LUMA = (0.2989, 0.587, 0.114)  # ITU-R 601-2, as torchvision's rgb_to_grayscale


def _per_sample(v: torch.Tensor | float) -> torch.Tensor | float:
    """An ``N`` vector viewed as ``N x 1 x 1 x 1`` for broadcasting against images (a float as is:
    the per-sample pipeline's single image)."""
    return v.view(-1, 1, 1, 1).to(torch.float32) if torch.is_tensor(v) else v


def rgb_to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma ``0.2989 R + 0.587 G + 0.114 B`` of a float ``N x 3 x H x W`` batch, as ``N x 1 x H x W``."""
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    f = _per_sample(factor)
    return (f * x + (1 - f) * other).clamp_(0, 255)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Blend with black (``x * factor``), per-sample ``factor`` (``N``, or a float); float images in [0, 255]."""
    return (x * _per_sample(factor)).clamp_(0, 255)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Blend with the per-image mean of the grayscale image (1 or 3 channels)."""
    gray = rgb_to_grayscale(x) if x.shape[1] == 3 else x
    return _blend(x, gray.mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Blend with the grayscale image (3 channels; 1-channel images are returned unchanged)."""
    return x if x.shape[1] == 1 else _blend(x, rgb_to_grayscale(x), factor)


def adjust_hue(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Shifts the HSV hue by ``factor`` (``N``, in [-0.5, 0.5]) turns; 1-channel images unchanged."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    v, minc = x.amax(1), x.amin(1)
    delta = v - minc
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    d = delta.clamp_min(1e-12)
    h6 = torch.where(v == r, torch.remainder((g - b) / d, 6.0),
                     torch.where(v == g, (b - r) / d + 2.0, (r - g) / d + 4.0))
    h6 = torch.where(delta > 0, h6, torch.zeros_like(h6))
    shift = factor.view(-1, 1, 1).to(h6.dtype) if torch.is_tensor(factor) else factor
    h6 = torch.remainder(h6 + 6.0 * shift, 6.0)
    # closed form HSV -> RGB: c_n = v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6, n = 5, 3, 1
    n = torch.arange(5.0, 0.0, -2.0, device=x.device).view(1, 3, 1, 1)  # 5, 3, 1 (no host list per call)
    k = torch.remainder(n + h6.unsqueeze(1), 6.0)
    return (v.unsqueeze(1) * (1 - s.unsqueeze(1) * torch.minimum(k, 4 - k).clamp(0, 1))).clamp_(0, 255)


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample Gaussian blur (torchvision's kernel, reflect padding) as two grouped 1-D convolutions.

    Args:
        x: float ``N x C x H x W``.
        kernel_size: odd kernel side.
        sigma: ``N`` standard deviations in pixels.
    """
    n, c, height, width = x.shape
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    t = torch.linspace(-lim, lim, kernel_size, device=x.device)
    kern = torch.softmax(-(t[None] / sigma[:, None].to(torch.float32)) ** 2, dim=1)  # N x k, as torchvision
    kern = kern.repeat_interleave(c, dim=0)  # (N*C) x k
    half = kernel_size // 2
    out = F.pad(x, (half, half, half, half), mode="reflect").reshape(1, n * c, height + 2 * half, width + 2 * half)
    out = F.conv2d(out, kern.view(n * c, 1, 1, kernel_size), groups=n * c)
    out = F.conv2d(out, kern.view(n * c, 1, kernel_size, 1), groups=n * c)
    return out.view(n, c, height, width)


JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)  # ColorJitter's fn_idx order
