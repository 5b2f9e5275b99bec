"""Plain task heads of the single-task and MTL baselines (§4.2: "two task-specific paths")."""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from sosd.models.layers import upsample_to
from sosd.models.narrow import NarrowConv2d


class DepthHead(nn.Module):
    """3x3 conv to 1 channel, bilinear upsampling, softplus (positive by construction)."""

    def __init__(self, in_chs: int):
        super().__init__()
        self.conv = NarrowConv2d(in_chs, 1, 3, padding=1)

    def forward(self, depth_feature, out_size):
        return F.softplus(upsample_to(self.conv(depth_feature), out_size))


class SemanticHead(nn.Module):
    """1x1 conv classifier, bilinear upsampling of the logits."""

    def __init__(self, in_chs: int, num_classes: int):
        super().__init__()
        self.classifier = nn.Conv2d(in_chs, num_classes, 1)

    def forward(self, semantic_feature, out_size):
        return upsample_to(self.classifier(semantic_feature), out_size)
