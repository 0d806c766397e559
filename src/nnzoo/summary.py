"""``nnzoo summary``: per-layer output shapes and parameters, and FLOPs per sample.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix multiplies and convolutions, a
multiply-add counted as 2 FLOPs); element-wise layers are not counted, as is usual. The counter cannot see inside
some fused recurrent kernels (nn.LSTM runs as one opaque op on the CPU), so nn.RNN / LSTM / GRU layers are counted
from their sizes instead: the same matrix products, 2 * T * gates * H * (input + H) per layer and direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int
    flops: int


def summarize(model: nn.Module, input_shape: tuple[int, ...],
              example: torch.Tensor | None = None) -> tuple[list[LayerRow], int, int]:  # fmt: skip
    """Rows for the leaf layers, total parameters and total FLOPs for one sample of ``input_shape`` (zeros, or
    ``example``: one sample as a batch of 1, for inputs that must be ids or in a range)."""
    rows: list[LayerRow] = []
    recurrent: dict[str, int] = {}  # row name -> FLOPs counted from the layer's sizes
    hooks = []
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    for name, module in leaves:

        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor, name: str = name) -> None:
            if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
                out = out[0]  # a recurrent layer returns (outputs, state)
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            rows.append(LayerRow(name, type(mod).__name__, shape, params, 0))
            if isinstance(mod, nn.RNNBase):
                recurrent[name] = recurrent_flops(mod, inp[0].shape[1 if mod.batch_first else 0])

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        # A model whose forward does not take one input of the data's shape (a GAN's generator takes noise)
        # says what it takes through ``example_input()``.
        if example is None:
            example = model.example_input() if hasattr(model, "example_input") else torch.zeros(1, *input_shape)
        with torch.no_grad(), counter:
            model(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    per_module = counter.get_flop_counts()
    prefix = type(model).__name__
    total = int(counter.get_total_flops())
    for row in rows:
        counts = per_module.get(f"{prefix}.{row.name}", {})
        row.flops = int(sum(counts.values()))
        if row.name in recurrent:
            total += recurrent[row.name] - row.flops
            row.flops = recurrent[row.name]
    total_params = sum(p.numel() for p in model.parameters())
    return rows, total_params, total


def recurrent_flops(rnn: nn.RNNBase, steps: int) -> int:
    """Matrix-product FLOPs of a fused recurrent layer over ``steps`` time steps, for one sample."""
    gates = {"LSTM": 4, "GRU": 3}.get(rnn.mode, 1)
    directions = 2 if rnn.bidirectional else 1
    flops = 0
    for layer in range(rnn.num_layers):
        size = rnn.input_size if layer == 0 else rnn.hidden_size * directions
        flops += directions * steps * 2 * gates * rnn.hidden_size * (size + rnn.hidden_size)
    return flops


def format_summary(title: str, rows: list[LayerRow], params: int, flops: int) -> str:
    lines = [title, f"{'layer':<24}{'type':<14}{'output shape':<22}{'params':>10}{'FLOPs':>14}"]
    lines.append("-" * len(lines[1]))
    for r in rows:
        shape = "(B, " + ", ".join(map(str, r.output_shape[1:])) + ")" if r.output_shape else "-"
        lines.append(f"{r.name:<24}{r.kind:<14}{shape:<22}{r.parameters:>10,}{r.flops:>14,}")
    lines.append("-" * len(lines[1]))
    lines.append(f"parameters: {params:,}   FLOPs per sample (forward): {flops:,} ({flops / 1e6:.2f} MFLOPs)")
    return "\n".join(lines)
