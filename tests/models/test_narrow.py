"""The narrow convolution's 1x1-plus-shifts form computes what ``F.conv2d`` computes (outputs and every
gradient against a float64 reference), takes that form where the model needs it, and only there."""
import pytest
import torch
import torch.nn as nn

from sosd.models.narrow import NarrowConv2d, uses_shifted_sum
from tests.models.test_depthwise import _ours, _reference, _rel_err


@pytest.mark.parametrize("out_chs,in_chs,k", [(1, 257, 3), (2, 256, 3), (4, 32, 3), (1, 40, 5)])
@pytest.mark.parametrize("size", [(1, 1), (3, 7), (16, 32)])
@pytest.mark.parametrize("bias", [False, True])
def test_matches_conv2d_and_its_gradients(out_chs, in_chs, k, size, bias):
    torch.manual_seed(out_chs * 1000 + in_chs + size[0] * 10 + size[1])
    conv = NarrowConv2d(in_chs, out_chs, k, padding=k // 2, bias=bias)
    x = torch.randn(2, in_chs, *size)
    assert uses_shifted_sum(x, conv)
    g = torch.randn(2, out_chs, *size)
    for ours, ref in zip(_ours(conv, x, g), _reference(conv, x, g)):
        assert ours.shape == ref.shape
        assert _rel_err(ours, ref) < 1e-5


def test_channels_last_input_gives_the_same_output():
    torch.manual_seed(0)
    conv = NarrowConv2d(64, 2, 3, padding=1)
    x = torch.randn(2, 64, 9, 11)
    assert torch.allclose(conv(x.to(memory_format=torch.channels_last)), conv(x), atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(out_channels=8), dict(in_channels=16), dict(stride=2),
                                    dict(dilation=2, padding=2), dict(padding=0), dict(kernel_size=1, padding=0),
                                    dict(groups=2, in_channels=64, out_channels=2)])
def test_other_convolutions_keep_the_native_kernel(kwargs):
    args = dict(in_channels=64, out_channels=2, kernel_size=3, padding=1) | kwargs
    conv = NarrowConv2d(**args)
    x = torch.randn(1, args["in_channels"], 8, 8)
    assert not uses_shifted_sum(x, conv)
    ref = nn.functional.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    assert torch.equal(conv(x), ref)


def test_traced_graph_keeps_the_plain_convolution():
    conv = NarrowConv2d(64, 1, 3, padding=1).eval()
    traced = torch.jit.trace(conv, torch.randn(1, 64, 8, 8))
    kinds = [n.kind() for n in traced.inlined_graph.nodes()]
    assert "aten::_convolution" in kinds and "aten::pad" not in kinds and "aten::constant_pad_nd" not in kinds


def test_the_sosd_unit_and_depth_head_take_the_fast_form():
    """The layers the form is for: both area branches' first convolution, the fusion θ^dep, the depth head."""
    from sosd.models.heads import DepthHead
    from sosd.models.semantic_to_depth import SemanticToDepth

    unit = SemanticToDepth(semantic_chs=256, common_chs=256, depth_chs=256)
    x = torch.randn(1, 257, 16, 32)
    for conv in (unit.area_3d.conv1.conv, unit.area_2d.conv1.conv, unit.fuse, DepthHead(256).conv):
        assert isinstance(conv, NarrowConv2d) and uses_shifted_sum(x[:, :conv.in_channels], conv)
    # state-dict keys are nn.Conv2d's: checkpoints written before the fast path load unchanged
    assert {k for k in unit.state_dict() if k.startswith("fuse.")} == {"fuse.weight", "fuse.bias"}
