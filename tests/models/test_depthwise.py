"""The depthwise convolution's fast path (dead taps dropped, dilated CPU backward as two forward convolutions)
computes what ``F.conv2d`` computes: outputs and every gradient against a float64 reference."""
import pytest
import torch
import torch.nn.functional as F

from sosd.models.depthwise import DepthwiseConv2d, depthwise_conv2d, live_taps


def _reference(conv, x, g):
    """float64 F.conv2d: output and the gradients of x, weight (and bias) for the output gradient g."""
    w = conv.weight.detach().double().requires_grad_()
    b = conv.bias.detach().double().requires_grad_() if conv.bias is not None else None
    xr = x.detach().double().requires_grad_()
    y = F.conv2d(xr, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
    grads = torch.autograd.grad(y, [xr, w] + ([b] if b is not None else []), g.double())
    return [y, *grads]


def _ours(conv, x, g):
    x = x.detach().requires_grad_()
    y = conv(x)
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    return [y, *torch.autograd.grad(y, [x] + params, g)]


def _rel_err(a, b):
    return ((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


@pytest.mark.parametrize("dilation", [1, 2, 6, 12, 18])
@pytest.mark.parametrize("size", [(1, 1), (4, 8), (7, 3), (8, 10), (16, 32)])
@pytest.mark.parametrize("bias", [False, True])
def test_matches_conv2d_and_its_gradients(dilation, size, bias):
    torch.manual_seed(dilation * 100 + size[0] * 10 + size[1])
    conv = DepthwiseConv2d(6, 6, 3, padding=dilation, dilation=dilation, groups=6, bias=bias)
    x = torch.randn(3, 6, *size)
    g = torch.randn(3, 6, *size)
    for ours, ref in zip(_ours(conv, x, g), _reference(conv, x, g)):
        assert ours.shape == ref.shape
        assert _rel_err(ours, ref) < 1e-5


def test_dead_taps_get_an_exact_zero_gradient():
    """At rate 18 on a 4x8 map only the centre tap reads the input: the other eight weights' gradient is
    exactly 0, as F.conv2d's is (their products are with padding zeros)."""
    conv = DepthwiseConv2d(5, 5, 3, padding=18, dilation=18, groups=5, bias=False)
    x = torch.randn(2, 5, 4, 8)
    y = conv(x)
    (gw,) = torch.autograd.grad(y, [conv.weight], torch.randn_like(y))
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1, 1] = False
    assert torch.all(gw[:, 0][:, mask] == 0)
    assert torch.all(gw[:, 0, 1, 1] != 0)


def test_live_taps():
    assert live_taps(3, 1, 1) == (1, 2)      # a 1-pixel axis: the centre only
    assert live_taps(3, 2, 4) == (0, 3)      # offsets +-2 reach inside 4 pixels
    assert live_taps(3, 6, 4) == (1, 2)      # +-6 never does
    assert live_taps(3, 6, 7) == (0, 3)      # +-6 reaches the far end of 7
    assert live_taps(5, 2, 4) == (1, 4)      # offsets +-2 live, +-4 dead


@pytest.mark.parametrize("stride,groups", [(2, 6), (1, 3)])
def test_other_convolutions_are_plain(stride, groups):
    """Strided or not-depthwise: exactly F.conv2d (same call, same bits)."""
    conv = torch.nn.Conv2d(6, 6, 3, stride, padding=2, dilation=2, groups=groups, bias=False)
    x = torch.randn(2, 6, 9, 9)
    assert torch.equal(depthwise_conv2d(x, conv), conv(x))


def test_traced_graph_keeps_every_tap():
    """A traced (exported) graph must not bake in the taps that are dead at the trace's input size."""
    conv = DepthwiseConv2d(4, 4, 3, padding=6, dilation=6, groups=4, bias=False).eval()
    with torch.no_grad():
        traced = torch.jit.trace(conv, torch.randn(1, 4, 4, 8))
        x = torch.randn(1, 4, 16, 16)  # every tap live at this size
        assert torch.allclose(traced(x), F.conv2d(x, conv.weight, None, 1, 6, 6, 4), atol=1e-5)


def test_state_dict_keys_are_conv2d_keys():
    conv = DepthwiseConv2d(4, 4, 3, padding=1, groups=4, bias=False)
    ref = torch.nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
    assert conv.state_dict().keys() == ref.state_dict().keys()
    conv.load_state_dict(ref.state_dict(), strict=True)


@pytest.mark.parametrize("h,w", [(64, 128), (72, 96), (120, 160)])
def test_model_training_step_matches_plain_convolutions(h, w, monkeypatch):
    """The whole SOSD-Net (small backbone, exit flow at rate 2, ASPP 6/12/18 on small maps): loss gradients
    with the fast path agree with those of plain convolutions to float rounding."""
    from sosd.config import load_config
    from sosd.models import build_model

    cfg = load_config(None, ["model.variant=sosd", "model.backbone=xception_small", "model.num_classes=5",
                             "model.aspp_channels=16", "model.decoder_channels=16", "model.refined_channels=8"])
    torch.manual_seed(0)
    model = build_model(cfg.model).train()
    x = torch.randn(2, 3, h, w)

    def grads():
        model.zero_grad()
        out = model(x)
        sum(v.double().square().mean() for v in out.values() if torch.is_tensor(v)).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    state = {k: v.clone() for k, v in model.state_dict().items()}
    fast = grads()
    model.load_state_dict(state)  # the first pass moved the BatchNorm running statistics
    monkeypatch.setattr(DepthwiseConv2d, "forward", lambda self, x: F.conv2d(
        x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups))
    plain = grads()
    assert fast.keys() == plain.keys()
    # against the largest gradient of the model: parameters whose gradient is ~0 (e.g. before a BatchNorm)
    # differ by rounding noise of their own size
    scale = max(g.abs().max().item() for g in plain.values())
    worst = max((fast[k] - plain[k]).abs().max().item() for k in plain) / scale
    assert worst < 1e-5, worst


def test_a_single_live_tap_is_a_product_not_a_convolution():
    """At rate 18 on a 4x8 map only the centre tap reads the input: the layer is a per-channel scale, computed
    without any convolution kernel (on the CPU one runs a tiny GEMM per channel: 30x slower)."""
    conv = DepthwiseConv2d(16, 16, 3, padding=18, dilation=18, groups=16, bias=True)
    x = torch.randn(2, 16, 4, 8, requires_grad=True)
    with torch.profiler.profile() as prof:
        conv(x).sum().backward()
    assert not [e.name for e in prof.events() if "conv" in e.name]
