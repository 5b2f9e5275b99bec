"""Evaluate a model on a dataset: run it over the set, accumulate :class:`SceneMetrics` (§4.1)."""
from __future__ import annotations

import torch
from tqdm import tqdm

from sosd.data.sample import to_tensors
from sosd.eval.metrics import SceneMetrics


def batches(dataset, batch_size: int, indices=None):
    """Deterministic, in-order batches of ``dataset`` (a SceneDataset), collated to tensors."""
    from torch.utils.data import DataLoader, Subset

    ds = dataset if indices is None else Subset(dataset, list(indices))
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)


@torch.no_grad()
def evaluate_model(model, dataset, depth_protocol: str = "paper", batch_size: int = 4, device="cpu",
                   progress: bool = True, metrics: SceneMetrics | None = None, shard: bool | None = None) -> dict:
    """Metrics of ``model`` on every sample of ``dataset``: the keys of ``sosd.eval.metrics.result_keys``.

    Under torch.distributed (world > 1), ``shard`` (default: True there) makes each rank evaluate samples
    rank::world and ``compute()`` sum the metric states over ranks (sums, not averages of averages), so
    every rank gets the metrics of the whole set; all ranks must call this. ``shard=False``: every rank
    evaluates the whole set on its own (no reduction)."""
    import torch.distributed as dist

    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    shard = world > 1 if shard is None else shard and world > 1
    indices = range(dist.get_rank(), len(dataset), world) if shard else None
    was_training = model.training
    model.eval()
    m = metrics or SceneMetrics(dataset.num_classes, dataset.target_kind, depth_protocol,
                                **({} if shard or world == 1 else {"sync_on_compute": False})).to(device)
    try:
        for b in tqdm(batches(dataset, batch_size, indices), desc="evaluate", disable=not progress, leave=False):
            b = {k: v.to(device) for k, v in b.items()}
            out = model(b["image"], b["intrinsics"])
            labels = out["semantic"].argmax(1) if "semantic" in out else None
            m.update(out.get("depth"), labels, b["target"], b["valid"], b["labels"])
        return m.compute()
    finally:
        model.train(was_training)


@torch.no_grad()
def prediction_rows(model, dataset, n: int, device="cpu") -> list[dict]:
    """Numpy arrays for the first ``n`` samples: image, target, valid, labels, pred depth, pred labels."""
    was_training = model.training
    model.eval()
    rows = []
    for i in range(min(n, len(dataset))):
        s = dataset.sample(i)  # read once: the picture shows exactly what the model was given
        if dataset.transform is not None:
            s = dataset.transform(s, i)
        b = to_tensors(s)
        out = model(b["image"][None].to(device), b["intrinsics"][None].to(device))
        rows.append({
            "sample": s,
            "depth": out["depth"][0, 0].cpu().numpy() if "depth" in out else None,
            "labels": out["semantic"][0].argmax(0).cpu().numpy() if "semantic" in out else None,
        })
    model.train(was_training)
    return rows


def predictions_picture(model, dataset, path, n: int = 4, device="cpu") -> None:
    """``predictions.png``: input | GT depth | predicted depth | GT labels | predicted labels, n rows.
    GT and predicted depth share one colour range per row, so they can be compared by eye."""
    import numpy as np

    from sosd.viz import colorize_depth, colorize_labels, contact_sheet

    rows, titles = [], []
    for r in prediction_rows(model, dataset, n, device):
        s = r["sample"]
        vals = s.target[s.valid]
        lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
        row = [s.image]
        unit = "m" if s.target_kind == "depth" else "px"
        if r["depth"] is not None:
            row += [colorize_depth(s.target, s.valid, vmin=lo, vmax=hi),
                    colorize_depth(r["depth"], np.ones_like(s.valid), vmin=lo, vmax=hi)]
        if r["labels"] is not None:
            row += [colorize_labels(s.labels, dataset.num_classes),
                    colorize_labels(r["labels"], dataset.num_classes)]
        rows.append(row)
        titles.append(f"#{s.index}\n{lo:.1f}-{hi:.1f} {unit}")
    cols = _column_titles(model)
    contact_sheet(rows, cols, path, row_titles=titles)


def _column_titles(model) -> list[str]:
    cols = ["input"]
    if model.has_depth:
        cols += ["GT depth", "predicted depth"]
    if model.has_semantic:
        cols += ["GT labels", "predicted labels"]
    return cols
