"""Aligned Xception-65 backbone (§3.2.1, Fig. 4), with timm's module and parameter names.

The structure and every module/parameter name follow timm's ``xception65``
(``timm/models/xception_aligned.py``, Apache-2.0), so timm's published ImageNet weights
(``timm/xception65.ra3_in1k``) load with ``strict=True``. timm itself cannot be imported here (it imports
torchvision, which has no CPU build on this platform), so the few layers it composes are written out.

Output stride 16 or 8 through dilation, as DeepLab does: once the accumulated stride would exceed the
output stride, strided blocks keep stride 1 and later blocks dilate instead. ``forward`` returns the
stride-4 *refined feature* (the input of block 1's last, strided separable conv: timm's stride-4 feature
tap ``blocks.1.stack.act3``, after its ReLU) and the deep feature (the last block's output).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from sosd.models.depthwise import DepthwiseConv2d

BN_EPS = 1e-3  # timm's xception65 BatchNorm settings (those of the TF weights it was ported from)
BN_MOMENTUM = 0.1


def _bn(chs: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(chs, eps=BN_EPS, momentum=BN_MOMENTUM)


def _pad(kernel_size: int, stride: int, dilation: int) -> int:
    # timm's symmetric static padding for padding='' (timm.layers.padding.get_padding)
    return ((stride - 1) + dilation * (kernel_size - 1)) // 2


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm followed by an optional ReLU; a BatchNorm2d subclass so its state-dict keys are timm's."""

    def __init__(self, chs: int, apply_act: bool = True):
        super().__init__(chs, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.ReLU(inplace=True) if apply_act else nn.Identity()

    def forward(self, x):
        return self.act(super().forward(x))


class ConvNormAct(nn.Module):
    """conv (no bias) -> BatchNorm (-> ReLU); timm's ``ConvNormAct`` naming (``conv``, ``bn``)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, apply_act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, _pad(kernel_size, stride, 1), bias=False)
        self.bn = BatchNormAct2d(out_chs, apply_act=apply_act)

    def forward(self, x):
        return self.bn(self.conv(x))


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 (BN, act) -> pointwise 1x1 (BN, act): timm's ``conv_dw/bn_dw/conv_pw/bn_pw``."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, dilation: int = 1, act: bool = False):
        super().__init__()
        self.conv_dw = DepthwiseConv2d(in_chs, in_chs, 3, stride, _pad(3, stride, dilation), dilation,
                                       groups=in_chs, bias=False)
        self.bn_dw = _bn(in_chs)
        self.act_dw = nn.ReLU(inplace=True) if act else nn.Identity()
        self.conv_pw = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn_pw = _bn(out_chs)
        self.act_pw = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x):
        x = self.act_dw(self.bn_dw(self.conv_dw(x)))
        return self.act_pw(self.bn_pw(self.conv_pw(x)))


class XceptionModule(nn.Module):
    """Three separable convs (the last one strided) with a residual: timm's ``XceptionModule``."""

    def __init__(self, in_chs: int, out_chs, stride: int = 1, dilation: int = 1,
                 start_with_relu: bool = True, no_skip: bool = False):
        super().__init__()
        out_chs = tuple(out_chs) if isinstance(out_chs, (tuple, list)) else (out_chs,) * 3
        self.in_channels, self.out_channels, self.no_skip = in_chs, out_chs[-1], no_skip
        if not no_skip and (self.out_channels != in_chs or stride != 1):
            self.shortcut = ConvNormAct(in_chs, self.out_channels, 1, stride=stride, apply_act=False)
        else:
            self.shortcut = None
        self.stack = nn.Sequential()
        for i in range(3):
            if start_with_relu:
                # not in-place for the first: its input is also the residual
                self.stack.add_module(f"act{i + 1}", nn.ReLU(inplace=i > 0))
            self.stack.add_module(f"conv{i + 1}", SeparableConv2d(
                in_chs, out_chs[i], stride=stride if i == 2 else 1, dilation=dilation,
                act=not start_with_relu))
            in_chs = out_chs[i]

    def _residual(self, x, skip):
        if self.no_skip:
            return x
        return x + (self.shortcut(skip) if self.shortcut is not None else skip)

    def forward(self, x):
        return self._residual(self.stack(x), x)

    def forward_with_tap(self, x):
        """Also return the input of the last (strided) separable conv: the feature tap."""
        tap = x
        for m in list(self.stack)[:-1]:
            tap = m(tap)
        return self._residual(self.stack[-1](tap), x), tap


@dataclass(frozen=True)
class XceptionSpec:
    stem_chs: tuple          # (first conv, second conv)
    entry_chs: tuple         # out channels of the three entry-flow blocks
    middle_blocks: int
    middle_chs: int
    exit_chs: tuple          # (block 1 out (3 convs), block 2 out (3 convs))


# The paper's backbone (timm's xception65) and a narrower, shallower member of the same family for CPU work.
SPECS = {
    "xception65": XceptionSpec((32, 64), (128, 256, 728), 16, 728, ((728, 1024, 1024), (1536, 1536, 2048))),
    "xception_small": XceptionSpec((16, 32), (32, 64, 128), 2, 128, ((128, 192, 192), (256, 256, 320))),
}


class XceptionAligned(nn.Module):
    """Aligned Xception with DeepLab's dilation; timm's ``XceptionAligned`` layout.

    Args:
        spec: ``"xception65"`` (the paper's) or ``"xception_small"``, or an :class:`XceptionSpec`.
        output_stride: 8 or 16 (the paper's DeepLabV3+ setting), reached by dilating later blocks.
        num_classes: 0 (default) builds no classifier; 1000 builds timm's ``head.fc`` so the full ImageNet
            state dict loads with ``strict=True``.
        in_chans: input channels.
    """

    def __init__(self, spec="xception65", output_stride: int = 16, num_classes: int = 0, in_chans: int = 3):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        spec = SPECS[spec] if isinstance(spec, str) else spec
        self.output_stride = output_stride
        self.stem = nn.Sequential(
            ConvNormAct(in_chans, spec.stem_chs[0], 3, stride=2),
            ConvNormAct(spec.stem_chs[0], spec.stem_chs[1], 3, stride=1),
        )
        cfgs = []
        chs = spec.stem_chs[1]
        for out in spec.entry_chs:
            cfgs.append(dict(in_chs=chs, out_chs=out, stride=2))
            chs = out
        cfgs += [dict(in_chs=chs, out_chs=spec.middle_chs, stride=1) for _ in range(spec.middle_blocks)]
        chs = spec.middle_chs
        cfgs.append(dict(in_chs=chs, out_chs=spec.exit_chs[0], stride=2))
        cfgs.append(dict(in_chs=spec.exit_chs[0][-1], out_chs=spec.exit_chs[1], stride=1,
                         no_skip=True, start_with_relu=False))

        self.blocks = nn.Sequential()
        curr_stride, curr_dilation = 2, 1
        self.refined_index = None  # the block holding the stride-4 tap
        for i, b in enumerate(cfgs):
            b = dict(b, dilation=curr_dilation)
            if b["stride"] > 1:
                if curr_stride == 4 and self.refined_index is None:
                    self.refined_index = i
                if curr_stride * b["stride"] > output_stride:
                    curr_dilation *= b["stride"]  # later blocks dilate instead of striding (timm's rule)
                    b["stride"] = 1
                else:
                    curr_stride *= b["stride"]
            self.blocks.add_module(str(i), XceptionModule(**b))
        self.refined_channels = spec.entry_chs[1]
        self.num_features = spec.exit_chs[1][-1]
        self.head = _ClassifierHead(self.num_features, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B,3,H,W), normalised -> (refined (B,C_r,H/4,W/4), deep (B,C,H/os,W/os))."""
        x = self.stem(x)
        refined = None
        for i, blk in enumerate(self.blocks):
            if i == self.refined_index:
                x, refined = blk.forward_with_tap(x)
            else:
                x = blk(x)
        return refined, x


class _ClassifierHead(nn.Module):
    """timm's ``ClassifierHead`` (global average pool + ``fc``); only for loading ImageNet weights whole."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))
