"""``nnzoo bench``: how close each recipe's training step comes to what this machine can compute.

It measures, in one run on whatever machine it runs on:

1. the machine's own throughput: fp32 and bf16 matrix products and a 3x3 convolution (GFLOP/s, the best of a few
   sizes). On a CPU without native bf16 (AVX2, plain AVX-512) the bf16 figures are oneDNN's emulation and are
   shown for what they are; the trainer uses fp32 there.
2. each recipe's training step, as ``nnzoo train`` runs it (the real Trainer: its autocast, memory format, fused
   optimizer and threads, on the recipe's real data), timed over a few seconds after a warm-up;
3. the FLOPs of one step (matrix products and convolutions, forward and backward, counted by
   ``torch.utils.flop_counter``; fused recurrent layers from their sizes, as ``nnzoo summary`` does), so the
   achieved GFLOP/s and its fraction of the peak of the precision the step runs in: the gap to the physical limit.

Element-wise work (activations, pooling, normalisation, the optimizer) is not counted as FLOPs but takes time, so
no recipe reaches 100%; small models are bound by memory traffic and per-op overhead instead.
"""

from __future__ import annotations

import contextlib
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .callbacks import Callback
from .config import TrainConfig
from .data import load_dataset
from .errors import UserError
from .models import create_model
from .runtime import autocast_dtype, keep_freed_memory, resolve_device, usable_cores
from .summary import recurrent_flops
from .trainer import Trainer
from .training import make_config

# The recipes whose speed the README quotes: SimpleCNN (classic and fast), the char GPTs, an LSTM and the DCGAN.
DEFAULT_RECIPES = ("fashion-mnist-simple-cnn", "fashion-mnist-simple-cnn-fast", "shakespeare-char-gpt",
                   "shakespeare-char-gpt-fast", "tang-poems-char-lstm", "fashion-mnist-dcgan")  # fmt: skip


def machine(device: torch.device) -> dict[str, Any]:
    """What the numbers depend on: the processor, its vector units as PyTorch sees them, cores, PyTorch."""
    info: dict[str, Any] = {
        "cpu": _cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn_bf16": bool(autocast_dtype(torch.device("cpu"))),
        "cores": usable_cores(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _rate(fn: Callable[[], Any], flops: float, device: torch.device, seconds: float) -> float:
    """GFLOP/s of ``fn`` (which does ``flops`` FLOPs): the best of a few timed batches of calls, after one."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    best, end = 0.0, time.perf_counter() + seconds
    while True:
        t0, n = time.perf_counter(), 0
        while n < 1 or time.perf_counter() - t0 < seconds / 5:
            fn()
            n += 1
        sync()
        best = max(best, n * flops / (time.perf_counter() - t0) / 1e9)
        if time.perf_counter() >= end:
            return best


def peaks(device: torch.device, seconds: float = 1.0) -> dict[str, float]:
    """This machine's best measured GFLOP/s: matmul (the best of a few sizes) and a 3x3 conv, fp32 and bf16.

    A size whose single product takes more than a quarter of the time allowed is the last one tried: emulated
    bf16 on an AVX2 CPU runs a 2048 x 2048 product in about 10 s.
    """
    out: dict[str, float] = {}
    big = device.type == "cuda"
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        best = 0.0
        for n in (4096, 8192) if big else (512, 1024, 2048):
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            rate = _rate(lambda a=a, b=b: a @ b, 2 * n**3, device, seconds / 3)
            best = max(best, rate)
            if 2 * n**3 / (rate * 1e9) > seconds / 4:
                break
        out[f"matmul_{name}"] = best
        # A 3x3 convolution of the size the image recipes use most, channels_last as the trainer runs it.
        batch, c, hw = (256, 128, 32) if big else (64, 64, 16)
        x = torch.randn(batch, c, hw, hw, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c, c, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        out[f"conv_{name}"] = _rate(lambda x=x, w=w: F.conv2d(x, w, padding=1), 2 * batch * c * c * 9 * hw * hw,
                                    device, seconds)  # fmt: skip
    return out


@dataclass
class StepResult:
    recipe: str
    batch_size: int
    precision: str
    step_ms: float
    samples_per_s: float
    gflop_per_step: float
    gflop_per_s: float
    peak_fraction: float
    epoch_s: float  # steps one epoch of this recipe takes (or its max_steps), at this step time


class _StepTimes(Callback):
    """Stamps the end of every step; after ``warm`` steps, sets the run's last step so that it lasts about
    ``seconds`` more (at least 10 steps), judging by the warm-up's pace."""

    def __init__(self, warm: int, seconds: float) -> None:
        self.warm, self.seconds = warm, seconds
        self.times: list[float] = []

    def on_batch_end(self, trainer: Trainer, step: int, steps: int) -> None:
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        if len(self.times) == self.warm + 1:
            pace = (self.times[-1] - self.times[1]) / (self.warm - 1)
            trainer.cfg.max_steps = trainer.global_step + max(10, int(self.seconds / max(pace, 1e-6)))

    def step_seconds(self) -> float:
        gaps = [b - a for a, b in zip(self.times[self.warm :], self.times[self.warm + 1 :])]
        return statistics.median(gaps)


def step_flops(trainer: Trainer, batch: Any) -> float:
    """FLOPs of one training step on ``batch``: what FlopCounterMode counts, with fused recurrent layers (opaque
    to it on the CPU) counted from their sizes: forward, and twice that for the backward."""
    extra = [0.0]

    def hook(mod: nn.RNNBase, inp: tuple, out: Any) -> None:
        x = inp[0]
        if isinstance(x, torch.nn.utils.rnn.PackedSequence):
            extra[0] += 3 * recurrent_flops(mod, 1) * len(x.data)  # one step per real token
        else:
            steps, samples = (x.shape[1], x.shape[0]) if mod.batch_first else (x.shape[0], x.shape[1])
            extra[0] += 3 * recurrent_flops(mod, steps) * (samples if x.dim() == 3 else 1)

    hooks = [m.register_forward_hook(hook) for m in trainer.model.modules() if isinstance(m, nn.RNNBase)]
    counter = FlopCounterMode(display=False)
    try:
        with counter, trainer.autocast():
            trainer._train_step(batch)
    finally:
        for h in hooks:
            h.remove()
    counted = counter.get_total_flops()
    return counted + extra[0]


def bench_recipe(recipe: str, peak: dict[str, float], *, seconds: float = 3.0, data_dir: str | None = None,
                 device: str = "auto") -> StepResult:  # fmt: skip
    """Time the recipe's training step in the real Trainer on its real data (data loading not included)."""
    cfg = make_config(recipe, {"data_dir": data_dir, "device": device})
    data = load_dataset(cfg.data)
    model = create_model(cfg.model, data.spec, **cfg.model_args)
    train = cfg.train
    steps_per_epoch = -(-len(data.train) // train.batch_size)
    epoch_steps = min(steps_per_epoch, train.max_steps or steps_per_epoch)
    train.early_stopping_patience = None
    trainer = Trainer(model, train, spec=data.spec, progress=False, distributed=False)
    batch = next(iter(trainer.batches(data.train, train=True)))
    flops = step_flops(trainer, batch)
    # Whole steps as fit() takes them, after a warm-up (oneDNN builds its kernels on first use).
    timer = _StepTimes(warm=5, seconds=seconds)
    trainer.callbacks.append(timer)
    train.max_steps, train.epochs = 10**5, 10**3  # the timer sets the real end after the warm-up
    trainer.fit(data.train)
    step = timer.step_seconds()
    precision = "bf16" if trainer.amp_dtype == torch.bfloat16 else "fp32"
    top = max(peak.get(f"matmul_{precision}", 0.0), peak.get(f"conv_{precision}", 0.0))
    rate = flops / step / 1e9
    return StepResult(recipe, train.batch_size, precision, 1e3 * step, train.batch_size / step, flops / 1e9, rate,
                      rate / top if top else 0.0, step * epoch_steps)  # fmt: skip


def run_bench(recipes: Sequence[str] = DEFAULT_RECIPES, *, seconds: float = 3.0, data_dir: str | None = None,
              device: str = "auto", echo: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """Peaks, then every recipe's step; prints as it goes (``echo``) and returns everything as a dict."""
    TrainConfig(device=device).validate()  # a device name PyTorch does not know: one sentence, as train says it
    dev = resolve_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(usable_cores())
        keep_freed_memory()
    info = machine(dev)
    gpu = f", {info['gpu']}" if "gpu" in info else ""
    echo(f"machine: {info['cpu']}, {info['cores']} cores, {info['threads']} threads; CPU capability "
         f"{info['cpu_capability']}, oneDNN bf16 native: {info['mkldnn_bf16']}; torch {info['torch']}; "
         f"device {info['device']}{gpu}")  # fmt: skip
    peak = peaks(dev, seconds=max(0.1, seconds / 2))
    emulated = "" if dev.type == "cuda" or info["mkldnn_bf16"] else " (bf16 emulated here: the trainer uses fp32)"
    echo("peak GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in peak.items()) + emulated)
    echo(f"{'recipe':<32}{'batch':>6}{'prec':>6}{'step ms':>9}{'samples/s':>11}{'GFLOP/step':>12}"
         f"{'GFLOP/s':>9}{'of peak':>9}{'epoch s':>9}")  # fmt: skip
    rows: list[dict[str, Any]] = []
    for recipe in recipes:
        try:
            r = bench_recipe(recipe, peak, seconds=seconds, data_dir=data_dir, device=device)
        except UserError as e:  # its data is not on this machine, say: the others still run
            echo(f"{recipe:<32}skipped: {e}")
            rows.append({"recipe": recipe, "skipped": str(e)})
            continue
        echo(f"{r.recipe:<32}{r.batch_size:>6}{r.precision:>6}{r.step_ms:>9.2f}{r.samples_per_s:>11.0f}"
             f"{r.gflop_per_step:>12.3f}{r.gflop_per_s:>9.1f}{100 * r.peak_fraction:>8.0f}%{r.epoch_s:>9.1f}")  # fmt: skip
        rows.append(asdict(r))
    return {"machine": info, "peak_gflops": peak, "recipes": rows}
