"""Layers that compute exactly what a torch.nn layer computes, faster where PyTorch's own kernel is slow.

:class:`ImageConv2d` is the first convolution of a network, the one that reads the raw image (1 to 3 channels). On
the CPU, oneDNN computes its weight gradient at about 6 GFLOP/s on an AVX2 machine (SimpleCNN's 1 -> 32 conv3x3, a
batch of 128: 7.9 ms, a fifth of the whole training step), while the convolutions behind it run at 80-140 GFLOP/s.
The same gradient as one batched matrix product of image patches takes 1.2 ms. Forward, the input gradient, the
parameters and their names are plain ``nn.Conv2d``'s, so checkpoints, export and GPUs see no difference.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Patches are gathered only while they stay small: C * kh * kw columns (a 3-channel 5x5 kernel has 75).
MAX_PATCH = 128


def _patches(x: torch.Tensor, conv: nn.Conv2d, out_hw: tuple[int, int]) -> torch.Tensor:
    """(B * Ho * Wo, C * kh * kw): every output position's receptive field, in the weight's (c, ky, kx) order.

    kh * kw strided slices of the (padded) input, stacked: what ``F.unfold`` computes, five times faster here.
    """
    ph, pw = conv.padding  # type: ignore[misc]
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph), mode="constant" if conv.padding_mode == "zeros" else conv.padding_mode)
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    ho, wo = out_hw
    cols = [
        x[:, :, ky * dh : ky * dh + sh * (ho - 1) + 1 : sh, kx * dw : kx * dw + sw * (wo - 1) + 1 : sw].permute(
            0, 2, 3, 1
        )
        for ky in range(kh)
        for kx in range(kw)
    ]  # each (B, Ho, Wo, C)
    return torch.stack(cols, dim=-1).reshape(-1, x.shape[1] * kh * kw)  # (B, Ho, Wo, C, kh * kw) flattened


class _ImageConvFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, conv: nn.Conv2d) -> torch.Tensor:  # fmt: skip
        ctx.save_for_backward(x, weight)
        ctx.conv, ctx.has_bias = conv, bias is not None
        return conv._conv_forward(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        conv = ctx.conv
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:  # a discriminator's first conv, fed by the generator
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad, conv.stride, conv.padding, conv.dilation)
        if ctx.needs_input_grad[1]:
            b, o, ho, wo = grad.shape
            g = grad.permute(0, 2, 3, 1).reshape(-1, o)  # (B * Ho * Wo, out): free when grad is channels_last
            p = _patches(x, conv, (ho, wo))
            # The sum over B * Ho * Wo positions in a few chunks (one matmul per chunk, then a sum): a single
            # (k x N) @ (N x out) product with N in the tens of thousands is slow in both BLAS and oneDNN.
            chunks = 8 if len(p) % 8 == 0 else 1
            grad_w = torch.bmm(p.view(chunks, -1, p.shape[1]).transpose(1, 2), g.view(chunks, -1, o)).sum(0)
            grad_w = grad_w.t().reshape(weight.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


class ImageConv2d(nn.Conv2d):
    """``nn.Conv2d`` for the layer that reads the image; see the module's docstring for why it exists.

    The patch-product gradient is used when training on the CPU with ``groups=1`` and at most ``MAX_PATCH``
    patch columns; everywhere else (GPUs, inference, tracing for export) it is exactly ``nn.Conv2d.forward``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type == "cpu"
            and torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")  # bf16 CPUs: oneDNN's bf16 kernels, the plain path
            and self.weight.requires_grad
            and self.groups == 1
            and self.in_channels * self.kernel_size[0] * self.kernel_size[1] <= MAX_PATCH
            and isinstance(self.padding, tuple)  # not padding="same"
            and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()
        ):
            return _ImageConvFunction.apply(x, self.weight, self.bias, self)
        return super().forward(x)
