"""BatchNorm folded into the preceding convolution, for inference.

In eval mode a BatchNorm is a per-channel affine map, ``y = (x - mean) / sqrt(var + eps) * gamma + beta``,
so after a convolution it can be absorbed into it: ``W' = W * s``, ``b' = (b - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)`` per output channel (depthwise and grouped convolutions too: the output
channel is dim 0 of the weight). :func:`fuse_bn` does this on a deep copy and replaces each folded BatchNorm
with ``nn.Identity`` (or, for the backbone's timm-named ``BatchNormAct2d``, with its activation).

Pairs are found from the data flow of one forward pass, not from module names: forward hooks record
each ``Conv2d`` output tensor, and a ``BatchNorm2d`` is paired with a convolution when its input *is* that
tensor (same object, not modified in place since: same ``_version``), the convolution ran once, and no
other module consumed its output. This covers every Conv2d -> BatchNorm2d pair of SOSDNet (the layers'
``ConvBNReLU`` / ``SeparableConvBNReLU``, the backbone's ``conv/bn``, ``conv_dw/bn_dw``, ``conv_pw/bn_pw``,
the semantic-to-depth ``conv2/bn``) whatever their names. Limit: a convolution output that also feeds a
*functional* op besides its BatchNorm (``x + conv(x)`` next to ``bn(conv(x))``) cannot be seen by module
hooks; SOSDNet has none.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Rewrite ``conv``'s weight and bias (in place) so that ``conv(x) == bn(conv_before(x))`` in eval mode."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("BatchNorm without running statistics normalises with batch statistics: not foldable")
    if conv.out_channels != bn.num_features:
        raise ValueError(f"conv has {conv.out_channels} output channels, BatchNorm {bn.num_features}")
    with torch.no_grad():
        w = conv.weight.double()
        var, mean = bn.running_var.double(), bn.running_mean.double()
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(mean)
        b = conv.bias.double() if conv.bias is not None else torch.zeros_like(mean)
        scale = gamma / torch.sqrt(var + bn.eps)
        new_w = (w * scale.view(-1, *([1] * (w.ndim - 1)))).to(conv.weight.dtype)
        new_b = ((b - mean) * scale + beta).to(conv.weight.dtype)
        conv.weight.copy_(new_w)
        if conv.bias is None:
            conv.bias = nn.Parameter(new_b, requires_grad=conv.weight.requires_grad)
        else:
            conv.bias.copy_(new_b)


def _default_example(model: nn.Module) -> tuple:
    """An input for SOSDNet-like models (image in [0, 1], intrinsics when focal-aware)."""
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    image = torch.rand(1, 3, 64, 64, device=device)
    cfg = getattr(model, "cfg", None)
    if cfg is not None and getattr(cfg, "focal_aware", False):
        return image, torch.tensor([[500.0, 500.0, 32.0, 32.0]], device=device)
    return (image,)


def conv_bn_pairs(model: nn.Module, example_inputs: tuple | None = None) -> list[tuple[str, str]]:
    """(conv name, BatchNorm name) of every foldable Conv2d -> BatchNorm2d pair of ``model``, found by running
    ``model`` once (in eval mode, no grad) on ``example_inputs`` (default: a 64x64 image)."""
    example_inputs = _default_example(model) if example_inputs is None else example_inputs
    produced: dict[int, tuple[str, torch.Tensor, int]] = {}  # id(output) -> (conv, output (kept alive), version)
    consumers: dict[int, set[str]] = {}                      # id(tensor) -> modules that read it
    calls: dict[str, int] = {}
    candidates: dict[str, str] = {}                          # bn -> conv
    handles = []

    def conv_hook(name):
        def hook(mod, inp, out):
            calls[name] = calls.get(name, 0) + 1
            produced[id(out)] = (name, out, out._version)
        return hook

    def any_pre_hook(name, is_bn):
        def hook(mod, inp):
            for t in inp:
                src = produced.get(id(t))
                if src is not None and src[1] is t:  # a conv output (kept alive, so its id is unique)
                    consumers.setdefault(id(t), set()).add(name)
            if is_bn:
                calls[name] = calls.get(name, 0) + 1
                x = inp[0]
                src = produced.get(id(x))
                if src is not None and src[1] is x and x._version == src[2]:
                    candidates[name] = src[0]
        return hook

    was_training = model.training
    model.eval()
    try:
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                handles.append(m.register_forward_hook(conv_hook(name)))
            is_bn = isinstance(m, nn.BatchNorm2d)
            if is_bn or not list(m.children()):  # BatchNorms and all leaf modules: who reads what
                handles.append(m.register_forward_pre_hook(any_pre_hook(name, is_bn)))
        with torch.no_grad():
            model(*example_inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out_of = {name: tid for tid, (name, _, _) in produced.items()}
    pairs = []
    for bn, conv in candidates.items():
        if calls.get(bn) == 1 and calls.get(conv) == 1 and consumers.get(out_of[conv], set()) == {bn}:
            pairs.append((conv, bn))
    return pairs


def _replacement(bn: nn.Module) -> nn.Module | None:
    """What a folded BatchNorm becomes: Identity, or the activation of a BatchNorm+act module (timm's
    ``BatchNormAct2d``: ``act(bn(x))``). None for BatchNorm subclasses of unknown behaviour (left alone)."""
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    from sosd.models.backbone import BatchNormAct2d

    if type(bn) is BatchNormAct2d:
        return bn.act
    return None


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)  # nn.Sequential children are attributes too: order is kept


def fuse_bn(model: nn.Module, example_inputs: tuple | None = None, inplace: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` with every foldable BatchNorm folded into its convolution (see the
    module docstring); ``inplace=True`` modifies ``model`` itself. The result is for inference only (its
    convolutions carry the BatchNorm statistics; training it would not update them). The folded pairs are
    listed in ``fused.fused_bn_pairs``."""
    fused = model if inplace else copy.deepcopy(model)
    fused.eval()
    pairs = conv_bn_pairs(fused, example_inputs)
    done = []
    for conv_name, bn_name in pairs:
        bn = fused.get_submodule(bn_name)
        new = _replacement(bn)
        if new is None:
            continue
        fold_bn_into_conv(fused.get_submodule(conv_name), bn)
        _set_module(fused, bn_name, new)
        done.append((conv_name, bn_name))
    fused.fused_bn_pairs = done
    return fused


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
