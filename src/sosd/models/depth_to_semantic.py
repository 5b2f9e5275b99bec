"""Depth-to-semantic unit (§3.2.4, Fig. 7).

Two convolutions with 64 and 32 channels on the Depth Feature give a latent related to d^-2
(theta^{d^-2}); two more on the Common Representation give the 3D latent related to dXdY (theta^3d,
semantic side). Their pixel-wise product, through a 1x1 convolution with 32 channels, is the semantic
cue; concatenated with the Semantic Feature, one convolution classifies (theta^sem), and the logits are
upsampled bilinearly.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from sosd.models.layers import ConvBNReLU, scale_grad, upsample_to


class LatentBranch(nn.Sequential):
    """Convolutions with 64 and 32 channels (BN, ReLU): a 1x1 channel reduction (DeepLabV3+'s way of
    reducing channels, 9x cheaper than a 3x3 on 256 channels at stride 4) then a 3x3 for spatial context."""

    def __init__(self, in_chs: int):
        super().__init__()
        self.conv1 = ConvBNReLU(in_chs, 64, kernel_size=1)
        self.conv2 = ConvBNReLU(64, 32, kernel_size=3)


class DepthToSemantic(nn.Module):
    """Args:
        semantic_chs / common_chs / depth_chs: channels of the three decoder outputs.
        num_classes: classes of the classifier.
    """

    def __init__(self, semantic_chs: int, common_chs: int, depth_chs: int, num_classes: int):
        super().__init__()
        self.inverse_depth = LatentBranch(depth_chs)  # ~ d^-2, theta^{d^-2}
        self.area_3d = LatentBranch(common_chs)       # ~ dXdY, theta^3d (semantic side)
        self.semantic_cue = ConvBNReLU(32, 32, kernel_size=1)  # theta^sem
        self.classifier = nn.Conv2d(semantic_chs + 32, num_classes, 1)  # theta^sem

    def forward(self, semantic_feature, common, depth_feature, out_size, alphas=(1.0, 1.0, 1.0)):
        """alphas: gradient weights (sem, 3d, d^-2) into the shared trunk, eq. (5).
        Returns logits (B,K,H,W)."""
        latent = self.inverse_depth(scale_grad(depth_feature, alphas[2])) \
            * self.area_3d(scale_grad(common, alphas[1]))  # (B,32,h,w) pixel product
        # alphas[0] (the sem branch) is applied where that branch leaves the trunk: the decoder's inputs
        x = torch.cat([semantic_feature, self.semantic_cue(latent)], 1)
        return upsample_to(self.classifier(x), out_size)
