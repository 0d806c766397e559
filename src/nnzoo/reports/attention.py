"""Attention heat maps as PNG files: per head over text, per head over image patches, and the rollout."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from . import _plt, quiet_glyphs, save_figure, show_image


def _shown(c: str) -> str:
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(c, c)


def plot_text_heads(maps: torch.Tensor, chars: list[str], heads: list[int], path: Path, title: str) -> Path:
    """maps (heads, T, T): one heat map per head, the query (the character reading) down the rows and the key
    (the character read) across the columns. Each row sums to 1."""
    plt = _plt()
    n, t = maps.shape[0], maps.shape[-1]
    cols = min(n, 2 if t > 24 else 4)
    rows = math.ceil(n / cols)
    side = min(9.0, max(3.0, 0.14 * t + 1.5))
    fontsize = max(4, min(9, int(360 / max(t, 1))))
    labels = [_shown(c) for c in chars]
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols, side * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    with quiet_glyphs():  # the caller has told the user once if Chinese characters cannot be drawn
        for ax, m, h in zip(axes.flat, maps, heads):
            ax.axis("on")
            ax.imshow(m.numpy(), cmap="viridis", vmin=0, vmax=max(float(m.max()), 1e-6))
            ax.set_xticks(range(t), labels, fontsize=fontsize, rotation=90 if max(map(len, labels)) > 1 else 0)
            ax.set_yticks(range(t), labels, fontsize=fontsize)
            ax.set_xlabel("key: the character attended to", fontsize=8)
            ax.set_ylabel("query: the character attending", fontsize=8)
            ax.set_title(f"head {h}", fontsize=9)
        return save_figure(fig, path, title, fontsize=10, dpi=100)


def _upsample(grid_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (gh, gw) map stretched to the image's (H, W): each patch's weight fills its patch."""
    return torch.nn.functional.interpolate(grid_map[None, None].float(), size=size, mode="nearest")[0, 0]


def plot_rollout(image: torch.Tensor, roll: torch.Tensor, path: Path, title: str) -> Path:
    """The image, the rollout over its patches, and the two overlaid."""
    plt = _plt()
    size = tuple(image.shape[1:])
    heat = _upsample(roll, size).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    show_image(axes[0], image)
    axes[0].set_title("input", fontsize=9)
    axes[1].imshow(heat, cmap="inferno")
    axes[1].set_title("attention rollout", fontsize=9)
    show_image(axes[2], image)
    axes[2].imshow(heat, cmap="inferno", alpha=0.55)
    axes[2].set_title("overlay", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return save_figure(fig, path, title, fontsize=10, dpi=100)


def plot_image_heads(image: torch.Tensor, maps: torch.Tensor, heads: list[int], path: Path, title: str) -> Path:
    """maps (heads, gh, gw): per head, the [CLS] token's attention over the patches, over the image."""
    plt = _plt()
    n = maps.shape[0]
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    size = tuple(image.shape[1:])
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, m, h in zip(axes.flat, maps, heads):
        show_image(ax, image)
        ax.imshow(_upsample(m, size).numpy(), cmap="inferno", alpha=0.6)
        ax.set_title(f"head {h}", fontsize=9)
    return save_figure(fig, path, title, fontsize=9, dpi=100)
