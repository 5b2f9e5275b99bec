"""Offline evaluation: score a folder of prediction files (ours or another codebase's) against a dataset.

Missing predictions *inside* a file (a pixel with value "none"):

* labels: counted as wrong (a miss for the pixel's ground-truth class), as the Cityscapes toolkit does;
  reported as ``missing_label_pixels``.
* depth/disparity: there is no well-defined error value to fill in, so valid pixels without a prediction
  are *excluded* from the depth metrics and counted in ``missing_depth_pixels``; ``depth_coverage`` =
  evaluated / (evaluated + missing). Compare methods only at equal (normally full) coverage.

A missing, unreadable or wrongly sized/typed *file* is an error (:class:`SOSDError` naming the file).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from sosd.errors import SOSDError
from sosd.eval.depth_metrics import describe_protocol, eigen_crop
from sosd.eval.metrics import SceneMetrics
from sosd.eval.prediction_files import format_for, get_format, read_prediction

TASKS = ("depth", "semantic")


def evaluate_predictions(pred_dir, dataset, fmt=None, depth_protocol: str = "paper", progress: bool = True,
                         tasks=TASKS) -> dict:
    """Score the prediction files in ``pred_dir`` for every sample of ``dataset`` (any ``SceneDataset``;
    read with ``dataset.sample(i)``, i.e. without its training transform, at its evaluated size).

    fmt: "nyu" | "cityscapes" | PredictionFormat | None (= the format of ``dataset.target_kind``).
    tasks: which predictions to read and score: "depth" (depth or disparity) and/or "semantic".
    Returns :meth:`SceneMetrics.compute` + :meth:`SceneMetrics.counts` + ``protocol`` (a sentence),
    ``format``, ``predictions`` (the folder), ``target_kind`` and, under eigen, ``eigen_crop``.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise SOSDError(f"prediction folder {pred_dir} does not exist")
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise SOSDError(f"unknown task(s) {unknown or tasks}; choose from {', '.join(TASKS)}")
    target_kind = getattr(dataset, "target_kind", "depth")
    f = format_for(target_kind) if fmt is None else get_format(fmt)
    if f.target_kind != target_kind:
        raise SOSDError(f"prediction format '{f.name}' holds {f.target_kind}, but this dataset's targets are "
                        f"{target_kind}; use format '{format_for(target_kind).name}'")
    if target_kind == "disparity" and depth_protocol != "paper":
        raise SOSDError(f"depth protocol '{depth_protocol}' applies to metric depth (NYU) only; disparity is "
                        f"scored as mean absolute error over the set")
    if depth_protocol not in ("paper", "eigen"):
        raise SOSDError(f"unknown depth protocol '{depth_protocol}'; choose paper or eigen")
    n = len(dataset)
    if n == 0:
        raise SOSDError("the dataset has no samples to evaluate")

    metrics = SceneMetrics(dataset.num_classes, target_kind=target_kind, depth_protocol=depth_protocol,
                           ignore_index=getattr(dataset, "ignore_index", 255))
    use_depth, use_seg = "depth" in tasks, "semantic" in tasks
    shapes = set()
    it = range(n)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"eval {pred_dir.name or pred_dir}", file=sys.stderr, unit="img")
    for i in it:
        s = dataset.sample(i)
        if not s.id:
            raise SOSDError(f"sample {i} of the dataset has no id, so its prediction file cannot be named")
        shape = tuple(s.target.shape)
        shapes.add(shape)
        pred = read_prediction(pred_dir, s.id, f, shape=shape, num_classes=dataset.num_classes,
                               depth=use_depth, labels=use_seg)
        target = torch.from_numpy(np.ascontiguousarray(s.target, dtype=np.float32))[None]
        valid = torch.from_numpy(np.ascontiguousarray(s.valid, dtype=bool))[None]
        labels = torch.from_numpy(np.ascontiguousarray(s.labels, dtype=np.int64))[None]
        pd = pv = pl = None
        if use_depth:
            v = torch.from_numpy(pred.values)[None]
            pv = torch.isfinite(v)
            pd = torch.nan_to_num(v, nan=0.0)
        if use_seg:
            pl = torch.from_numpy(pred.labels)[None]
        metrics.update(pd, pl, target, valid, labels, pred_valid=pv)

    out = metrics.compute()
    out.update(metrics.counts())
    out["protocol"] = describe_protocol(target_kind, depth_protocol)
    out["format"] = f.name
    out["target_kind"] = target_kind
    out["tasks"] = list(tasks)
    out["predictions"] = str(pred_dir)
    if depth_protocol == "eigen":
        out["eigen_crop"] = {f"{h}x{w}": list(eigen_crop(h, w)) for h, w in sorted(shapes)}
    return out
