"""Run reports as PNG files: learning curves, confusion matrix, the worst-classified test images.

matplotlib is imported here only, lazily, and always with the file-only Agg backend (no display needed).
"""

from __future__ import annotations

import contextlib
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .. import files

# Fonts that hold Chinese characters, in order of preference; DejaVu (matplotlib's default) has none.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Serif CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing TW", "SimHei", "Microsoft YaHei",
             "PingFang SC", "Heiti SC", "Arial Unicode MS")  # fmt: skip
_cjk: list[str | None] = []  # found once per process


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if not _cjk:
        from matplotlib import font_manager

        installed = {f.name for f in font_manager.fontManager.ttflist}
        _cjk.append(next((f for f in CJK_FONTS if f in installed), None))
        if _cjk[0]:  # matplotlib falls back glyph by glyph along this list: Latin from DejaVu, 汉字 from the CJK font
            plt.rcParams["font.sans-serif"] = ["DejaVu Sans", _cjk[0], *plt.rcParams["font.sans-serif"]]
    return plt


def save_figure(fig: Any, path: Path, title: str = "", *, fontsize: float | None = None, dpi: int = 110) -> Path:
    """Finish a figure as every report does: the title over all panels (when given), a tight layout, the PNG, and
    the figure closed, so a run that draws a picture per epoch does not keep them all in memory."""
    if title:
        fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    try:
        files.atomic_write(path, lambda fh: fig.savefig(fh, dpi=dpi, format=Path(path).suffix[1:] or "png"))
    finally:
        _plt().close(fig)
    return path


def show_image(ax: Any, image: torch.Tensor) -> None:
    """One (C, H, W) uint8 image on a matplotlib axis: grey for one channel, colour for three."""
    if image.shape[0] == 1:
        ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image.permute(1, 2, 0).numpy())


def cjk_font_missing(text: str) -> str | None:
    """A note for the user when ``text`` holds Chinese characters but no installed font can draw them."""
    if any(ord(c) >= 0x2E80 for c in text):
        _plt()
        if _cjk[0] is None:
            return ("no Chinese font is installed, so the characters in the pictures show as boxes; install one "
                    "(Debian/Ubuntu: apt-get install fonts-noto-cjk) and run again")  # fmt: skip
    return None


@contextlib.contextmanager
def quiet_glyphs(labels: list[str] | str = "") -> Iterator[None]:
    """Draw without matplotlib's warning per missing Chinese glyph; one warning says it for all of them."""
    note = cjk_font_missing("".join(labels))
    if note:
        warnings.warn(note, stacklevel=3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        yield


def plot_curves(history: list[dict[str, Any]], path: Path, title: str = "", loss_is: str | None = None,
                steps: list[dict[str, Any]] | None = None) -> Path:  # fmt: skip
    """Loss (and accuracy) per epoch, and the learning rate in a panel of its own; ``loss_is`` says on the axis
    what the loss measures (a model's loss_meaning).

    ``steps`` are the lines of steps.jsonl: drawn as a thin line beside the epoch points, at fractional epochs
    (epoch 1 at 0.25 is a quarter into the first epoch; an epoch's point sits at its end), so a run of one or two
    epochs, a GPT recipe, still shows a curve. The learning rate is drawn from them too when there are any.
    """
    plt = _plt()
    steps = [s for s in steps or () if isinstance(s.get("epoch"), int) and isinstance(s.get("epoch_fraction"), float)]
    at = [s["epoch"] - 1 + s["epoch_fraction"] for s in steps]
    epochs = [h["epoch"] for h in history]
    metrics = [m for m in ("loss", "accuracy") if any(m in h for h in history)]
    has_lr = any("lr" in h for h in history) or any("lr" in s for s in steps)
    panels = len(metrics) + has_lr
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        ys = [s.get(m) for s in steps]
        if any(y is not None for y in ys):
            ax.plot(at, ys, "-", linewidth=0.8, alpha=0.6, color="tab:blue",
                    label=f"train {m} (every {_every(steps)} steps)")  # fmt: skip
        # With a step line to read them against, the train epoch points stand alone; without one they are joined.
        train_style = "o" if steps else "-o"
        for prefix, style, color in (("", train_style, "tab:blue"), ("val_", "-s", "tab:orange")):
            ys = [h.get(prefix + m) for h in history]
            if any(y is not None for y in ys):
                ax.plot(epochs, ys, style, color=color, markersize=3,
                        label=("validation " if prefix else "train ") + m + (" (epoch)" if steps else ""))  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel(textwrap.fill(f"loss: {loss_is}", 48) if m == "loss" and loss_is else m)
        ax.grid(alpha=0.3)
        ax.legend()
    if has_lr:
        ax = axes[0][-1]
        if any("lr" in s for s in steps):
            ax.plot(at, [s.get("lr") for s in steps], "-", color="tab:green")
        else:
            ax.plot(epochs, [h.get("lr") for h in history], "-o", color="tab:green", markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.grid(alpha=0.3)
    return save_figure(fig, path, title)


def _every(steps: list[dict[str, Any]]) -> int:
    """The usual distance between two lines of steps.jsonl (log_every), for the legend."""
    gaps = [b["step"] - a["step"] for a, b in zip(steps, steps[1:]) if b["step"] > a["step"]]
    return max(set(gaps), key=gaps.count) if gaps else 1


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(true class, predicted class) counts."""
    return torch.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).view(num_classes, num_classes)


def plot_confusion(cm: torch.Tensor, class_names: list[str], path: Path, title: str = "") -> Path:
    plt = _plt()
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * n, 0.8 + 0.55 * n))
    ax.imshow(cm.numpy(), cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = int(cm.max()) if cm.numel() else 0
    for i in range(n):
        for j in range(n):
            v = int(cm[i, j])
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > peak / 2 else "black")  # fmt: skip
    acc = cm.diag().sum().item() / max(cm.sum().item(), 1)
    ax.set_title(f"{title}  accuracy {100 * acc:.2f}%".strip())
    with quiet_glyphs(class_names):
        return save_figure(fig, path)


def plot_worst(images: torch.Tensor, y_true: torch.Tensor, probs: torch.Tensor, class_names: list[str], path: Path,
               count: int = 25) -> Path:  # fmt: skip
    """The misclassified test images the model was most confident about, with predicted and true labels.

    The images are tiled into one picture on one axis, each under its two-line caption: 25 matplotlib axes took
    1.3 s to lay out and save, of the 3.8 s a short run spent after training.
    """
    plt = _plt()
    pred = probs.argmax(1)
    wrong = (pred != y_true).nonzero().flatten()
    order = wrong[probs[wrong, pred[wrong]].argsort(descending=True)][:count].tolist()
    cols = 5
    rows = max(1, (len(order) + cols - 1) // cols)
    c, h, w = images.shape[1:]
    gap, top = max(2, w // 7), max(6, int(0.32 * h))  # between tiles; above each, room for its caption
    cell_w, cell_h = w + gap, h + top
    canvas = torch.full((rows * cell_h, cols * cell_w, 3), 255, dtype=torch.uint8)
    fig, ax = plt.subplots(figsize=(cols * 1.9, rows * 1.9 * cell_h / cell_w + 0.3))
    ax.axis("off")
    for k, i in enumerate(order):
        r, q = divmod(k, cols)
        y0, x0 = r * cell_h + top, q * cell_w + gap // 2
        canvas[y0 : y0 + h, x0 : x0 + w] = images[i].permute(1, 2, 0).expand(h, w, 3)  # grey to RGB, colour as is
        p = pred[i].item()
        ax.text(x0 + w / 2, y0 - 1, f"pred {class_names[p]} {100 * probs[i, p]:.0f}%\ntrue {class_names[y_true[i]]}",
                ha="center", va="bottom", fontsize=7)  # fmt: skip
    ax.imshow(canvas.numpy(), interpolation="nearest")
    if not order:
        ax.text(canvas.shape[1] / 2, canvas.shape[0] / 2, "no misclassified images", ha="center")
    return save_figure(fig, path, "most confident mistakes", fontsize=9)
