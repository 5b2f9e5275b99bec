"""SOSD-Net (§3.2, Fig. 3) and its baselines as one configurable model.

``variant`` picks the row of Tables 1-4:
- ``semantic_only`` / ``depth_only``: backbone + ASPP + one decoder branch + a plain head;
- ``mtl``: shared trunk, two plain task paths (the paper's MTL baseline);
- ``sosd``: decoder with Semantic Feature, Common Representation and Depth Feature, then
  semantic-to-depth (§3.2.3) and depth-to-semantic (§3.2.4).
ESOSD-Net is ``sosd`` trained with the EM strategy (§3.3); the network is the same.

The model takes images in [0, 1] and normalises them itself with the statistics of the backbone's
pretrained weights (timm's xception65: mean = std = 0.5), so users never need to know them.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from sosd.config import ModelConfig
from sosd.errors import SOSDError
from sosd.models.aspp import ASPP
from sosd.models.backbone import XceptionAligned
from sosd.models.decoder import Decoder
from sosd.models.depth_to_semantic import DepthToSemantic
from sosd.models.heads import DepthHead, SemanticHead
from sosd.models.semantic_to_depth import SemanticToDepth

INPUT_MEAN = (0.5, 0.5, 0.5)  # timm xception65 (IMAGENET_INCEPTION_MEAN/STD)
INPUT_STD = (0.5, 0.5, 0.5)
MIN_INPUT_SIZE = 32

# Algorithm 1's parameter groups, by side. theta^com is the shared trunk, stepped in both phases.
DEPTH_SIDE = ("dep", "s2d_3d", "s2d_2d")          # theta^dep, theta^3d, theta^2d
SEMANTIC_SIDE = ("sem", "d2s_3d", "d2s_inv_depth")  # theta^sem, theta^3d, theta^{d^-2}
SHARED = ("com",)


class InputSizeError(SOSDError, ValueError):
    """An image too small for the network (or not (B, 3, H, W)); a SOSDError, so the CLI prints the message."""


class SOSDNet(nn.Module):
    """Args:
        cfg: a :class:`sosd.config.ModelConfig` (variant, backbone, output stride, classes, channels,
            focal-length option, depth prior, init std). Saved with every checkpoint.
    """

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        cfg = cfg or ModelConfig()
        self.cfg = cfg
        v = cfg.variant
        self.has_semantic = v in ("semantic_only", "mtl", "sosd")
        self.has_depth = v in ("depth_only", "mtl", "sosd")
        self.register_buffer("input_mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(INPUT_STD).view(1, 3, 1, 1), persistent=False)

        self.backbone = XceptionAligned(cfg.backbone, output_stride=cfg.output_stride)
        rates = [r * 16 // cfg.output_stride for r in cfg.atrous_rates]
        self.aspp = ASPP(self.backbone.num_features, cfg.aspp_channels, rates)
        c = cfg.decoder_channels
        self.decoder = Decoder(self.backbone.refined_channels, cfg.aspp_channels, cfg.refined_channels, c,
                               semantic=self.has_semantic, common=v == "sosd", depth=self.has_depth)
        if v == "sosd":
            self.semantic_to_depth = SemanticToDepth(c, c, c, cfg.depth_prior, cfg.focal_aware, cfg.focal_ref)
            self.depth_to_semantic = DepthToSemantic(c, c, c, cfg.num_classes)
        else:
            self.depth_head = DepthHead(c) if self.has_depth else None
            self.semantic_head = SemanticHead(c, cfg.num_classes) if self.has_semantic else None
        # alpha^t of eq. (5) per side, set by the EM strategy; 1 = the plain gradient
        self.alphas = {"depth": (1.0, 1.0, 1.0), "semantic": (1.0, 1.0, 1.0)}
        self._init_task_layers(cfg.init_std, cfg.depth_prior)

    # ------------------------------------------------------------------------------------------- groups
    def module_groups(self) -> dict[str, list[nn.Module]]:
        """Modules of each parameter group of Algorithm 1 (absent groups are empty lists)."""
        d = self.decoder
        g = {k: [] for k in SHARED + DEPTH_SIDE + SEMANTIC_SIDE}
        g["com"] += [self.backbone, self.aspp]
        if d.common_representation is not None:
            g["com"].append(d.common_representation)
        if d.depth_feature is not None:
            g["dep"].append(d.depth_feature)
        if d.semantic_feature is not None:
            g["sem"].append(d.semantic_feature)
        if self.cfg.variant == "sosd":
            s2d, d2s = self.semantic_to_depth, self.depth_to_semantic
            g["dep"].append(s2d.fuse)
            g["s2d_3d"].append(s2d.area_3d)
            g["s2d_2d"].append(s2d.area_2d)
            g["sem"] += [d2s.semantic_cue, d2s.classifier]
            g["d2s_3d"].append(d2s.area_3d)
            g["d2s_inv_depth"].append(d2s.inverse_depth)
        else:
            if self.depth_head is not None:
                g["dep"].append(self.depth_head)
            if self.semantic_head is not None:
                g["sem"].append(self.semantic_head)
        return g

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters named as in Algorithm 1: ``com`` (theta^com), depth side ``dep``, ``s2d_3d``,
        ``s2d_2d`` (theta^dep, theta^3d, theta^2d) and semantic side ``sem``, ``d2s_3d``,
        ``d2s_inv_depth`` (theta^sem, theta^3d, theta^{d^-2}). They partition ``self.parameters()``."""
        return {k: [p for m in ms for p in m.parameters()] for k, ms in self.module_groups().items()}

    def side_modules(self, side: str) -> list[nn.Module]:
        """Modules of the depth or semantic side (the ones EM freezes in the other phase)."""
        names = DEPTH_SIDE if side == "depth" else SEMANTIC_SIDE
        groups = self.module_groups()
        return [m for k in names for m in groups[k]]

    # --------------------------------------------------------------------------------------------- init
    def _init_task_layers(self, std: float, depth_prior: float):
        """§4.1: task-specific layers from N(0, std^2) (variance 0.01 -> std 0.1); the trunk (backbone,
        ASPP, Common Representation) keeps PyTorch's default init or loads ImageNet weights."""
        g = self.module_groups()
        for name in DEPTH_SIDE + SEMANTIC_SIDE:
            for m in g[name]:
                for mod in m.modules():
                    if isinstance(mod, nn.Conv2d):
                        nn.init.normal_(mod.weight, 0.0, std)
                        if mod.bias is not None:
                            nn.init.zeros_(mod.bias)
        # the last layer's bias is softplus^-1(prior), so the depth output starts around the prior (the
        # weights' N(0, std^2) term still spreads it) instead of climbing from softplus(0) = 0.69 to metres
        # or tens of pixels
        last = self.semantic_to_depth.fuse if self.cfg.variant == "sosd" else getattr(self, "depth_head", None)
        if last is not None:
            conv = last if isinstance(last, nn.Conv2d) else last.conv
            nn.init.constant_(conv.bias, depth_prior + math.log(-math.expm1(-depth_prior)))

    # ------------------------------------------------------------------------------------------ forward
    def check_input(self, image: torch.Tensor) -> None:
        if image.ndim != 4 or image.shape[1] != 3:
            raise InputSizeError(f"expected images of shape (B, 3, H, W), got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h < MIN_INPUT_SIZE or w < MIN_INPUT_SIZE:
            raise InputSizeError(
                f"image of {h}x{w} is too small for the network: each side must be at least "
                f"{MIN_INPUT_SIZE} px (the backbone reduces it {self.cfg.output_stride}x); resize or pad it")

    def forward(self, image: torch.Tensor, intrinsics: torch.Tensor | None = None,
                return_aux: bool = False, return_shared: bool = False,
                tasks: tuple[str, ...] = ("depth", "semantic")) -> dict[str, torch.Tensor]:
        """image (B,3,H,W) in [0,1] (any H, W >= 32) -> {"depth": (B,1,H,W) > 0, "semantic": (B,K,H,W)
        logits} (the keys of the variant). ``intrinsics`` (B,4) fx, fy, cx, cy: needed if focal_aware.
        ``return_shared`` also returns ``out["shared"] = (refined, aspp_out)``: the decoder's two inputs,
        the representation every task path goes through (MGDA-UB takes task gradients w.r.t. it).
        ``tasks``: the outputs to compute; the others' heads are skipped (EM's frozen side, whose output
        no loss of the phase uses). Each output is the same function of the input either way."""
        self.check_input(image)
        size = image.shape[-2:]
        x = (image - self.input_mean) / self.input_std
        refined, deep = self.backbone(x)
        aspp_out = self.aspp(deep)
        feats = self.decoder(refined, aspp_out,
                             alpha_sem=self.alphas["semantic"][0], alpha_dep=self.alphas["depth"][0])
        out = {}
        if return_shared:
            out["shared"] = (refined, aspp_out)
        if self.cfg.variant == "sosd":
            if "depth" in tasks:
                out["depth"], aux = self.semantic_to_depth(
                    feats["depth"], feats["common"], feats["semantic"], size, intrinsics, self.alphas["depth"])
                if return_aux:
                    out["aux"] = aux
            if "semantic" in tasks:
                out["semantic"] = self.depth_to_semantic(
                    feats["semantic"], feats["common"], feats["depth"], size, self.alphas["semantic"])
        else:
            if self.depth_head is not None and "depth" in tasks:
                out["depth"] = self.depth_head(feats["depth"], size)
            if self.semantic_head is not None and "semantic" in tasks:
                out["semantic"] = self.semantic_head(feats["semantic"], size)
        return out


def build_model(cfg: ModelConfig) -> SOSDNet:
    """The model of ``cfg``, with timm ImageNet weights in the backbone when ``cfg.pretrained`` is set."""
    model = SOSDNet(cfg)
    if cfg.pretrained:
        from sosd.models.pretrained import load_timm_xception

        load_timm_xception(model.backbone, cfg.pretrained)
    return model
