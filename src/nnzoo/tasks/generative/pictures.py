"""Pictures of generative models: image grids (PIL, no labels: what `generate` writes and the per-epoch grids),
an animated GIF of those grids, and labelled figures for reports (matplotlib, imported lazily, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ... import files
from ...errors import UserError
from ...reports import _plt, save_figure

PAD = 2
PAD_VALUE = 64  # dark grey gaps: visible between tiles with black backgrounds (MNIST), quiet beside the images


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] (or already uint8) -> uint8."""
    if images.dtype == torch.uint8:
        return images.cpu()
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def grid_array(images: torch.Tensor, nrow: int | None = None, pad: int = PAD) -> np.ndarray:
    """Tile (N, C, H, W) images ``nrow`` per row (default: a square) with ``pad`` grey pixels between them:
    an (rows*(H+pad)+pad, nrow*(W+pad)+pad) uint8 array, with a last axis of 3 for colour images."""
    x = to_uint8(images)
    n, c, h, w = x.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / nrow))
    out = np.full((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), PAD_VALUE, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        out[:, top : top + h, left : left + w] = x[i].numpy()
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def check_image_path(path: Path) -> None:
    if path.suffix.lower() not in Image.registered_extensions():
        raise UserError(f"Cannot write an image to {path}: give a file name ending in .png (or .jpg, .gif, .bmp).")


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None, scale: int = 1) -> Path:
    path = Path(path)
    check_image_path(path)
    img = Image.fromarray(grid_array(images, nrow))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    fmt = Image.registered_extensions()[path.suffix.lower()]
    files.atomic_write(path, lambda fh: img.save(fh, format=fmt))
    return path


def save_gif(frames: list[Path], path: Path, ms_per_frame: int = 400) -> Path | None:
    """An animated GIF of PNG frames (Pillow writes it), the last frame held three times as long."""
    if not frames:
        return None
    images = []
    for f in frames:
        with Image.open(f) as img:
            images.append(img.convert("L" if img.mode == "L" else "RGB"))
    durations = [ms_per_frame] * (len(images) - 1) + [3 * ms_per_frame]
    files.atomic_write(path, lambda fh: images[0].save(fh, format="GIF", save_all=True, append_images=images[1:],
                                                       duration=durations, loop=0))  # fmt: skip
    return path


# ---- labelled figures -----------------------------------------------------------------------------------------
def plot_rows(rows: list[tuple[str, torch.Tensor]], path: Path, title: str = "") -> Path:
    """One strip of images per row, labelled on the left (originals above reconstructions, walks, ...)."""
    plt = _plt()
    strips = [grid_array(images, nrow=len(images)) for _, images in rows]
    width = max(s.shape[1] for s in strips)
    fig, axes = plt.subplots(len(rows), 1, figsize=(max(4.0, width / 28), 0.2 + 1.05 * len(rows)), squeeze=False)
    for ax, (label, _), strip in zip(axes[:, 0], rows, strips):
        ax.imshow(strip, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        for side in ax.spines.values():
            side.set_visible(False)
    return save_figure(fig, path, title, fontsize=9)


def plot_grid(images: torch.Tensor, path: Path, title: str = "", nrow: int | None = None) -> Path:
    plt = _plt()
    g = grid_array(images, nrow)
    fig, ax = plt.subplots(figsize=(max(3.0, g.shape[1] / 40), max(3.0, g.shape[0] / 40) + 0.3))
    ax.imshow(g, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def plot_latent(points: torch.Tensor, labels: torch.Tensor, class_names: list[str], path: Path, title: str) -> Path:
    """Test images' codes in 2-D, coloured by class."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for k, name in enumerate(class_names):
        sel = labels == k
        if sel.any():
            ax.scatter(points[sel, 0], points[sel, 1], s=3, alpha=0.6, color=cmap(k % cmap.N), label=name)
    ax.legend(markerscale=4, fontsize=7, loc="best", frameon=False)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.2)
    return save_figure(fig, path)


def plot_gan_curves(history: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Per epoch: both players' losses, D's beliefs, and the judge's numbers when the run had a judge."""
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    panels = [("losses", ["d_loss", "g_loss"]), ("D's mean output", ["d_real", "d_fake"]),
              ("Fréchet distance (judge features)", ["fd"]),
              ("judge", ["confidence", "label_accuracy"]), ("classes covered", ["classes_covered"])]  # fmt: skip
    panels = [(t, [k for k in keys if any(k in h for h in history)]) for t, keys in panels]
    panels = [(t, keys) for t, keys in panels if keys]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (name, keys) in zip(axes[0], panels):
        for k in keys:
            ax.plot(epochs, [h.get(k) for h in history], "-o", markersize=3, label=k)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path, title)


def pca_2d(z: torch.Tensor) -> torch.Tensor:
    """The first two principal components (the codes themselves when they are 2-D)."""
    z = z.double()
    if z.shape[1] <= 2:
        return z if z.shape[1] == 2 else torch.cat([z, torch.zeros_like(z)], 1)
    centred = z - z.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:2].T
