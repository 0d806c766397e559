"""Training speed of a character LSTM on the CPU: sizes, fp32 against bf16 autocast, fused against readable.

    PYTHONPATH=src python bench/rnn_cpu_speed.py                 # the default grid, ~3 minutes on 2 cores
    PYTHONPATH=src python bench/rnn_cpu_speed.py --configs 1x512x128x64 --repeats 5

A config is LAYERSxHIDDENxSEQ_LENxBATCH. Each measurement is the median of --repeats timings of --steps training
steps (forward, backward, Adam) on random characters of a 65-character vocabulary (Tiny Shakespeare's size),
fp32 and bf16 interleaved so that a noisy neighbour on a shared machine slows both alike. Reports characters/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from nnzoo.data.spec import DataSpec
from nnzoo.models import create_model


def step_time(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, amp: bool,
              steps: int) -> float:  # fmt: skip
    t0 = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = model.compute_loss((x, y))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=["1x256x128x64", "1x512x128x64", "1x512x64x128", "2x512x128x64",
                                                    "1x768x128x64"])  # fmt: skip
    p.add_argument("--cell", default="lstm")
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--impl", default="fused")
    p.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    )
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    spec = DataSpec("bench", task="language-model", num_classes=a.vocab)
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    print(f"torch {torch.__version__}, {a.threads} threads, bf16 kernels: {bf16}, cell {a.cell}, impl {a.impl}")
    print(f"{'layers x hidden x seq x batch':>30} {'fp32 chars/s':>13} {'bf16 chars/s':>13} {'bf16/fp32':>9}")
    for c in a.configs:
        layers, hidden, seq, batch = map(int, c.split("x"))
        torch.manual_seed(0)
        model = create_model("rnn", spec, cell=a.cell, hidden=hidden, layers=layers, embed=a.embed, impl=a.impl)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x = torch.randint(0, a.vocab, (batch, seq))
        y = torch.randint(0, a.vocab, (batch, seq))
        modes = [False, True] if bf16 else [False]
        for amp in modes:
            step_time(model, opt, x, y, amp, 1)  # warm-up (oneDNN builds its kernels on first use)
        times: dict[bool, list[float]] = {m: [] for m in modes}
        for _ in range(a.repeats):
            for amp in modes:
                times[amp].append(step_time(model, opt, x, y, amp, a.steps))
        rate = {m: batch * seq / statistics.median(t) for m, t in times.items()}
        b = rate.get(True, float("nan"))
        print(f"{c:>30} {rate[False]:>13,.0f} {b:>13,.0f} {b / rate[False]:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
