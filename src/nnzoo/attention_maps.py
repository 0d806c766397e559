"""``nnzoo attention RUN_DIR INPUT``: what a trained Transformer attends to, as PNG heat maps.

Text (a GPT's prompt, a poem for the tang-authors classifier): one map per layer and head, query characters down,
key characters across. Images: per layer and head, how much the [CLS] token attends to each patch (or row), and
the attention rollout of Abnar & Zuidema (2020, "Quantifying Attention Flow in Transformers"), which follows the
attention through all the layers, the residual connections included, down to the input patches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data.labelled_text import TextEncoder
from .data.text import UNK, CharVocab
from .errors import UserError
from .images import open_image, to_model_input
from .reports import attention as plots
from .reports import cjk_font_missing
from .runs import load_data
from .trainer import resolve_device


def rollout(maps: torch.Tensor) -> torch.Tensor:
    """Attention rollout: maps (L, H, T, T) -> (T, T), how much each output token draws on each input token.

    Each layer's heads are averaged and the residual connection is added as an identity (x + attention(x)
    passes half of what a token holds straight through), rows renormalised, and the layers multiplied in order:
    R = A_L ... A_2 A_1 (Abnar & Zuidema 2020, §3).
    """
    t = maps.shape[-1]
    eye = torch.eye(t, dtype=torch.float64)
    result = eye
    for layer in maps.double():
        a = 0.5 * layer.mean(0) + 0.5 * eye
        a = a / a.sum(-1, keepdim=True)
        result = a @ result
    return result.float()


def _pick(name: str, value: int | None, count: int) -> list[int]:
    """0-based indices for a 1-based --layer / --head (all when None); a clear sentence when out of range."""
    if value is None:
        return list(range(count))
    if not 1 <= value <= count:
        raise UserError(f"--{name} {value} does not exist: this model has {count} {name}s, numbered 1 to {count}.")
    return [value - 1]


def _token_ids(run: Any, text: str) -> tuple[torch.Tensor, list[str], list[str]]:
    """A classifier of words or subwords: the text as its training texts were tokenized, the tokens shown."""
    encoder = TextEncoder(run.spec)
    pieces = encoder.tokens(text)[: run.model.num_tokens]
    if pieces and all(i == 0 for i in encoder.vocab.ids(pieces)):
        raise UserError("No token of the input is in the model's vocabulary.")
    notes = encoder.notes(encoder.tokens(text))
    return torch.tensor(encoder.vocab.ids(pieces) or [0])[None], pieces or [UNK], notes


def _text_ids(run: Any, text: str) -> tuple[torch.Tensor, list[str], list[str]]:
    """Ids (1, T) of a text input, the characters shown, and notes for the user."""
    if not text:
        raise UserError('Give the text to look at, e.g. nnzoo attention RUN_DIR "To be, or not to be".')
    if run.spec.task != "language-model" and run.spec.extra.get("tokenizer", {}).get("kind", "char") != "char":
        return _token_ids(run, text)
    vocab = CharVocab(run.spec.extra["vocab"])
    notes = []
    missing = [c for c in vocab.unknown(text) if c != UNK]
    if missing:
        if len(missing) == len(set(text)):
            raise UserError("No character of the input is in the model's vocabulary.")
        notes.append(f"the vocabulary lacks {''.join(missing)!r}; they are shown as {UNK} (the model never saw them)")
    if run.spec.task == "language-model":
        limit = run.model.max_context
        if len(text) > limit:
            notes.append(f"the text is longer than the model's context of {limit} characters; kept its last {limit}")
            text = text[-limit:]
    else:  # a classifier read the first seq_len characters of each poem in training: do the same
        limit = run.model.num_tokens
        if len(text) > limit:
            notes.append(f"the text is longer than the {limit} characters the model reads; kept its first {limit}")
            text = text[:limit]
    return vocab.encode(text)[None], list(text), notes


def _image_input(run: Any, source: str, resize: bool, data_dir: str | None) -> tuple[torch.Tensor, str]:
    """uint8 (1, C, H, W) from an image file or ``test:N`` (the N-th test image), and its title."""
    c, h, w = run.spec.input_shape
    if source.startswith("test:"):
        try:
            n = int(source[5:])
        except ValueError:
            raise UserError(f"{source!r}: write test:N with N a whole number, e.g. test:0.") from None
        data = load_data(run, data_dir)
        if not 0 <= n < len(data.test):
            raise UserError(f"{source!r}: the test split of {run.spec.name} holds images 0 to {len(data.test) - 1}.")
        return data.test.x[n : n + 1], f"test image {n} ({run.spec.class_names[int(data.test.y[n])]})"
    img = open_image(source)
    bands = [b for b in img.getbands() if b != "A"]
    channels = 3 if len(bands) == 3 and not _grey(img) else 1
    if resize:
        return to_model_input(img, run.spec)[None], Path(source).name
    if (img.width, img.height) != (w, h) or channels != c:
        kind = {1: "grayscale", 3: "colour"}
        raise UserError(f"{source} is a {img.width}x{img.height} {kind[channels]} image, but this model takes "
                        f"{w}x{h} {kind.get(c, f'{c}-channel')} images: give one of that size, or pass --resize "
                        "to convert it as `nnzoo predict` does.")  # fmt: skip
    arr = np.asarray(img.convert("RGB" if c == 3 else "L"), dtype=np.uint8)
    x = torch.from_numpy(arr.copy())
    x = x.permute(2, 0, 1) if c == 3 else x[None]
    return x[None], Path(source).name


def _grey(img: Any) -> bool:
    """An RGB file whose three channels are equal is a grayscale picture saved in colour."""
    a = np.asarray(img.convert("RGB"))
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


@torch.inference_mode()
def attention_for_run(run: Any, source: str, *, layer: int | None = None, head: int | None = None,
                      out: str | os.PathLike | None = None, resize: bool = False, data_dir: str | None = None,
                      device: str | None = None) -> dict[str, Any]:  # fmt: skip

    model = run.model
    if not hasattr(model, "attention_maps"):
        raise UserError(f"{run.run_dir} holds a {run.config.model} model, which has no attention to show; attention "
                        "works with runs of gpt, transformer-encoder and vit.")  # fmt: skip
    n_layers = len(model.blocks)
    n_heads = model.blocks[0].attn.heads
    layers, heads = _pick("layer", layer, n_layers), _pick("head", head, n_heads)
    folder = Path(out) if out else Path(run.run_dir) / "attention"
    folder.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device or "auto")
    model.to(dev).eval()
    notes: list[str] = []
    result: dict[str, Any] = {"run": str(run.run_dir), "model": run.config.model}
    if len(run.spec.input_shape) == 3:  # images: maps over patches (ViT) or rows
        x, title = _image_input(run, source, resize, data_dir)
        mean = torch.tensor(run.spec.mean or (0.0,) * x.shape[1]).view(1, -1, 1, 1)
        std = torch.tensor(run.spec.std or (1.0,) * x.shape[1]).view(1, -1, 1, 1)
        xin = ((x.float() / 255 - mean) / std).to(dev)
        maps = torch.stack([m[0].float().cpu() for m in model.attention_maps(xin)])  # (L, H, 1+N, 1+N)
        grid = _token_grid(model, run.spec.input_shape)
        roll = rollout(maps)[0, 1:].reshape(grid)  # how much [CLS] draws on each patch, through every layer
        probs = model(xin).float().softmax(-1)[0].cpu()
        k = int(probs.argmax())
        result["prediction"] = {"label": run.spec.class_names[k], "probability": float(probs[k])}
        label = f"{title}: predicted {run.spec.class_names[k]} {100 * probs[k]:.0f}%"
        files = [plots.plot_rollout(x[0], roll, folder / "rollout.png", label)]
        for li in layers:
            cls_maps = maps[li, heads, 0, 1:].reshape(len(heads), *grid)  # (heads, gh, gw)
            files.append(plots.plot_image_heads(x[0], cls_maps, [h + 1 for h in heads], folder / _name(li, head),
                                                f"layer {li + 1}: [CLS] attention per head — {label}"))  # fmt: skip
        result.update(rollout=roll, grid=list(grid))
    else:  # text: maps over characters
        if "vocab" not in run.spec.extra:
            raise UserError(f"{run.run_dir} was trained on {run.spec.name}, which is neither text nor images.")
        ids, chars, notes = _text_ids(run, source)
        maps = torch.stack([m[0].float().cpu() for m in model.attention_maps(ids.to(dev))])  # (L, H, T, T)
        if run.spec.task == "classification":
            chars = ["[CLS]"] + chars
            probs = model(ids.to(dev)).float().softmax(-1)[0].cpu()
            k = int(probs.argmax())
            result["prediction"] = {"label": run.spec.class_names[k], "probability": float(probs[k])}
        font_note = cjk_font_missing("".join(chars))
        notes += [font_note] if font_note else []
        files = [plots.plot_text_heads(maps[li, heads], chars, [h + 1 for h in heads], folder / _name(li, head),
                                       f"{run.config.recipe or run.config.model}: layer {li + 1}")
                 for li in layers]  # fmt: skip
        result["tokens"] = chars
    result.update(weights=maps, shape=list(maps.shape), files=[str(f) for f in files], notes=notes)
    return result


def _name(layer: int, head: int | None) -> str:
    return f"layer{layer + 1}.png" if head is None else f"layer{layer + 1}_head{head}.png"


def _token_grid(model: Any, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """Where each image token comes from: a (H/P, W/P) grid of patches, or a (H, 1) column of rows."""
    _, h, w = input_shape
    patch = getattr(model.tokens, "patch", None)
    return (h // patch, w // patch) if patch else (h, 1)
