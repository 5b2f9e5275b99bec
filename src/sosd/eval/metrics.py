"""One object for a whole evaluation (segmentation + depth or disparity) and the paper's result tables.

:class:`SceneMetrics` is a ``torch.nn.Module`` holding three torchmetrics ``Metric`` objects (confusion
matrix, depth/disparity sums, image count); each reduces across ranks by summing raw sums/counts when
``compute()`` is called under torch.distributed, so every rank must call ``compute()``.
"""
from __future__ import annotations

import math
import warnings

import torch
from torchmetrics.aggregation import SumMetric

from sosd.data.sample import IGNORE_INDEX
from sosd.eval.depth_metrics import EIGEN_KEYS, describe_protocol, make_depth_metric
from sosd.eval.seg_metrics import SegmentationMetrics

SEG_KEYS = ("miou", "mean_acc", "pixel_acc")
PAPER_DEPTH_KEYS = ("rel", "rms", "log10", "delta1", "delta2", "delta3")
DISPARITY_KEYS = ("disparity_mae_px",)


def result_keys(target_kind: str = "depth", depth_protocol: str = "paper") -> tuple[str, ...]:
    """The keys of :meth:`SceneMetrics.compute`, in order."""
    if target_kind == "disparity":
        task = DISPARITY_KEYS
    else:
        task = EIGEN_KEYS if depth_protocol == "eigen" else PAPER_DEPTH_KEYS
    return SEG_KEYS + task + ("n_images", "n_valid_pixels", "n_labelled_pixels", "depth_protocol")


class SceneMetrics(torch.nn.Module):
    """Segmentation + depth (or disparity) metrics of §4.1 over an evaluated set.

    Args:
        num_classes: K; labels are 0..K-1, ``ignore_index`` = unlabelled (ground truth) / no prediction.
        target_kind: "depth" (metres; NYU metrics) or "disparity" (px; Cityscapes MAE).
        depth_protocol: "paper" (default) or "eigen" (depth only); see :mod:`sosd.eval.depth_metrics`.
        metric_kwargs: passed to every torchmetrics ``Metric`` (e.g. ``process_group``, ``sync_on_compute``).

    ``compute()`` returns Python values with exactly the keys of :func:`result_keys`: fractions (miou 0.45,
    not 45), errors in metres / px, counts as ints, and ``depth_protocol``. A task that was never given a
    prediction, or had no valid pixel, reports NaN with its pixel count 0. :meth:`counts` gives the
    pixels without prediction and the clamped depth predictions.
    """

    def __init__(self, num_classes: int, target_kind: str = "depth", depth_protocol: str = "paper",
                 ignore_index: int = IGNORE_INDEX, **metric_kwargs):
        super().__init__()
        if target_kind not in ("depth", "disparity"):
            raise ValueError(f"unknown target_kind {target_kind!r}; choose depth or disparity")
        self.num_classes, self.target_kind, self.ignore_index = num_classes, target_kind, ignore_index
        self.depth_protocol = depth_protocol
        self.seg = SegmentationMetrics(num_classes, ignore_index=ignore_index, **metric_kwargs)
        self.depth = make_depth_metric(target_kind, depth_protocol, **metric_kwargs)
        self.images = SumMetric(**metric_kwargs)

    @torch.no_grad()
    def update(self, pred_depth, pred_labels, target, valid, labels, pred_valid=None) -> None:
        """Add a batch.

        pred_depth: (B,1,H,W) or (B,H,W) depth in m / disparity in px, or None (no depth prediction).
        pred_labels: (B,H,W) integer ids (``ignore_index`` = no prediction) or (B,K,H,W) scores, or None.
        target, valid: (B,1,H,W) or (B,H,W) ground truth and its validity; labels: (B,H,W).
        pred_valid: optional (B,[1,]H,W) bool, False where there is no depth prediction: those valid pixels
        are excluded and counted as missing.
        """
        b = target.shape[0] if target.ndim >= 3 else 1
        self.images.update(torch.tensor(float(b), device=target.device))
        if pred_depth is not None:
            self.depth.update(pred_depth, target, valid, pred_valid)
        if pred_labels is not None:
            self.seg.update(pred_labels, labels)

    def _computed(self) -> tuple[dict, dict, float]:
        with warnings.catch_warnings():  # a task without predictions is reported as NaN, not warned about
            warnings.filterwarnings("ignore", message=".*was called before the ``update`` method.*")
            return self.seg.compute(), self.depth.compute(), float(self.images.compute())

    def compute(self) -> dict:
        seg, dep, n_images = self._computed()
        out: dict = {k: float(seg[k]) for k in SEG_KEYS}
        for k in result_keys(self.target_kind, self.depth_protocol)[len(SEG_KEYS):-4]:
            out[k] = float(dep[k])
        out["n_images"] = int(round(n_images))
        out["n_valid_pixels"] = int(dep["n_valid_pixels"])
        out["n_labelled_pixels"] = int(seg["n_labelled_pixels"])
        out["depth_protocol"] = self.depth_protocol
        return out

    def counts(self) -> dict:
        """Pixels without prediction and clamped predictions (ints), reduced across ranks like compute():
        missing_depth_pixels (valid, no depth prediction: excluded), missing_label_pixels (labelled, no
        label prediction: counted wrong), clamped_depth_pixels (depth predictions <= 0 floored to 1e-3 m),
        depth_coverage = evaluated / (evaluated + missing) depth pixels (NaN if both are 0)."""
        seg, dep, _ = self._computed()
        n, miss = int(dep["n_valid_pixels"]), int(dep["missing_pixels"])
        out = {
            "missing_depth_pixels": miss,
            "missing_label_pixels": int(seg["missing_pixels"]),
            "clamped_depth_pixels": int(dep["clamped_pixels"]),
            "depth_coverage": n / (n + miss) if n + miss else float("nan"),
        }
        if "n_depth_images" in dep:
            out["n_depth_images"] = int(dep["n_depth_images"])
        return out

    def per_class_iou(self) -> list[float]:
        """IoU of each class (NaN for a class absent from both prediction and ground truth)."""
        seg, _, _ = self._computed()
        return [float(v) for v in seg["iou_per_class"].reshape(-1)]  # torchmetrics squeezes K = 1

    def reset(self) -> None:
        self.seg.reset()
        self.depth.reset()
        self.images.reset()


# ------------------------------------------------------------------------------------------- tables

_NYU_COLUMNS = [("Mean IoU", "miou"), ("Mean Accuracy", "mean_acc"), ("Pixel Accuracy", "pixel_acc"),
                ("rel", "rel"), ("rms", "rms"), ("log10", "log10"),
                ("δ<1.25", "delta1"), ("δ<1.25²", "delta2"), ("δ<1.25³", "delta3")]
_EIGEN_EXTRA = [("sq_rel", "sq_rel"), ("log_rms", "log_rms"), ("silog", "silog")]


def _cell(results: dict, key: str, scale: float = 1.0, digits: int = 3) -> str:
    v = results.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{float(v) * scale:.{digits}f}"


def format_table(results: dict, layout: str = "nyu", method: str | None = None) -> str:
    """A Markdown table in the paper's layout, with the protocol named in a line under it.

    layout "nyu": Tables 2/3 columns (Mean IoU, Mean Accuracy, Pixel Accuracy | rel, rms, log10, δ1-3),
    fractions with 3 decimals, plus sq_rel, log_rms, silog under the eigen protocol.
    layout "cityscapes": Tables 1/4 columns (Segmentation mIoU [%], Disparity error [px]).
    ``method`` adds a first "Method" column. Missing or NaN values print as "-" (as in the paper).
    """
    if layout == "nyu":
        cols = [(name, key, 1.0, 3) for name, key in _NYU_COLUMNS]
        if results.get("depth_protocol") == "eigen":
            cols += [(name, key, 1.0, 3) for name, key in _EIGEN_EXTRA]
    elif layout == "cityscapes":
        cols = [("Segmentation mIoU [%]", "miou", 100.0, 1), ("Disparity error [px]", "disparity_mae_px", 1.0, 2)]
    else:
        raise ValueError(f"unknown table layout {layout!r}; choose nyu or cityscapes")
    names = [c[0] for c in cols]
    cells = [_cell(results, key, scale, digits) for _, key, scale, digits in cols]
    if method is not None:
        names, cells = ["Method"] + names, [method] + cells
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join(["---"] * len(names)) + "|",
             "| " + " | ".join(cells) + " |", ""]
    kind = "disparity" if ("disparity_mae_px" in results and "rel" not in results) else "depth"
    protocol = results.get("depth_protocol", "paper")
    lines.append(f"Protocol: {describe_protocol(kind, protocol)}.")
    counts = []
    for key, what in (("n_images", "images"), ("n_valid_pixels", "valid depth pixels" if kind == "depth"
                                                else "valid disparity pixels"),
                      ("n_labelled_pixels", "labelled pixels"), ("missing_depth_pixels", "valid pixels without "
                                                                  "depth prediction (excluded)"),
                      ("missing_label_pixels", "labelled pixels without label prediction (counted wrong)")):
        if key in results:
            counts.append(f"{results[key]} {what}")
    if counts:
        lines.append("Counts: " + ", ".join(counts) + ".")
    return "\n".join(lines)
