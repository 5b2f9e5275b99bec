"""Decoder (§3.2.2, Fig. 5): the stride-4 refined feature and the upsampled global feature ->
Semantic Feature (one conv), Common Representation (one conv) and Depth Feature (two convs).

Each output first projects the refined feature with its own 1x1 convolution ("we first take one
convolution layer to extract information for each task"), concatenates the ASPP output upsampled to
stride 4, then applies separable 3x3 convolutions (DeepLabV3+ decoder convention: 48 refined channels,
256 output channels). Only the outputs a variant uses are built.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from sosd.models.layers import ConvBNReLU, SeparableConvBNReLU, scale_grad, upsample_to


class DecoderBranch(nn.Module):
    """refined -> 1x1 projection; cat with the global feature; ``num_convs`` separable 3x3 convs."""

    def __init__(self, refined_chs: int, global_chs: int, proj_chs: int, out_chs: int, num_convs: int):
        super().__init__()
        self.refined_projection = ConvBNReLU(refined_chs, proj_chs, kernel_size=1)
        convs = [SeparableConvBNReLU(global_chs + proj_chs, out_chs)]
        convs += [SeparableConvBNReLU(out_chs, out_chs) for _ in range(num_convs - 1)]
        self.convs = nn.Sequential(*convs)

    def forward(self, refined: torch.Tensor, global_up: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        # alpha scales the gradient this branch sends back into the shared trunk (eq. (5))
        refined, global_up = scale_grad(refined, alpha), scale_grad(global_up, alpha)
        return self.convs(torch.cat([global_up, self.refined_projection(refined)], 1))


class Decoder(nn.Module):
    """Args:
        refined_chs: channels of the backbone's stride-4 refined feature.
        global_chs: channels of the ASPP output.
        proj_chs: channels each branch projects the refined feature to (48).
        out_chs: channels of the three feature maps (256).
        semantic / common / depth: which outputs to build (a variant's choice).
    """

    def __init__(self, refined_chs: int, global_chs: int, proj_chs: int = 48, out_chs: int = 256,
                 semantic: bool = True, common: bool = True, depth: bool = True):
        super().__init__()
        branch = lambda n: DecoderBranch(refined_chs, global_chs, proj_chs, out_chs, n)  # noqa: E731
        self.semantic_feature = branch(1) if semantic else None
        self.common_representation = branch(1) if common else None
        self.depth_feature = branch(2) if depth else None

    def forward(self, refined, global_feature, alpha_sem: float = 1.0, alpha_dep: float = 1.0):
        """-> dict with the built ones of ``semantic``, ``common``, ``depth``, each (B, out_chs, H/4, W/4)."""
        g = upsample_to(global_feature, refined.shape[-2:])
        out = {}
        if self.semantic_feature is not None:
            out["semantic"] = self.semantic_feature(refined, g, alpha_sem)
        if self.common_representation is not None:
            out["common"] = self.common_representation(refined, g)
        if self.depth_feature is not None:
            out["depth"] = self.depth_feature(refined, g, alpha_dep)
        return out
