"""Small building blocks shared by the ASPP, decoder and the two SOSD units."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from sosd.models.depthwise import DepthwiseConv2d
from sosd.models.narrow import NARROW_MAX_OUT, NarrowConv2d


class ConvBNReLU(nn.Sequential):
    """conv -> BatchNorm -> ReLU (named children: ``conv``, ``bn``, ``act``)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, dilation: int = 1, act: bool = True):
        super().__init__()
        # a few outputs (the semantic-to-depth branches): the 1x1-plus-shifts form, faster on the CPU (narrow.py)
        conv = NarrowConv2d if out_chs <= NARROW_MAX_OUT else nn.Conv2d
        self.conv = conv(in_chs, out_chs, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation,
                         bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU: DeepLabV3+'s decoder/ASPP convolution
    for Xception backbones (same receptive field as a 3x3 conv at a fraction of the cost)."""

    def __init__(self, in_chs: int, out_chs: int, dilation: int = 1):
        super().__init__()
        self.depthwise = DepthwiseConv2d(in_chs, in_chs, 3, padding=dilation, dilation=dilation, groups=in_chs,
                                         bias=False)
        self.bn_dw = nn.BatchNorm2d(in_chs)
        self.act_dw = nn.ReLU(inplace=True)
        self.pointwise = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn_pw = nn.BatchNorm2d(out_chs)
        self.act_pw = nn.ReLU(inplace=True)


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha: float):
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.alpha, None


def scale_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``alpha`` on the way back (alpha^t of eq. (5)).
    alpha == 1 returns ``x`` itself, so the default graph is untouched."""
    if alpha == 1.0 or not torch.is_grad_enabled():
        return x
    return _ScaleGrad.apply(x, alpha)


def upsample_to(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize to ``size`` (H, W); the paper's upsampling (§3.2.3)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
