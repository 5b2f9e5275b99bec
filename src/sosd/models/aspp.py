"""Atrous spatial pyramid pooling with the cross-channel learner and full-image extractor (§3.2.1, Fig. 4).

DeepLabV3+ convention (Chen et al. 2018), whose backbone the paper uses: a 1x1 convolution (the paper's
"cross-channel learner"), three separable atrous 3x3 convolutions, and image pooling (the "full-image
extractor"), concatenated and projected by a 1x1 convolution.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from sosd.models.layers import ConvBNReLU, SeparableConvBNReLU


class FullImageExtractor(nn.Module):
    """Global average pooling -> 1x1 conv -> ReLU, broadcast back to the feature size.

    No BatchNorm here (DeepLab has one): on a 1x1 map BatchNorm fails at batch size 1 in training, and the
    image-level feature is then normalised by the projection's BatchNorm anyway."""

    def __init__(self, in_chs: int, out_chs: int):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=True)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.conv(x.mean((2, 3), keepdim=True))).expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    """Args:
        in_chs: channels of the backbone's deep feature.
        out_chs: channels of each branch and of the projection (DeepLabV3+: 256).
        atrous_rates: dilation rates of the atrous branches (DeepLabV3+ at output stride 16: 6, 12, 18).
    """

    def __init__(self, in_chs: int, out_chs: int = 256, atrous_rates=(6, 12, 18)):
        super().__init__()
        self.cross_channel_learner = ConvBNReLU(in_chs, out_chs, kernel_size=1)
        self.atrous = nn.ModuleList(SeparableConvBNReLU(in_chs, out_chs, dilation=r) for r in atrous_rates)
        self.full_image_extractor = FullImageExtractor(in_chs, out_chs)
        self.project = ConvBNReLU(out_chs * (len(atrous_rates) + 2), out_chs, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.cross_channel_learner(x), *(b(x) for b in self.atrous), self.full_image_extractor(x)]
        return self.project(torch.cat(branches, 1))  # (B, out_chs, H/os, W/os)
