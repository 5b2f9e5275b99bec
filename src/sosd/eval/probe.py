"""Semantic objectness, measured (§3.1-3.2.3, eq. (3), Fig. 8): does the semantic-to-depth unit learn it?

The paper says the unit's two branches come to represent an object's physical area ΔXΔY (``area_3d``,
from the Common Representation) and its inverse image area (ΔuΔv)^-1 (``area_2d``, from the Semantic
Feature), so that the cue sqrt(area_3d · area_2d) carries depth. The scene generator knows ΔX, ΔY, Δu, Δv
and d of every object, so we can check. For each object that is unoccluded, inside the image and at least
``min_px`` pixels large, each map is averaged over the object's pixels (maps upsampled bilinearly from
stride 4) and compared with the truth by Spearman's rank correlation:

- ``area_3d`` vs ΔXΔY (its silhouette area ``area_m2``), ``area_2d`` vs 1/(ΔuΔv), the cue vs d;
- per class too (within a class ΔXΔY varies little, so a high overall ρ can be the class alone);
- a linear probe (ridge, 5-fold cross-validated) of the pooled **depth-path features** (the decoder's Depth
  Feature) for log ΔXΔY and log 1/(ΔuΔv): does a network without the unit (MTL) learn the same quantities?
- the cue's contribution to the depth: the depth error with the cue replaced by its mean over the set.

Controls are other checkpoints passed to the same command (an untrained network: ``--untrained``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sosd.errors import SOSDError

MAPS = ("area_3d", "area_2d", "cue")


@dataclass
class ProbeConfig:
    scenes: int = 64          # generator scenes probed (the test split's seed stream)
    min_px: int = 64          # smallest object probed, in pixels
    folds: int = 5            # cross-validation folds of the linear probe
    ridge: float = 1e-2       # ridge penalty of the linear probe (features standardised)


def _spearman(x, y) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def probe_scenes(cfg, n: int):
    """(sample, objects) of the first ``n`` test scenes of the run's generator config, at its size."""
    from sosd.data.factory import SYNTHETIC_SPLIT_SEEDS
    from sosd.data.synthetic import render_scene

    d = cfg.data
    if d.dataset != "synthetic":
        raise SOSDError(f"the probe needs the scene generator's object records; this run trained on "
                        f"'{d.dataset}' (train on data.dataset=synthetic, or pass --preset)")
    seed = d.seed + SYNTHETIC_SPLIT_SEEDS["test"]
    return [render_scene(d.preset, seed, i, d.height, d.width, tuple(d.focal_scale), return_objects=True,
                         size_scale=tuple(d.size_scale)) for i in range(n)]


@torch.no_grad()
def object_table(model, scenes, min_px: int) -> list[dict]:
    """One row per probed object: truth (ΔXΔY, 1/ΔuΔv, d, class) and each map pooled over its pixels, plus
    the pooled Depth Feature (for the linear probe)."""
    model.eval()
    feats = {}
    hook = model.decoder.register_forward_hook(lambda m, i, o: feats.update(depth=o["depth"]))
    rows = []
    try:
        for sample, objects in scenes:
            x = torch.from_numpy(sample.image).permute(2, 0, 1)[None].float() / 255.0
            k = torch.from_numpy(sample.intrinsics)[None]
            out = model(x, k, return_aux=model.cfg.variant == "sosd")
            size = x.shape[-2:]
            maps = {m: F.interpolate(out["aux"][m], size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
                    for m in MAPS} if "aux" in out else {}
            fd = F.interpolate(feats["depth"], size=size, mode="bilinear", align_corners=False)[0].numpy()
            inst = sample.extras["instances"]
            for o in objects:
                if not (o["inside"] and o["unoccluded"] and o["visible_px"] >= min_px):
                    continue
                mask = inst == o["instance"]
                if not mask.any():
                    continue
                row = {"class_name": o["class_name"], "area_3d_true": o["area_m2"],
                       "inv_area_2d_true": 1.0 / (o["du_px"] * o["dv_px"]), "depth_true": o["depth_m"],
                       "features": fd[:, mask].mean(1)}
                row.update({m: float(v[mask].mean()) for m, v in maps.items()})
                rows.append(row)
    finally:
        hook.remove()
    return rows


def linear_probe(features: np.ndarray, target: np.ndarray, folds: int, ridge: float, seed: int = 0) -> dict:
    """Ridge regression of ``target`` on standardised features, k-fold: held-out R² and Spearman ρ.
    (numpy's lstsq on a few hundred objects: no library needed for a closed-form ridge.)"""
    n = len(target)
    if n < 2 * folds:
        return {"r2": float("nan"), "spearman": float("nan"), "n": n}
    order = np.random.default_rng(seed).permutation(n)
    pred = np.empty(n)
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        mu, sd = features[train].mean(0), features[train].std(0) + 1e-8
        xtr = np.c_[(features[train] - mu) / sd, np.ones(len(train))]
        xte = np.c_[(features[test] - mu) / sd, np.ones(len(test))]
        reg = ridge * len(train) * np.eye(xtr.shape[1])
        reg[-1, -1] = 0  # the intercept is not penalised
        w = np.linalg.solve(xtr.T @ xtr + reg, xtr.T @ target[train])
        pred[test] = xte @ w
    ss = ((target - target.mean()) ** 2).sum()
    return {"r2": float(1 - ((target - pred) ** 2).sum() / ss) if ss > 0 else float("nan"),
            "spearman": _spearman(pred, target), "n": n}


def correlations(rows: list[dict], pc: ProbeConfig) -> dict:
    """Spearman ρ of each map with its truth, overall and per class, and the linear probes."""
    out = {"n_objects": len(rows), "overall": {}, "per_class": {}, "linear_probe": {}}
    pairs = (("area_3d", "area_3d_true"), ("area_2d", "inv_area_2d_true"), ("cue", "depth_true"))
    for m, t in pairs:
        if rows and m in rows[0]:
            out["overall"][m] = _spearman([r[m] for r in rows], [r[t] for r in rows])
    for cls in sorted({r["class_name"] for r in rows}):
        rs = [r for r in rows if r["class_name"] == cls]
        out["per_class"][cls] = {"n": len(rs), **{m: _spearman([r[m] for r in rs], [r[t] for r in rs])
                                                  for m, t in pairs if m in rs[0]}}
    if rows:
        X = np.stack([r["features"] for r in rows])
        for name, t in (("log_area_3d", "area_3d_true"), ("log_inv_area_2d", "inv_area_2d_true"),
                        ("log_depth", "depth_true")):
            out["linear_probe"][name] = linear_probe(X, np.log([r[t] for r in rows]), pc.folds, pc.ridge)
    return out


@torch.no_grad()
def cue_contribution(model, dataset) -> dict:
    """Depth error of the model on ``dataset`` as is, and with the semantic-to-depth cue replaced by its mean
    over the set (the fusion convolution then sees a constant in place of eq. (3)'s cue)."""
    from sosd.eval.evaluate import batches, evaluate_model

    if model.cfg.variant != "sosd":
        return {}
    model.eval()
    cues = [model(b["image"], b["intrinsics"], return_aux=True)["aux"]["cue"].mean().item()
            for b in batches(dataset, 8)]
    mean_cue = float(np.mean(cues))

    def constant_cue(mod, args):
        x = args[0].clone()
        x[:, -1:] = mean_cue  # the cue is the fusion input's last channel (SemanticToDepth.forward)
        return (x,)

    key = "disparity_mae_px" if dataset.target_kind == "disparity" else "rel"
    res = {"metric": key, "model": evaluate_model(model, dataset, progress=False)[key]}
    handle = model.semantic_to_depth.fuse.register_forward_pre_hook(constant_cue)
    try:
        res["cue replaced by its mean"] = evaluate_model(model, dataset, progress=False)[key]
    finally:
        handle.remove()
    return res
