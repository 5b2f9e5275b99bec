"""ONNX export of a SOSDNet with dynamic batch, height and width.

Exporter: torch's legacy TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``). With torch
2.13 the default dynamo exporter needs the ``onnxscript`` package, which is not a dependency here (importing
it fails), and it would turn the model's Python-level shape checks into ``torch.export`` guards that need
explicit ``Dim`` ranges. The legacy exporter traces the model once; every size the model derives from its
input (``image.shape[-2:]`` for the final bilinear upsampling, the decoder's upsampling to the stride-4
feature, the ASPP image-pooling broadcast) is recorded as ``Shape -> Gather -> Resize/Expand`` in the
graph, so the exported model accepts other batch sizes and image sizes (tested at sizes other than the
export size, with batch 2). What the trace bakes in: Python branches on shapes (``upsample_to`` skips the
resize when the sizes already match, which never happens between the network's strides; the
``MIN_INPUT_SIZE`` check, which the ONNX predictor repeats) and the variant's structure.

Named inputs: ``image`` (B, 3, H, W) float32 in [0, 1]; ``intrinsics`` (B, 4) fx, fy, cx, cy in px, only
for focal-aware models. Outputs (those of the variant): ``depth`` (B, 1, H, W), ``semantic`` (B, K, H, W)
logits. BatchNorm is folded into the convolutions by the exporter (eval mode, constant folding).
Metadata (``metadata_props``): ``sosd_config`` (the resolved config as JSON), ``class_names`` (JSON list),
``target_kind`` (depth | disparity), ``variant``, ``inputs``, ``outputs``, ``export_size``, versions.
"""
from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn

DEFAULT_OPSET = 17
OUTPUT_ORDER = ("depth", "semantic")


class ExportWrapper(nn.Module):
    """SOSDNet with positional tensor inputs and a tuple of outputs (in :data:`OUTPUT_ORDER`), for tracing."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.output_names = output_names(model)
        self.input_names = input_names(model)

    def forward(self, image: torch.Tensor, intrinsics: torch.Tensor | None = None):
        out = self.model(image, intrinsics)
        return tuple(out[k] for k in self.output_names)


def output_names(model) -> list[str]:
    return [k for k, present in zip(OUTPUT_ORDER, (model.has_depth, model.has_semantic)) if present]


def input_names(model) -> list[str]:
    return ["image", "intrinsics"] if needs_intrinsics(model) else ["image"]


def needs_intrinsics(model) -> bool:
    return model.cfg.variant == "sosd" and bool(model.cfg.focal_aware)


def example_inputs(model, height: int, width: int, batch: int = 1) -> tuple:
    """A random image (and plausible intrinsics for focal-aware models) to trace ``model`` with."""
    from sosd.models.sosd_net import MIN_INPUT_SIZE

    if min(height, width) < MIN_INPUT_SIZE:
        raise ValueError(f"export size {height}x{width}: each side must be at least {MIN_INPUT_SIZE} px")
    g = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    image = torch.rand(batch, 3, height, width, generator=g).to(device)
    if not needs_intrinsics(model):
        return (image,)
    f = float(model.cfg.focal_ref)
    k = torch.tensor([[f, f, width / 2, height / 2]] * batch, device=device)
    return image, k


def export_metadata(cfg, meta: dict | None, height: int, width: int, model=None, **extra) -> dict[str, str]:
    """String metadata stored with an exported model: what :class:`sosd.inference.Predictor` needs."""
    from sosd.config import to_dict
    from sosd.version import __version__

    meta = meta or {}
    class_names = meta.get("class_names")
    if not isinstance(class_names, str):
        class_names = json.dumps(list(class_names or []))
    target_kind = meta.get("target_kind") or ("disparity" if cfg.data.preset == "street" else "depth")
    out = {
        "sosd_config": json.dumps(to_dict(cfg)),
        "class_names": class_names,
        "target_kind": target_kind,
        "variant": cfg.model.variant,
        "export_size": f"{height}x{width}",
        "sosd_version": __version__,
        "torch_version": torch.__version__,
    }
    if model is not None:
        out["inputs"] = json.dumps(input_names(model))
        out["outputs"] = json.dumps(output_names(model))
    out.update({k: str(v) for k, v in extra.items()})
    return out


@contextmanager
def eval_mode(model: nn.Module):
    """Eval mode inside, the previous mode (of every submodule) restored after."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, t in modes.items():
            m.training = t


@contextmanager
def quiet_tracing():
    """Hide the tracer's and exporter's expected warnings (shape checks turned into constants, the legacy
    exporter's deprecation notice); others still show."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..*deprecated.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*feature will be removed.*")
        yield


def export_onnx(model: nn.Module, path: str | Path, height: int, width: int, opset: int = DEFAULT_OPSET,
                metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` (a :class:`sosd.models.SOSDNet`) as ONNX to ``path``, traced at ``height`` x
    ``width``, with dynamic batch / height / width and ``metadata`` in ``metadata_props``."""
    from sosd.errors import require_module

    onnx = require_module("onnx", "export", "ONNX export")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportWrapper(model)
    ins, outs = wrapper.input_names, wrapper.output_names
    dynamic_axes = {"image": {0: "batch", 2: "height", 3: "width"}}
    if "intrinsics" in ins:
        dynamic_axes["intrinsics"] = {0: "batch"}
    for k in outs:
        dynamic_axes[k] = {0: "batch", 2: "height", 3: "width"}
    with eval_mode(wrapper), torch.no_grad(), quiet_tracing():
        args = example_inputs(model, height, width)
        torch.onnx.export(wrapper, args, str(path), dynamo=False, input_names=ins, output_names=outs,
                          dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True)
    proto = onnx.load(str(path))
    proto.producer_name = "sosd"
    # the exporter's shape inference names the outputs' channel dimension symbolically (the same name for
    # depth and semantic); declare the real (batch, C, height, width)
    channels = {"depth": 1, "semantic": model.cfg.num_classes}
    for o in proto.graph.output:
        dims = o.type.tensor_type.shape.dim
        for d, v in zip(dims, ("batch", channels[o.name], "height", "width")):
            d.Clear()
            if isinstance(v, str):
                d.dim_param = v
            else:
                d.dim_value = v
    props = {"inputs": json.dumps(ins), "outputs": json.dumps(outs), "export_size": f"{height}x{width}",
             "exporter": "torch.onnx legacy (TorchScript trace)", "opset": str(opset), **(metadata or {})}
    del proto.metadata_props[:]
    for k, v in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, str(v)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file, as a dict (reads only the model header and graph, no session)."""
    from sosd.errors import require_module

    onnx = require_module("onnx", "export", "ONNX export")

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
