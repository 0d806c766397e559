"""Turn a user's image file into the input a trained classifier expects.

MNIST digits are white strokes on black, centred, a 20x20 box inside 28x28; a photo or a drawing is usually dark
on light, off-centre and any size. So: to grayscale (or RGB), invert when the background is light, crop to the
content, pad to a square so the content fills the share of the frame it does in training, then resize.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .data.spec import DataSpec
from .errors import UserError

MAX_PIXELS = 40_000_000  # refuse absurd images instead of exhausting memory (decompression bombs)


def open_image(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    return decode_image(path, str(path))


def decode_image(source: str | Path | BinaryIO, name: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A decoded image from a file or bytes (``nnzoo serve``'s uploads); ``name`` says what it is in the sentence
    a user sees when it is not an image or is too large."""
    try:
        img = Image.open(source)
        if img.width * img.height > max_pixels:
            raise UserError(f"{name} is {img.width}x{img.height} pixels, more than nnzoo reads ({max_pixels:,}).")
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise UserError(f"{name} is not an image nnzoo can read (PNG, JPEG, BMP, GIF, TIFF or WebP).") from None
    return img


def to_model_input(img: Image.Image, spec: DataSpec) -> torch.Tensor:
    """uint8 tensor of shape ``spec.input_shape`` from a PIL image."""
    c, h, w = spec.input_shape
    if c == 3:
        rgb = img.convert("RGB").resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)  # (3, H, W)
    gray = np.asarray(img.convert("L"), dtype=np.uint8)
    if spec.light_on_dark and _border_mean(gray) > 127:
        gray = 255 - gray
    gray = _crop_to_content(gray)
    side = int(np.ceil(max(gray.shape) / spec.content_fraction))
    canvas = np.zeros((side, side), dtype=np.uint8)
    top, left = (side - gray.shape[0]) // 2, (side - gray.shape[1]) // 2
    canvas[top : top + gray.shape[0], left : left + gray.shape[1]] = gray
    small = Image.fromarray(canvas).resize((w, h), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(small, dtype=np.uint8).copy()).unsqueeze(0)  # (1, H, W)


def _border_mean(a: np.ndarray) -> float:
    return float(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).mean())


def _crop_to_content(a: np.ndarray) -> np.ndarray:
    mask = a > max(int(a.max()) // 4, 1)
    if not mask.any():
        return a
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def load_images(paths: list[str | Path], spec: DataSpec) -> torch.Tensor:
    """(N, C, H, W) uint8 for a list of files; the first unreadable one stops with its sentence."""
    return torch.stack([to_model_input(open_image(p), spec) for p in paths])
