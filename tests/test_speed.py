"""The speed work's mechanisms: ImageConv2d computes nn.Conv2d's gradients, the allocator setting holds, and
`nnzoo bench` measures and reports (its numbers themselves are for the README, never asserted as times)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli
from torch import nn

from nnzoo.models.layers import ImageConv2d
from nnzoo.runtime import keep_freed_memory

CASES = [  # in, out, kernel, stride, padding, dilation, bias, channels_last, input needs its gradient
    (1, 32, 3, 1, 0, 1, True, True, False),  # SimpleCNN's first layer
    (1, 6, 5, 1, 2, 1, True, False, False),  # LeNet-5's
    (3, 16, 5, 2, 2, 1, False, True, True),
    (2, 8, 4, 2, 1, 1, True, False, True),  # a discriminator's, fed by a generator
    (3, 4, 3, 1, 1, 2, True, True, False),
    (3, 5, (2, 3), (1, 2), (1, 0), 1, True, False, False),
]


@pytest.mark.parametrize("case", CASES)
def test_image_conv_matches_conv2d(case):
    c, o, k, s, p, d, bias, cl, x_grad = case
    torch.manual_seed(0)
    ref = nn.Conv2d(c, o, k, s, p, d, bias=bias).double()
    new = ImageConv2d(c, o, k, s, p, d, bias=bias).double()
    new.load_state_dict(ref.state_dict())  # the same parameter names
    x = torch.randn(5, c, 17, 15, dtype=torch.double)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(x_grad), x.clone().requires_grad_(x_grad)
    y1, y2 = ref(x1), new(x2)
    assert y2.grad_fn is not None and "ImageConv" in type(y2.grad_fn).__name__  # the fast path was taken
    g = torch.randn_like(y1)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    torch.testing.assert_close(y2, y1)
    torch.testing.assert_close(new.weight.grad, ref.weight.grad)
    if bias:
        torch.testing.assert_close(new.bias.grad, ref.bias.grad)
    if x_grad:
        torch.testing.assert_close(x2.grad, x1.grad)


def test_image_conv_is_plain_conv2d_outside_cpu_training():
    conv = ImageConv2d(1, 4, 3)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert conv(x).grad_fn is None
    conv.weight.requires_grad_(False)
    conv.bias.requires_grad_(False)
    assert conv(x).grad_fn is None  # frozen: nothing to compute a weight gradient for
    traced = torch.jit.trace(ImageConv2d(1, 4, 3), x)  # export traces plain aten convolutions
    assert "aten::_convolution" in str(traced.graph)


def test_keep_freed_memory_is_idempotent():
    first = keep_freed_memory()
    assert keep_freed_memory() == first  # a second Runner changes nothing


def test_bench_cli_times_a_recipe_against_the_peaks(capsys):
    code, out, err = run_cli(capsys, "bench", "digits-mlp", "--seconds", "0.3", "--json")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("machine: ") and "CPU capability" in lines[0] and "bf16 native" in lines[0]
    assert lines[1].startswith("peak GFLOP/s: matmul_fp32 ")
    result = json.loads(out[out.index("{") :])
    (row,) = result["recipes"]
    assert row["recipe"] == "digits-mlp" and row["batch_size"] > 0
    assert row["gflop_per_step"] > 0 and row["step_ms"] > 0 and 0 < row["peak_fraction"] < 1.5
    # FLOPs of one step of digits-mlp (64 -> 128 -> 64 -> 10, batch 32): forward 2*B*in*out per layer, the same
    # again for every weight gradient, and once more for every input gradient but the first layer's (the
    # pixels need none)
    sizes, b = [(64, 128), (128, 64), (64, 10)], row["batch_size"]
    expected = 2 * b * (2 * sum(i * o for i, o in sizes) + sum(i * o for i, o in sizes[1:]))
    assert row["gflop_per_step"] * 1e9 == pytest.approx(expected)
    assert row["samples_per_s"] == pytest.approx(row["batch_size"] / row["step_ms"] * 1e3)
    assert result["peak_gflops"]["matmul_fp32"] > 0 and result["machine"]["cpu_capability"]


def test_bench_skips_a_recipe_whose_data_is_missing(capsys, tmp_path):
    # conftest points MNIST's download at a mirror that does not exist: the data cannot be had here
    code, out, _ = run_cli(
        capsys, "bench", "mnist-simple-cnn", "digits-mlp", "--seconds", "0.2", "--data-dir", tmp_path
    )
    assert code == 0
    assert any(line.startswith("mnist-simple-cnn") and "skipped: " in line for line in out.splitlines())
    assert any(line.startswith("digits-mlp") and "%" in line for line in out.splitlines())
