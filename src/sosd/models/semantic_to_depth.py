"""Semantic-to-depth unit (§3.2.3, Fig. 6; eq. (3)): depth from the semantic objectness relation.

For a roughly planar object, d^2 = f_x f_y * dXdY / (dudv) (eq. 3). Two branches of 2- and 1-channel
convolutions produce heatmaps standing for the object's physical area dXdY (from the Common Representation:
the "3D latent shared representation", theta^3d) and its inverse image area (dudv)^-1 (from the Semantic
Feature: the "2D latent shared representation", theta^2d). Each ends in BatchNorm, which in the paper
absorbs the fixed focal length of a dataset. Their pixel-wise product, square-rooted, is a depth cue that is
fused with the Depth Feature by a 1-channel convolution (theta^dep) and upsampled bilinearly.

Beyond the paper (``focal_aware``): the cue is multiplied by sqrt(f_x f_y) / f_ref of each sample, the
factor eq. (3) puts in front, so one model can serve cameras with different focal lengths.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from sosd.models.layers import ConvBNReLU, scale_grad, upsample_to
from sosd.models.narrow import NarrowConv2d

SQRT_EPS = 1e-6


class AreaBranch(nn.Module):
    """Two convolutions with 2 and 1 channels, then BatchNorm: a 1-channel positive heatmap."""

    def __init__(self, in_chs: int):
        super().__init__()
        self.conv1 = ConvBNReLU(in_chs, 2, kernel_size=3)
        self.conv2 = nn.Conv2d(2, 1, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x):
        # softplus: an area (or an inverse area) is positive; it keeps the product below >= 0 everywhere
        return F.softplus(self.bn(self.conv2(self.conv1(x))))


class SemanticToDepth(nn.Module):
    """Args:
        semantic_chs / common_chs / depth_chs: channels of the three decoder outputs.
        depth_prior: the depth (or disparity) the output starts at: the fusion bias is softplus^-1 of it.
        focal_aware: multiply the cue by sqrt(f_x f_y) / focal_ref (needs intrinsics in ``forward``).
        focal_ref: reference focal length in px.
    """

    def __init__(self, semantic_chs: int, common_chs: int, depth_chs: int, depth_prior: float = 3.0,
                 focal_aware: bool = False, focal_ref: float = 500.0):
        super().__init__()
        self.area_3d = AreaBranch(common_chs)    # ~ dXdY, theta^3d
        self.area_2d = AreaBranch(semantic_chs)  # ~ (dudv)^-1, theta^2d
        self.fuse = NarrowConv2d(depth_chs + 1, 1, 3, padding=1)  # theta^dep
        self.depth_prior = depth_prior
        self.focal_aware = focal_aware
        self.focal_ref = focal_ref

    def forward(self, depth_feature, common, semantic_feature, out_size, intrinsics=None,
                alphas=(1.0, 1.0, 1.0)):
        """alphas: gradient weights (dep, 3d, 2d) of each branch's gradient into the shared trunk, eq. (5),
        applied where the branch leaves the trunk (3d: the Common Representation; 2d: the Semantic Feature).
        Returns (depth (B,1,H,W) > 0, aux dict of the stride-4 maps for visualisation, Fig. 8)."""
        area_3d = self.area_3d(scale_grad(common, alphas[1]))            # (B,1,h,w) ~ dXdY
        area_2d = self.area_2d(scale_grad(semantic_feature, alphas[2]))  # (B,1,h,w) ~ (dudv)^-1
        # eq. (3): d ~ sqrt(dXdY / dudv). The product is >= 0 (softplus branches) and SQRT_EPS keeps the
        # square root away from 0, where its derivative 1/(2 sqrt(x)) is infinite: values and gradients
        # stay finite for any input (the gradient is at most 1/(2 sqrt(1e-6)) = 500 times the incoming one).
        cue = torch.sqrt(area_3d * area_2d + SQRT_EPS)
        if self.focal_aware:
            if intrinsics is None:
                raise ValueError("focal_aware semantic-to-depth needs the intrinsics (B,4) of each sample")
            f = torch.sqrt(intrinsics[:, 0] * intrinsics[:, 1]).to(cue.dtype) / self.focal_ref
            cue = cue * f.view(-1, 1, 1, 1)  # eq. (3): d scales with sqrt(f_x f_y)
        # alphas[0] (the dep branch) is applied where that branch leaves the trunk: the decoder's inputs
        x = self.fuse(torch.cat([depth_feature, cue], 1))
        # softplus after the bilinear upsampling: the depth output is positive by construction
        depth = F.softplus(upsample_to(x, out_size))
        return depth, {"area_3d": area_3d, "area_2d": area_2d, "cue": cue}
