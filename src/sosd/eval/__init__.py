"""Evaluation: the metrics of §4.1 (SceneMetrics), the paper's tables, prediction files, offline scoring.

Names are imported lazily, so ``sosd --help`` (which imports ``sosd.eval.command``) does not load torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "SceneMetrics": "sosd.eval.metrics",
    "format_table": "sosd.eval.metrics",
    "result_keys": "sosd.eval.metrics",
    "DepthMetrics": "sosd.eval.depth_metrics",
    "EigenDepthMetrics": "sosd.eval.depth_metrics",
    "DisparityMAE": "sosd.eval.depth_metrics",
    "make_depth_metric": "sosd.eval.depth_metrics",
    "describe_protocol": "sosd.eval.depth_metrics",
    "eigen_crop": "sosd.eval.depth_metrics",
    "SegmentationMetrics": "sosd.eval.seg_metrics",
    "PredictionFormat": "sosd.eval.prediction_files",
    "NYU": "sosd.eval.prediction_files",
    "CITYSCAPES": "sosd.eval.prediction_files",
    "format_for": "sosd.eval.prediction_files",
    "write_prediction": "sosd.eval.prediction_files",
    "read_prediction": "sosd.eval.prediction_files",
    "evaluate_predictions": "sosd.eval.offline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sosd.eval' has no attribute {name!r}")


def __dir__():
    return __all__
