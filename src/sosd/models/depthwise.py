"""Depthwise convolution that skips the taps which only read padding, with a faster CPU backward when dilated.

Two facts measured on the CPU (issue 15; ``benchmarks/depthwise.py`` per layer, ``results/README.md`` per step):

- **Dead taps.** A "same" convolution with dilation d reads, through its off-centre taps, input rows
  (i - k//2)·d away from each output row. On a feature map of H rows, a tap row with |i - k//2|·d >= H
  reads padding zeros at every output position. DeepLab's ASPP rates (6, 12, 18) on the small deep features
  of CPU-sized images (4x8 at 64x128, 8x10 at 120x160) are such cases: at rate 18 on a 4x8 map only the
  centre tap ever touches the input, and the 3x3 atrous convolution is exactly a per-channel scale (computed
  as a product: a 1x1 depthwise convolution runs as one tiny GEMM per channel on the CPU). Dropping
  the dead taps drops terms that are exactly 0·w: the sum is the same, up to the order the kernel adds in.
  The dropped weights keep their gradient of exactly 0 (they are sliced out of the full weight, so the
  parameter, its name and its optimiser state are unchanged).
- **Dilated depthwise backward.** oneDNN's backward of a dilated depthwise convolution runs 2-3.6x slower
  than the same maths written as two forward convolutions (input gradient: the convolution of the output
  gradient with the flipped kernel; weight gradient: a grouped convolution of the padded input by the output
  gradient, stride d). Undilated ones are as fast natively, so only dilated ones (the exit flow's rate 2 and
  the ASPP) take that route, and only on the CPU in fp32 (cuDNN's backward is fine; autocast keeps the
  native path so dtypes follow torch's rules).

Exported and traced graphs (``torch.onnx``, ``torch.jit.trace``) keep the plain convolution: the dead taps
depend on the input size, which an exported graph must not bake in.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def live_taps(k: int, dilation: int, size: int) -> tuple[int, int]:
    """The range [lo, hi) of kernel taps along one axis that read the input somewhere, for a stride-1
    'same' convolution (padding dilation·(k//2)) over ``size`` positions."""
    c = k // 2
    reach = (size - 1) // dilation  # the farthest tap offset that stays inside
    r = min(c, reach)
    return c - r, c + r + 1


class _DilatedDepthwise(torch.autograd.Function):
    """conv2d(x, w, b, padding=p, dilation=d, groups=C) (stride 1, 'same' padding), backward as two forward
    convolutions (see the module docstring for why)."""

    @staticmethod
    def forward(ctx, x, w, b, padding, dilation):
        ctx.save_for_backward(x, w)
        ctx.padding, ctx.dilation, ctx.has_bias = padding, dilation, b is not None
        return F.conv2d(x, w, b, padding=padding, dilation=dilation, groups=x.shape[1])

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        (ph, pw), (dh, dw) = ctx.padding, ctx.dilation
        n, c, h, wd = x.shape
        g = g.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            # the transposed convolution of a stride-1 'same' convolution: the flipped kernel, same padding
            gx = F.conv2d(g, w.flip(-1, -2), padding=(ph, pw), dilation=(dh, dw), groups=c)
        if ctx.needs_input_grad[1]:
            # dL/dw[c, i, j] = sum over n, y, x of g[n, c, y, x] · x_padded[n, c, y + i·dh, x + j·dw]: each
            # (n, c) plane of the padded input convolved by its output-gradient plane, strided by the dilation
            xp = F.pad(x, (pw, pw, ph, ph)).reshape(1, n * c, h + 2 * ph, wd + 2 * pw)
            gw = F.conv2d(xp, g.reshape(n * c, 1, h, wd), stride=(dh, dw), groups=n * c)
            gw = gw.reshape(n, c, *w.shape[-2:]).sum(0).unsqueeze(1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum((0, 2, 3))
        return gx, gw, gb, None, None


def exporting() -> bool:
    """Whether a graph is being traced, scripted or exported (the fast paths then keep the plain op)."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


def depthwise_conv2d(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` for a depthwise ``nn.Conv2d``, computed without its dead taps and, when dilated on the
    CPU in fp32, with the faster backward. Any other convolution is left to ``conv`` itself."""
    k_h, k_w = conv.kernel_size
    d_h, d_w = conv.dilation
    depthwise = conv.groups == conv.in_channels == conv.out_channels and conv.padding_mode == "zeros"
    same = conv.padding == (d_h * (k_h // 2), d_w * (k_w // 2)) and k_h % 2 == 1 and k_w % 2 == 1
    if not depthwise or not same or conv.stride != (1, 1) or x.dim() != 4 or exporting():
        return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    h0, h1 = live_taps(k_h, d_h, x.shape[-2])
    w0, w1 = live_taps(k_w, d_w, x.shape[-1])
    w = conv.weight
    if (h0, h1, w0, w1) != (0, k_h, 0, k_w):
        w = w[:, :, h0:h1, w0:w1]
    if h1 - h0 == 1 and w1 - w0 == 1 and x.dtype == w.dtype and not torch.is_autocast_enabled(x.device.type):
        # one live tap: a per-channel scale. As a product it costs one pass over x; oneDNN and the slow path
        # run a 1x1 depthwise convolution as one tiny GEMM per channel (under autocast the convolution stays,
        # so the output dtype follows autocast's rules) (4 ms against 0.14 ms forward and
        # backward at 320 channels on 4x8, batch 8)
        y = x * w.reshape(1, -1, 1, 1)
        return y if conv.bias is None else y + conv.bias.reshape(1, -1, 1, 1)
    # a single live tap along an axis needs neither padding nor dilation there
    pad = ((h1 - h0) // 2 * d_h, (w1 - w0) // 2 * d_w)
    dil = (d_h if h1 - h0 > 1 else 1, d_w if w1 - w0 > 1 else 1)
    fast_backward = (max(dil) > 1 and x.device.type == "cpu" and x.dtype == w.dtype == torch.float32
                     and not torch.is_autocast_enabled("cpu") and torch.is_grad_enabled()
                     and (x.requires_grad or w.requires_grad))
    if fast_backward:
        return _DilatedDepthwise.apply(x, w, conv.bias, pad, dil)
    return F.conv2d(x, w, conv.bias, 1, pad, dil, conv.groups)


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(chs, chs, k, groups=chs)`` (same parameters and state-dict keys) whose forward is
    :func:`depthwise_conv2d`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_conv2d(x, self)
