"""Decoding one image file to a uint8 RGB CHW tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image

from .errors import CorruptImageError


def read_image_file(path: str | Path) -> torch.Tensor:
    """Reads and decodes an image file into a uint8 RGB tensor.

    torchvision.io.decode_image handles JPEG, PNG, WebP and GIF; any other format
    (BMP, TIFF, ...) falls back to PIL. Grey and CMYK files come out as RGB.

    Args:
        path: The image file.

    Returns:
        uint8 tensor of shape 3xHxW.

    Raises:
        CorruptImageError: The file is missing, unreadable, truncated or not an image.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CorruptImageError(path, f"cannot read: {exc}") from exc
    if not data:
        raise CorruptImageError(path, "empty file")
    try:
        buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return decode_image(buffer, mode=ImageReadMode.RGB)
    except RuntimeError as tv_exc:
        try:
            with Image.open(path) as img:
                array = np.asarray(img.convert("RGB"), dtype=np.uint8)  # HxWx3
        except Exception as pil_exc:  # PIL raises many types for bad data
            raise CorruptImageError(
                path, f"torchvision: {str(tv_exc).splitlines()[-1]}; PIL: {pil_exc}"
            ) from pil_exc
        return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
