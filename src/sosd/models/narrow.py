"""3x3 convolutions to a handful of output channels, computed as one 1x1 convolution plus shifted sums.

The semantic-to-depth unit's branches (§3.2.3: 2- and 1-channel convolutions) and the depth outputs end in
3x3 convolutions from 64-300 channels to 1-2 channels. On the CPU, oneDNN runs these at a few GFLOP/s:
measured forward + backward, batch 8 (issue 15, ``benchmarks/narrow_conv.py``, ``results/narrow_conv_t1.md``),
256 -> 2 channels on 16x32 took 11.4 ms against 2.8 ms in the form below, 257 -> 1 8.7 against 2.2 ms,
while the same FLOPs as a 1x1 convolution (a GEMM) run near the machine's matmul peak.

The form: ``conv3x3(x, w) = sum over taps (i, j) of shift_ij(conv1x1(x, w[:, :, i, j]))``. One 1x1 convolution
computes all 9·o tap maps at once; each is shifted by its offset (zero padding) and summed. It is the same
sum as the convolution, in another order, so outputs agree up to float rounding; autograd differentiates
it exactly. It pays for few outputs from many inputs (``NARROW_MAX_OUT``, ``NARROW_MIN_IN``; measured once,
256 inputs on 16x32: 4 outputs 2.3x faster, 8 outputs 1.3x, 16 outputs 0.6x; 2 outputs from 16 inputs 0.9x),
so only up to 4 outputs from 32 or more inputs, on the CPU, stride 1, undilated, 'same' padding. Exported
and traced graphs keep the plain convolution.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from sosd.models.depthwise import exporting

NARROW_MAX_OUT = 4
NARROW_MIN_IN = 32


def uses_shifted_sum(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether :func:`narrow_conv2d` takes the 1x1-plus-shifts form for ``conv`` on ``x``."""
    k_h, k_w = conv.kernel_size
    return (conv.out_channels <= NARROW_MAX_OUT and conv.in_channels >= NARROW_MIN_IN and conv.groups == 1
            and k_h % 2 == 1 and k_w % 2 == 1 and (k_h, k_w) != (1, 1) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.padding == (k_h // 2, k_w // 2) and conv.padding_mode == "zeros"
            and x.dim() == 4 and x.device.type == "cpu" and not exporting())


def narrow_conv2d(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)``; for a narrow 3x3 (odd k x k) 'same' convolution on the CPU, as one 1x1 convolution to
    k·k·o channels whose shifted slices are summed. Any other convolution is left to ``F.conv2d``."""
    if not uses_shifted_sum(x, conv):
        return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    o = conv.out_channels
    k_h, k_w = conv.kernel_size
    p_h, p_w = k_h // 2, k_w // 2
    h, w = x.shape[-2:]
    # taps (i, j) stacked on the output axis: channel t*o + c of z holds w[c, :, i, j] . x, t = i*k_w + j
    taps = conv.weight.permute(2, 3, 0, 1).reshape(k_h * k_w * o, conv.in_channels, 1, 1)
    z = F.pad(F.conv2d(x, taps), (p_w, p_w, p_h, p_h))
    y = None
    for i in range(k_h):
        for j in range(k_w):
            t = i * k_w + j
            part = z[:, t * o:(t + 1) * o, i:i + h, j:j + w]
            y = part if y is None else y + part
    return y if conv.bias is None else y + conv.bias.view(1, -1, 1, 1)


class NarrowConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state-dict keys) whose forward is :func:`narrow_conv2d`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return narrow_conv2d(x, self)
