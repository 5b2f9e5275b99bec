"""TorchScript export by ``torch.jit.trace`` (``torch.jit.script`` cannot compile SOSDNet).

Why trace: scripting fails on the backbone's ``super().forward`` in ``BatchNormAct2d`` (timm's layout),
and would also need the ``scale_grad`` autograd Function, the optional modules of the variants and the
dict outputs rewritten. Tracing runs the eval model once and records the tensor ops.

Limits of the trace (also: ``torch.jit`` is deprecated in torch 2.13 and prints a warning, silenced here):
- it is the eval/inference graph only (BatchNorm with running statistics, no gradient scaling);
- sizes the model reads from its input (``x.shape``) are recorded as ``aten::size`` calls, so the traced
  module accepts other batch sizes and image sizes (tested), but Python decisions taken on shapes are
  frozen: the ``MIN_INPUT_SIZE`` check disappears, and ``upsample_to``'s "same size: skip" branch is
  fixed to "resize" (never the same size between the network's strides, so this is exact);
- the variant, ``focal_aware`` and the EM ``alphas`` are fixed; inputs are positional:
  ``module(image)`` or ``module(image, intrinsics)`` -> tuple in ``meta["outputs"]`` order.

The metadata of :func:`sosd.export.onnx_export.export_metadata` travels as the extra file ``sosd_meta.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from sosd.export.onnx_export import ExportWrapper, eval_mode, example_inputs, quiet_tracing

META_FILE = "sosd_meta.json"


def trace(model: nn.Module, height: int, width: int) -> torch.jit.ScriptModule:
    """The traced eval graph of ``model`` (a SOSDNet) at ``height`` x ``width`` (sizes stay dynamic)."""
    wrapper = ExportWrapper(model)
    with eval_mode(wrapper), torch.no_grad(), quiet_tracing():
        args = example_inputs(model, height, width)
        traced = torch.jit.trace(wrapper, args, check_trace=False)
    return traced


def export_torchscript(model: nn.Module, path: str | Path, height: int, width: int,
                       metadata: dict[str, str] | None = None) -> Path:
    """Trace ``model`` and save it to ``path`` with ``metadata`` (plus inputs/outputs) as ``sosd_meta.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportWrapper(model)
    meta = {"inputs": json.dumps(wrapper.input_names), "outputs": json.dumps(wrapper.output_names),
            "export_size": f"{height}x{width}", "exporter": "torch.jit.trace", **(metadata or {})}
    traced = trace(model, height, width)
    with quiet_tracing():
        torch.jit.save(traced, str(path), _extra_files={META_FILE: json.dumps(meta)})
    return path


def load_torchscript(path: str | Path, map_location: str = "cpu") -> tuple[torch.jit.ScriptModule, dict]:
    """(traced module in eval mode, metadata dict) of a file written by :func:`export_torchscript`."""
    extra = {META_FILE: ""}
    with quiet_tracing():
        module = torch.jit.load(str(path), map_location=map_location, _extra_files=extra)
    meta = json.loads(extra[META_FILE]) if extra[META_FILE] else {}
    return module.eval(), meta
