"""SimpleCNN training-step throughput on the CPU: fp32 vs bf16 autocast, NCHW vs channels_last, side by side.

    python bench/cpu_precision.py [--seconds 3]

The trainer turns on bf16 autocast and channels_last on CPUs whose oneDNN runs bf16 natively (AVX512-BF16 or
AMX); this prints the ratios that decision rests on, measured in one process, interleaved.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from nnzoo import create_model, dataset_spec


def rate(bs: int, channels_last: bool, bf16: bool, seconds: float) -> float:
    torch.manual_seed(0)
    model = create_model("simple-cnn", dataset_spec("fashion-mnist"))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(bs, 1, 28, 28)
    y = torch.randint(0, 10, (bs,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def step() -> None:
        with ctx():
            loss = model.compute_loss((x, y))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += bs
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"oneDNN bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")  # fmt: skip
    print(f"{'batch':>5} {'fp32 NCHW':>10} {'fp32 CL':>10} {'bf16 CL':>10} {'bf16 CL / fp32 NCHW':>20}  (samples/s)")
    for bs in (64, 128, 256):
        base = rate(bs, False, False, args.seconds)
        cl = rate(bs, True, False, args.seconds)
        bf = rate(bs, True, True, args.seconds)
        print(f"{bs:>5} {base:>10.0f} {cl:>10.0f} {bf:>10.0f} {bf / base:>19.2f}x")


if __name__ == "__main__":
    main()
