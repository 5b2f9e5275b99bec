"""Deployment: ONNX and TorchScript export, BatchNorm folding, and an ONNX Runtime predictor.

- :mod:`sosd.export.onnx_export`: ``export_onnx`` (dynamic batch, height and width; named inputs
  ``image`` [+ ``intrinsics``] and outputs ``depth`` / ``semantic``; the sosd config, class names and target
  kind in the model's ``metadata_props``);
- :mod:`sosd.export.torchscript`: ``export_torchscript`` (``torch.jit.trace``; same metadata as an extra file);
- :mod:`sosd.export.fuse`: ``fuse_bn`` (BatchNorm folded into the preceding convolution, for inference);
- :mod:`sosd.export.onnx_runtime`: ``OnnxPredictor``, the ``.predict()`` interface of
  :class:`sosd.inference.Predictor` on an ONNX Runtime session;
- :mod:`sosd.export.command`: ``sosd export``.

This module holds what they share and keeps imports light (no onnx / onnxruntime import here).
"""
from __future__ import annotations

import numpy as np

# How close an exported model must be to the PyTorch eval model (checked by `sosd export` and the tests).
# Exported graphs differ from eager PyTorch by float32 rounding only (BatchNorm folded into the
# convolutions, other kernels, other summation orders). Errors are measured relative to the output's
# largest magnitude, because that is the scale float32 rounding works at: eager float32 itself is ~1e-5 of
# it away from float64 here, and logits of a confident model (|logit| ~ 50) carry absolute errors of
# ~1e-3 that say nothing about the export. For O(1)..10 logits, 1e-4 relative is <= 1e-3 absolute.
TOLERANCES = {
    "depth_rel": 1e-4,          # max |a - b| / max |b| (depth > 0: softplus)
    "semantic_rel": 1e-4,       # max |a - b| / max(1, max |b|) over the logits
    "argmax_agreement": 0.999,  # share of pixels whose argmax class is the same (near-ties may flip)
}


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def compare_outputs(reference: dict, other: dict) -> dict:
    """Errors of ``other`` against ``reference`` (dicts ``depth`` / ``semantic`` of tensors or arrays of
    the same shapes): ``depth_abs``, ``depth_rel``, ``semantic_abs``, ``semantic_rel``, ``argmax_agreement``
    for the keys present (see :data:`TOLERANCES`), and ``ok`` (all within the tolerances)."""
    keys = set(reference)
    if keys != set(other):
        raise ValueError(f"outputs differ: reference has {sorted(keys)}, other has {sorted(other)}")
    for k in sorted(keys):
        if tuple(other[k].shape) != tuple(reference[k].shape):
            raise ValueError(f"{k}: shape {tuple(other[k].shape)} != reference {tuple(reference[k].shape)}")
    res: dict = {}
    if "depth" in keys:
        a, b = _np(other["depth"]), _np(reference["depth"])
        res["depth_abs"] = float(np.abs(a - b).max())
        res["depth_rel"] = res["depth_abs"] / max(float(np.abs(b).max()), 1e-12)
    if "semantic" in keys:
        a, b = _np(other["semantic"]), _np(reference["semantic"])
        res["semantic_abs"] = float(np.abs(a - b).max())
        res["semantic_rel"] = res["semantic_abs"] / max(1.0, float(np.abs(b).max()))
        res["argmax_agreement"] = float((a.argmax(1) == b.argmax(1)).mean())
    res["ok"] = bool(res.get("depth_rel", 0.0) <= TOLERANCES["depth_rel"]
                     and res.get("semantic_rel", 0.0) <= TOLERANCES["semantic_rel"]
                     and res.get("argmax_agreement", 1.0) >= TOLERANCES["argmax_agreement"])
    return res


def format_comparison(res: dict) -> str:
    parts = []
    if "depth_rel" in res:
        parts.append(f"depth max error {res['depth_rel']:.1e} of the max depth (abs {res['depth_abs']:.1e})")
    if "semantic_abs" in res:
        parts.append(f"logits max error {res['semantic_rel']:.1e} relative (abs {res['semantic_abs']:.1e}), "
                     f"argmax agreement {100 * res['argmax_agreement']:.3f} %")
    return ", ".join(parts)


__all__ = ["TOLERANCES", "compare_outputs", "format_comparison"]
