"""Decoding one image file to a uint8 RGB CHW tensor."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image

from .errors import CorruptImageError

# torchvision 0.29 warns on every decode that its decoders will move to TorchCodec; they still
# work, and the loaders do not depend on TorchCodec. Silence that one message only.
warnings.filterwarnings(
    "ignore", message="The image decoding and encoding capabilities of TorchVision are deprecated",
    category=DeprecationWarning,
)


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
