"""Turn a user's image file into the input a trained classifier expects, by the rule its dataset was made with.

An image already in the dataset's format (its size, grayscale, a dark background) is used exactly as it is.
Any other is first made to look like the dataset: grayscale, bright on dark (the background is the colour of most
of the border; a light one is inverted), the background level taken off, then cut to the ink's bounding box
(pixels above ``INK_THRESHOLD`` of the way from background to the brightest ink, so JPEG noise does not count).
Then the dataset's own rule:

- MNIST (LeCun et al.): the ink is scaled, keeping its aspect ratio and anti-aliased, to fit a 20x20 box, and
  pasted into 28x28 so that its centre of mass lands on the centre of the frame.
- Fashion-MNIST (Xiao et al. 2017): the longest edge is resized to 28, the result sharpened, and the shorter
  edge extended to 28 with the product centred (no 20x20 box, no centre of mass).
- Any other grayscale dataset (scikit-learn's 8x8 digits): the ink is padded to a square in which it fills the
  share of the frame it does in training (``DataSpec.content_fraction``), then resized.

Colour models (CIFAR-10) take the picture resized to their input size.

A model trained on a user's own folder (``nnzoo train MODEL --data-dir FOLDER``, data/folders.py) takes a file as
the folder's images were decoded for training: transparency over white, resized whole to the input size, as many
channels as the folder's images had, nothing cropped. The one change: a grayscale file on a light background given
to a model of bright-on-dark images (``light_on_dark``, from the folder's mean) is inverted, as a photo of a drawing
given to an MNIST-like model would need; a file like the folder's own is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageFilter, UnidentifiedImageError

from .data.folders import to_pixels
from .data.spec import DataSpec
from .errors import UserError

MAX_PIXELS = 40_000_000  # refuse absurd images instead of exhausting memory (decompression bombs)
INK_THRESHOLD = 0.1  # share of the way from the background to the brightest ink that counts as ink for cropping
MNIST_BOX = 20  # MNIST's digits were fitted in a 20x20 box, then centred by their centre of mass in 28x28


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
    """uint8 tensor of shape ``spec.input_shape`` from a PIL image, prepared by the rule of ``spec``'s dataset."""
    c, h, w = spec.input_shape
    if spec.extra.get("image_folder"):
        return _as_folder_image(img, spec)
    img = _on_white(img)
    if c == 3:
        rgb = img.convert("RGB").resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)  # (3, H, W)
    gray = np.asarray(img.convert("L"), dtype=np.uint8)
    if spec.light_on_dark:
        if gray.shape == (h, w) and not _light_background(gray):
            return torch.from_numpy(gray.copy()).unsqueeze(0)  # already as the dataset's images are: as it is
        gray = _crop_to_ink(_bright_on_dark(gray))
    out = PREPARATIONS.get(spec.name, _fit_to_frame)(gray, spec)
    return torch.from_numpy(np.array(out, dtype=np.uint8)).unsqueeze(0)  # (1, H, W), a writable copy


def load_images(paths: list[str | Path], spec: DataSpec) -> torch.Tensor:
    """(N, C, H, W) uint8 for a list of files; the first unreadable one stops with its sentence."""
    return torch.stack([to_model_input(open_image(p), spec) for p in paths])


def _as_folder_image(img: Image.Image, spec: DataSpec) -> torch.Tensor:
    """The rule of a user's folder: decoded as its training images were (data/folders.py's to_pixels)."""
    c, h, w = spec.input_shape
    a = to_pixels(img, (h, w), channels=c)
    if c == 1 and spec.light_on_dark and _light_background(a[0]):
        a = 255 - a
    return torch.from_numpy(a)


# ---- the datasets' rules: a cropped, bright-on-dark (H, W) uint8 array -> the model's (h, w) ---------------------
def _mnist(ink: np.ndarray, spec: DataSpec) -> np.ndarray:
    """Fit in a 20x20 box (aspect ratio kept, anti-aliased), paste centred by the centre of mass."""
    _, h, w = spec.input_shape
    box = round(MNIST_BOX * min(h, w) / 28)
    small = _resize(ink, box / max(ink.shape))
    frame = np.zeros((h, w), dtype=np.uint8)
    if not small.any():
        return frame
    rows, cols = np.indices(small.shape)
    mass = small.astype(np.float64)
    cy, cx = (rows * mass).sum() / mass.sum(), (cols * mass).sum() / mass.sum()
    # Put the centre of mass on the frame's centre ((h - 1) / 2 in pixel coordinates), keeping the box inside.
    top = int(np.clip(round((h - 1) / 2 - cy), 0, h - small.shape[0]))
    left = int(np.clip(round((w - 1) / 2 - cx), 0, w - small.shape[1]))
    frame[top : top + small.shape[0], left : left + small.shape[1]] = small
    return frame


def _fashion_mnist(ink: np.ndarray, spec: DataSpec) -> np.ndarray:
    """Resize the longest edge to the frame, sharpen, extend the shorter edge centred."""
    _, h, w = spec.input_shape
    small = _resize(ink, min(h, w) / max(ink.shape))
    sharp = Image.fromarray(small).filter(ImageFilter.UnsharpMask(radius=1, percent=50, threshold=0))
    return _centre(np.asarray(sharp, dtype=np.uint8), h, w)


def _fit_to_frame(ink: np.ndarray, spec: DataSpec) -> np.ndarray:
    """Pad to a square in which the ink fills ``content_fraction`` of the side, then resize to the frame."""
    _, h, w = spec.input_shape
    side = int(np.ceil(max(ink.shape) / spec.content_fraction))
    square = _centre(ink, side, side)
    return np.asarray(Image.fromarray(square).resize((w, h), Image.Resampling.LANCZOS), dtype=np.uint8)


PREPARATIONS: dict[str, Callable[[np.ndarray, DataSpec], np.ndarray]] = {
    "mnist": _mnist,
    "fashion-mnist": _fashion_mnist,
}


# ---- helpers -----------------------------------------------------------------------------------------------------
def _on_white(img: Image.Image) -> Image.Image:
    """A transparent background is paper: composite over white (a PNG from a paint program or a canvas)."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return img


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def _light_background(a: np.ndarray) -> bool:
    """Whether most of the border is light: the background, in a picture whose object sits inside the frame."""
    return bool((_border(a) > 127).mean() > 0.5)


def _bright_on_dark(a: np.ndarray) -> np.ndarray:
    """Invert a light background; take the background's level (the border's median) off, so it is black."""
    if _light_background(a):
        a = 255 - a
    level = int(np.median(_border(a)))
    return np.clip(a.astype(np.int16) - level, 0, 255).astype(np.uint8)


def _crop_to_ink(a: np.ndarray) -> np.ndarray:
    mask = a > max(INK_THRESHOLD * int(a.max()), 1)
    if not mask.any():
        return a
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resize(a: np.ndarray, scale: float) -> np.ndarray:
    """Scale by ``scale`` keeping the aspect ratio (each side at least 1 pixel), anti-aliased."""
    size = (max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale)))
    return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)


def _centre(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """``a`` in the middle of an (h, w) black frame (cut to the frame where it is larger)."""
    a = a[:h, :w]
    frame = np.zeros((h, w), dtype=np.uint8)
    top, left = (h - a.shape[0]) // 2, (w - a.shape[1]) // 2
    frame[top : top + a.shape[0], left : left + a.shape[1]] = a
    return frame
