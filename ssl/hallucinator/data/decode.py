"""Decoding one image file to a uint8 RGB CHW tensor (8-bit, whatever the file stores)."""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path
from typing import Optional

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

# Pillow's own bomb check reads the global Image.MAX_IMAGE_PIXELS; this module applies the
# caller's limit instead, so Pillow's is lifted (under a lock) only while a header is parsed
# or a file already checked against that limit is decoded.
_PIL_LIMIT = threading.Lock()


def default_max_pixels() -> int:
    """Pillow's ``Image.MAX_IMAGE_PIXELS`` (89,478,485 in Pillow 13): the default limit."""
    with _PIL_LIMIT:  # never read while this module has lifted it
        return int(Image.MAX_IMAGE_PIXELS or 0) or 89_478_485


def _open_unchecked(data: bytes) -> Image.Image:
    with _PIL_LIMIT:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
            return img
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _header(data: bytes) -> Optional[tuple[int, int, int]]:
    """(width, height, frames) from the header (frames: Pillow's count of an animated or multi-page
    file, 1 if it cannot tell); None when Pillow cannot identify the format."""
    with _PIL_LIMIT:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(io.BytesIO(data)) as img:
                try:
                    frames = int(getattr(img, "n_frames", 1))
                except Exception:  # a damaged later frame: the decoders below report it
                    frames = 1
                return (*img.size, frames)
        except Exception:  # unidentified or broken header: the decoders below report it
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Scales an integer or float image to uint8.

    uint16 (16-bit PNG/TIFF) maps 0..65535 to 0..255 with rounding; other integers are taken
    as 16-bit when any value exceeds 255. Floats are taken as [0, 1] when their maximum is at
    most 1, else as 0..255 (values are clipped). Non-finite floats are refused.
    """
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("non-finite pixel values")
        scale = 255.0 if array.size and array.max() <= 1.0 else 1.0
        return np.clip(np.rint(array.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    wide = array.astype(np.int64)
    if array.dtype == np.uint16 or (wide.size and wide.max() > 255):
        wide = (np.clip(wide, 0, 65535) * 255 + 32767) // 65535
    return np.clip(wide, 0, 255).astype(np.uint8)


def _pil_rgb(img: Image.Image) -> np.ndarray:
    """HxWx3 uint8 from any Pillow mode (16-bit and float modes are scaled, not clipped)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        grey = to_uint8(np.asarray(img))
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_image_file(path: str | Path, max_pixels: Optional[int] = None) -> torch.Tensor:
    """Reads and decodes an image file into a uint8 RGB tensor.

    torchvision.io.decode_image handles JPEG, PNG, WebP and GIF; any other format
    (BMP, TIFF, ...) falls back to PIL. Grey and CMYK files come out as RGB; 16-bit files
    are scaled to 8 bits and float TIFFs from [0, 1] (or 0..255) to 0..255.

    Args:
        path: The image file.
        max_pixels: Refuse images with more pixels than this, read from the header before
            anything is decoded (decompression bombs); None = Pillow's MAX_IMAGE_PIXELS.

    Returns:
        uint8 tensor of shape 3xHxW.

    Raises:
        CorruptImageError: The file is missing, unreadable, truncated, not an image, larger
            than ``max_pixels``, or holds several frames (an animated GIF/PNG/WebP, a
            multi-page TIFF): one image is one frame, never a stack.
    """
    limit = default_max_pixels() if max_pixels is None else max_pixels
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CorruptImageError(path, f"cannot read: {exc}") from exc
    if not data:
        raise CorruptImageError(path, "empty file")
    header = _header(data)
    size = header[:2] if header is not None else None
    if size is not None and size[0] * size[1] > limit:
        raise CorruptImageError(path, f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels exceeds the limit "
                                      f"of {limit:,} (possible decompression bomb; raise max_image_pixels to allow)")
    if header is not None and header[2] > 1:
        raise CorruptImageError(path, f"{header[2]} frames (animated or multi-page); one frame expected")
    try:
        buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        image = decode_image(buffer, mode=ImageReadMode.RGB)
    except RuntimeError as tv_exc:
        if size is None:
            raise CorruptImageError(path, f"torchvision: {str(tv_exc).splitlines()[-1]}; PIL: cannot identify") from None
        try:
            array = _pil_rgb(_open_unchecked(data))  # HxWx3
        except Exception as pil_exc:  # PIL raises many types for bad data
            raise CorruptImageError(
                path, f"torchvision: {str(tv_exc).splitlines()[-1]}; PIL: {pil_exc}"
            ) from pil_exc
        return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
    if image.ndim != 3:  # a frame stack that Pillow did not count
        raise CorruptImageError(path, f"decoded to shape {tuple(image.shape)}; one frame expected")
    if size is None and image.shape[1] * image.shape[2] > limit:
        raise CorruptImageError(path, f"{image.shape[2]}x{image.shape[1]} pixels exceeds the limit of {limit:,}")
    if image.dtype == torch.uint16:  # 16-bit PNG
        image = torch.from_numpy(to_uint8(image.numpy()))
    return image
