"""ONNX Runtime inference with the interface of :class:`sosd.inference.Predictor`.

    from sosd.export.onnx_runtime import OnnxPredictor
    p = OnnxPredictor("model.onnx")          # written by `sosd export --format onnx`
    out = p.predict("photo.jpg")             # Prediction: depth (H, W), labels (H, W), target_kind, class_names

``OnnxPredictor`` *is* a ``Predictor`` whose model is an :class:`OnnxModel` (a parameter-free module that
runs the session), so the resize to the training resolution, the intrinsics scaling, the disparity
rescaling and the label argmax are ``Predictor``'s own code, not a copy. The config, class names and target
kind come from the ONNX file's metadata, so the ``.onnx`` file alone is enough.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from sosd.errors import SOSDError
from sosd.inference import Predictor


def make_session(path: str | Path, threads: int | None = None, providers: list[str] | None = None,
                 optimization: str = "all", spinning: bool = True):
    """An ``onnxruntime.InferenceSession``: all graph optimisations (``optimization``: all | extended |
    basic | disabled), ``threads`` intra-op threads (None: onnxruntime's default), one inter-op thread.
    ``spinning=False`` makes idle intra-op threads sleep instead of busy-waiting for the next call (for
    benchmarks that interleave ONNX Runtime with other work on the same cores)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise SOSDError("the onnxruntime backend needs the onnxruntime package: pip install onnxruntime "
                        "(or pip install 'sosd[export]')") from None
    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[optimization]
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = Path(path)
    if not path.is_file():
        raise SOSDError(f"ONNX model {path} does not exist (write one with `sosd export --format onnx`)")
    try:
        return ort.InferenceSession(str(path), sess_options=so,
                                    providers=providers or ["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise SOSDError(f"cannot load {path} as an ONNX model: {e}. The onnxruntime backend needs a .onnx "
                        "file written by `sosd export --format onnx`, not a checkpoint") from None


class OnnxModel(nn.Module):
    """A session behind SOSDNet's call signature: ``model(image, intrinsics=None)`` -> dict of tensors.

    Args:
        session: an ``onnxruntime.InferenceSession`` of a ``sosd export`` file.
        cfg: its :class:`sosd.config.ModelConfig` (``variant``, ``focal_aware``: what Predictor reads).
    """

    def __init__(self, session, cfg):
        super().__init__()
        self.session, self.cfg = session, cfg
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.has_depth, self.has_semantic = "depth" in self.output_names, "semantic" in self.output_names

    def forward(self, image: torch.Tensor, intrinsics: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        from sosd.models.sosd_net import MIN_INPUT_SIZE, InputSizeError

        if image.ndim != 4 or image.shape[1] != 3:
            raise InputSizeError(f"expected images of shape (B, 3, H, W), got {tuple(image.shape)}")
        if min(image.shape[-2:]) < MIN_INPUT_SIZE:  # the check the trace dropped (see onnx_export)
            raise InputSizeError(f"image of {image.shape[-2]}x{image.shape[-1]} is too small for the network: "
                                 f"each side must be at least {MIN_INPUT_SIZE} px")
        feeds = {"image": image.detach().to("cpu", torch.float32).contiguous().numpy()}
        if "intrinsics" in self.input_names:
            if intrinsics is None:
                raise ValueError("focal_aware semantic-to-depth needs the intrinsics (B,4) of each sample")
            feeds["intrinsics"] = intrinsics.detach().to("cpu", torch.float32).contiguous().numpy()
        outs = self.session.run(self.output_names, feeds)
        return {k: torch.from_numpy(v) for k, v in zip(self.output_names, outs)}


class OnnxPredictor(Predictor):
    """``Predictor`` on an exported ONNX model: ``.predict(image)``, ``.predict_batch(images)`` with the
    same outputs (:class:`sosd.inference.Prediction`) as the PyTorch predictor.

    Args:
        onnx_path: a file written by ``sosd export --format onnx``.
        native_size: run at the input's size instead of the training resolution (the graph is dynamic).
        threads: ONNX Runtime intra-op threads (None: its default, all cores).
        providers: execution providers (default ``["CPUExecutionProvider"]``).
    """

    def __init__(self, onnx_path: str | Path, native_size: bool = False, threads: int | None = None,
                 providers: list[str] | None = None):
        from sosd.config import ConfigError, config_from_dict

        self.path = Path(onnx_path)
        self.session = make_session(self.path, threads, providers)
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if "sosd_config" not in meta:
            raise SOSDError(f"{self.path} has no sosd config in its metadata: export it with `sosd export`")
        try:
            cfg = config_from_dict(json.loads(meta["sosd_config"]))
        except (ConfigError, ValueError) as e:
            raise SOSDError(f"{self.path}: unreadable sosd config in the metadata ({e})") from None
        super().__init__(OnnxModel(self.session, cfg.model), cfg, meta, device="cpu", native_size=native_size)
        self.metadata = meta


def load_onnx(path: str | Path, native_size: bool = False, threads: int | None = None) -> OnnxPredictor:
    """An :class:`OnnxPredictor` (the counterpart of :func:`sosd.inference.load`)."""
    return OnnxPredictor(path, native_size=native_size, threads=threads)
