"""A predict request's image, from an uploaded file or a JSON ``pixels`` array, as the uint8 tensor the model takes.

An uploaded file goes through the same preparation as `nnzoo predict` (images.py: the rule of the model's
dataset). So does a ``pixels`` array (the web page sends its canvas as it is, at its own size, white on black or
black on white), except one already in the dataset's format (the model's input size and channels, a dark
background), which images.py leaves exactly as it is.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..data.spec import DataSpec
from ..images import decode_image, to_model_input
from .limits import MAX_IMAGE_SIDE, Invalid

PIXEL_LAYOUT = ("pixels must be a 2-D (height, width) array, or 3-D with 1, 3 or 4 channels last (height, width, "
                "channels) or 1 or 3 first (channels, height, width)")  # fmt: skip
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def from_upload(data: bytes, spec: DataSpec) -> torch.Tensor:
    """(C, H, W) uint8 from the bytes of an uploaded image file."""
    if not data:
        raise Invalid("The uploaded file is empty; send an image (PNG, JPEG, BMP, GIF, TIFF or WebP).")
    img = decode_image(io.BytesIO(data), "The uploaded file", max_pixels=MAX_IMAGE_SIDE**2)
    _check_size(img.height, img.width, "The uploaded image")
    return to_model_input(img, spec)


def from_pixels(pixels: Any, spec: DataSpec) -> torch.Tensor:
    """(C, H, W) uint8 from a nested list of numbers in 0..1 (when none exceeds 1) or 0..255."""
    try:
        a = np.asarray(pixels)
    except (ValueError, TypeError):
        raise Invalid("pixels must be a rectangular array of numbers (every row the same length).") from None
    if a.dtype.kind not in "biuf":
        raise Invalid("pixels must be a rectangular array of numbers (every row the same length).")
    if a.ndim == 3 and a.shape[-1] not in _MODES and a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in _MODES):
        raise Invalid(f"{PIXEL_LAYOUT}, not an array of shape {list(a.shape)}.")
    _check_size(a.shape[0], a.shape[1], "The pixels array")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise Invalid("pixels must be finite numbers.")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0 or hi > 255:
        raise Invalid(f"pixels must lie in 0..1 or 0..255, not {lo:g}..{hi:g}.")
    u8 = np.round(a * 255 if hi <= 1 else a).astype(np.uint8)  # (H, W) or (H, W, C)
    channels = 1 if u8.ndim == 2 else u8.shape[2]
    img = Image.fromarray(u8 if channels != 1 else u8.reshape(u8.shape[0], u8.shape[1]), _MODES[channels])
    return to_model_input(img, spec)


def _check_size(height: int, width: int, what: str) -> None:
    if height < 1 or width < 1:
        raise Invalid(f"{what} is empty ({width}x{height} pixels).")
    if height > MAX_IMAGE_SIDE or width > MAX_IMAGE_SIDE:
        raise Invalid(f"{what} is {width}x{height} pixels; the server takes at most {MAX_IMAGE_SIDE} on a side.")
