"""Depth and disparity error metrics of §4.1, as torchmetrics ``Metric`` objects (usable under DDP).

Every metric keeps *raw sums and counts* as states with ``dist_reduce_fx="sum"``, so a reduction across
ranks (or a second ``update``) adds sums, never averages of averages: streaming equals one-shot.

Protocols (``depth_protocol``), printed with every result by :func:`describe_protocol`:

* ``paper`` (default, §4.1): ``N`` = number of valid pixels over the *whole evaluated set*;
  ``rel = Σ|y−y*|/y* / N``, ``rms = sqrt(Σ(y−y*)² / N)``, ``log10 = Σ|log10 y − log10 y*| / N``,
  ``δ_k`` = fraction of the N pixels with ``max(y/y*, y*/y) < 1.25^k``. No crop, no depth cap.
* ``eigen`` (the depth-estimation literature, e.g. BTS/AdaBins code): ground truth limited to
  ``1e-3 < y* < 10`` m, predictions clamped to ``[1e-3, 10]`` m, Eigen crop rows 45:471 × cols 41:601 at
  480×640 (scaled proportionally at other sizes, see :func:`eigen_crop`), every metric computed *per image*
  then averaged over images, plus ``sq_rel = mean((y−y*)²/y*)``, ``log_rms = sqrt(mean((ln y − ln y*)²))``
  and ``silog = 100·sqrt(mean(d²) − mean(d)²)`` with ``d = ln y − ln y*`` (natural log, per image).
* Cityscapes disparity: ``disparity_mae_px = Σ|d − d*| / N`` over the valid pixels of the set, in px of
  the evaluated image.

Prediction rules (the same under every protocol):

* ``valid`` is and-ed with "ground truth finite" (and, for depth, "ground truth > 0"), so a bad ground
  truth pixel can never divide by zero.
* ``pred_valid`` (optional): valid pixels where it is False have *no prediction*; they are excluded from
  the metrics and counted in ``missing_pixels`` (prediction files use 0 = none).
* A non-finite prediction at an evaluated pixel raises ``ValueError`` (never a silent NaN).
* Depth predictions ``<= 0`` at evaluated pixels are replaced by ``MIN_DEPTH`` = 1e-3 m (1 mm, the NYU
  file resolution) before any metric, so the log metrics are defined; they are counted in
  ``clamped_pixels``. Positive predictions are left as they are under ``paper`` (no cap). Disparity
  predictions are not clamped (MAE needs no log).
* A metric with nothing evaluated (N = 0) is NaN; ``n_valid_pixels = 0`` says why.
"""
from __future__ import annotations

import math

import torch
from torchmetrics import Metric

DEPTH_PROTOCOLS = ("paper", "eigen")
MIN_DEPTH = 1e-3          # m: floor for non-positive predictions; eigen's lower cap
EIGEN_MAX_DEPTH = 10.0    # m: eigen's upper cap (NYU)
EIGEN_CROP_480x640 = (45, 471, 41, 601)  # rows 45:471, cols 41:601 (Eigen et al. 2014, NYU at 480×640)
DELTA = 1.25


def eigen_crop(height: int, width: int) -> tuple[int, int, int, int]:
    """Eigen crop (r0, r1, c0, c1) at ``height``×``width``: the 480×640 crop scaled proportionally,
    every bound rounded half up: r0 = floor(45·H/480 + ½), r1 = floor(471·H/480 + ½),
    c0 = floor(41·W/640 + ½), c1 = floor(601·W/640 + ½). Exactly 45:471 × 41:601 at 480×640."""
    r0, r1, c0, c1 = EIGEN_CROP_480x640
    rnd = lambda v: int(math.floor(v + 0.5))  # noqa: E731
    return rnd(r0 * height / 480), rnd(r1 * height / 480), rnd(c0 * width / 640), rnd(c1 * width / 640)


def describe_protocol(target_kind: str = "depth", depth_protocol: str = "paper") -> str:
    """One line naming the protocol, printed under every table and stored in every result file."""
    if target_kind == "disparity":
        return ("disparity: mean absolute disparity error in px over all valid pixels of the set "
                "(N = valid pixels over the set), at the evaluated size; no crop, no cap")
    if depth_protocol == "paper":
        return ("depth protocol 'paper' (§4.1): N = valid pixels over the whole set, no crop, no cap; "
                "predictions <= 0 floored to 1e-3 m")
    if depth_protocol == "eigen":
        return ("depth protocol 'eigen': gt limited to (1e-3, 10) m, predictions clamped to [1e-3, 10] m, "
                "Eigen crop rows 45:471 x cols 41:601 at 480x640 (scaled proportionally, rounded half up, "
                "at other sizes), metrics per image then averaged over images; "
                "silog = 100*sqrt(mean(d^2) - mean(d)^2), d = ln(pred) - ln(gt)")
    raise ValueError(f"unknown depth protocol {depth_protocol!r}; choose paper or eigen")


# ------------------------------------------------------------------------------------------- helpers

def _bhw(x: torch.Tensor, name: str) -> torch.Tensor:
    """(B,1,H,W) | (B,H,W) | (H,W) -> (B,H,W)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ValueError(f"{name} must be (B,1,H,W) or (B,H,W), got shape {tuple(x.shape)}")
        return x[:, 0]
    if x.ndim == 3:
        return x
    if x.ndim == 2:
        return x[None]
    raise ValueError(f"{name} must be (B,1,H,W) or (B,H,W), got shape {tuple(x.shape)}")


def _prepare(pred, target, valid, pred_valid):
    pred, target, valid = _bhw(pred, "pred"), _bhw(target, "target"), _bhw(valid, "valid").bool()
    if pred.shape != target.shape or valid.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and valid "
                         f"{tuple(valid.shape)} must have the same (B,H,W) shape (no implicit resizing)")
    if pred_valid is None:
        pred_valid = torch.ones_like(valid)
    else:
        pred_valid = _bhw(pred_valid, "pred_valid").bool()
        if pred_valid.shape != target.shape:
            raise ValueError(f"pred_valid {tuple(pred_valid.shape)} must match target {tuple(target.shape)}")
    return pred, target, valid, pred_valid


def _check_finite(p: torch.Tensor) -> None:
    if p.numel() and not torch.isfinite(p).all():
        n = int((~torch.isfinite(p)).sum())
        raise ValueError(f"{n} non-finite depth/disparity predictions at evaluated pixels; pass "
                         f"pred_valid=False there to count them as missing instead")


def _nan() -> torch.Tensor:
    return torch.tensor(float("nan"), dtype=torch.float64)


class _SumMetric(Metric):
    """Base: float64 sum states and int64 count states, all reduced across ranks by summing."""

    full_state_update = False
    _sums: tuple[str, ...] = ()
    _counts: tuple[str, ...] = ("n_valid", "n_missing", "n_clamped")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for s in self._sums:
            self.add_state(s, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        for c in self._counts:
            self.add_state(c, torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")


class DepthMetrics(_SumMetric):
    """NYU depth metrics under the ``paper`` protocol (§4.1): sums over every valid pixel of the set.

    ``update(pred, target, valid, pred_valid=None)`` with (B,1,H,W) or (B,H,W) tensors in metres;
    ``compute()`` -> dict of 0-d tensors: rel, rms, log10, delta1, delta2, delta3, n_valid_pixels,
    missing_pixels, clamped_pixels.
    """

    higher_is_better = False
    _sums = ("sum_abs_rel", "sum_sq", "sum_log10")
    _counts = ("n_valid", "n_missing", "n_clamped", "n_d1", "n_d2", "n_d3")

    def update(self, pred, target, valid, pred_valid=None) -> None:
        pred, target, valid, pred_valid = _prepare(pred, target, valid, pred_valid)
        region = valid & torch.isfinite(target) & (target > 0)
        self.n_missing += (region & ~pred_valid).sum()
        region &= pred_valid
        p, g = pred[region].double(), target[region].double()
        _check_finite(p)
        bad = p <= 0
        self.n_clamped += bad.sum()
        p = torch.where(bad, torch.full_like(p, MIN_DEPTH), p)
        err = p - g
        self.sum_abs_rel += (err.abs() / g).sum()
        self.sum_sq += (err * err).sum()
        self.sum_log10 += (torch.log10(p) - torch.log10(g)).abs().sum()
        ratio = torch.maximum(p / g, g / p)
        self.n_d1 += (ratio < DELTA).sum()
        self.n_d2 += (ratio < DELTA ** 2).sum()
        self.n_d3 += (ratio < DELTA ** 3).sum()
        self.n_valid += region.sum()

    def compute(self) -> dict:
        n = self.n_valid.double()
        if self.n_valid == 0:
            out = {k: _nan() for k in ("rel", "rms", "log10", "delta1", "delta2", "delta3")}
        else:
            out = {
                "rel": self.sum_abs_rel / n,
                "rms": torch.sqrt(self.sum_sq / n),
                "log10": self.sum_log10 / n,
                "delta1": self.n_d1.double() / n,
                "delta2": self.n_d2.double() / n,
                "delta3": self.n_d3.double() / n,
            }
        out.update(n_valid_pixels=self.n_valid, missing_pixels=self.n_missing, clamped_pixels=self.n_clamped)
        return out


EIGEN_KEYS = ("rel", "rms", "log10", "delta1", "delta2", "delta3", "sq_rel", "log_rms", "silog")


class EigenDepthMetrics(_SumMetric):
    """Depth metrics under the ``eigen`` protocol: cap, Eigen crop, per-image metrics averaged over images.

    The states are sums over images of each image's metric (and the number of images with at least one
    evaluated pixel; images with none are left out of the average), so they add across ranks.
    ``compute()`` adds sq_rel, log_rms and silog to the paper keys, plus n_depth_images.
    """

    higher_is_better = False
    _sums = tuple(f"img_sum_{k}" for k in EIGEN_KEYS)
    _counts = ("n_valid", "n_missing", "n_clamped", "n_depth_images")

    def __init__(self, min_depth: float = MIN_DEPTH, max_depth: float = EIGEN_MAX_DEPTH, crop: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.min_depth, self.max_depth, self.crop = float(min_depth), float(max_depth), bool(crop)

    def _region(self, target, valid):
        region = valid & torch.isfinite(target) & (target > self.min_depth) & (target < self.max_depth)
        if self.crop:
            h, w = target.shape[-2:]
            r0, r1, c0, c1 = eigen_crop(h, w)
            mask = torch.zeros((h, w), dtype=torch.bool, device=target.device)
            mask[r0:r1, c0:c1] = True
            region &= mask
        return region

    def update(self, pred, target, valid, pred_valid=None) -> None:
        pred, target, valid, pred_valid = _prepare(pred, target, valid, pred_valid)
        region = self._region(target, valid)
        self.n_missing += (region & ~pred_valid).sum()
        region &= pred_valid
        for b in range(pred.shape[0]):
            m = region[b]
            n = int(m.sum())
            if n == 0:
                continue
            p, g = pred[b][m].double(), target[b][m].double()
            _check_finite(p)
            self.n_clamped += (p <= 0).sum()
            p = p.clamp(self.min_depth, self.max_depth)
            err = p - g
            d = torch.log(p) - torch.log(g)
            ratio = torch.maximum(p / g, g / p)
            per_image = {
                "rel": (err.abs() / g).mean(),
                "rms": torch.sqrt((err * err).mean()),
                "log10": (torch.log10(p) - torch.log10(g)).abs().mean(),
                "delta1": (ratio < DELTA).double().mean(),
                "delta2": (ratio < DELTA ** 2).double().mean(),
                "delta3": (ratio < DELTA ** 3).double().mean(),
                "sq_rel": (err * err / g).mean(),
                "log_rms": torch.sqrt((d * d).mean()),
                # clamp at 0: mean(d²) − mean(d)² can come out a rounding error below zero
                "silog": torch.sqrt(((d * d).mean() - d.mean() ** 2).clamp_min(0.0)) * 100.0,
            }
            for k, v in per_image.items():
                s = getattr(self, f"img_sum_{k}")
                s += v
            self.n_depth_images += 1
            self.n_valid += n

    def compute(self) -> dict:
        if self.n_depth_images == 0:
            out = {k: _nan() for k in EIGEN_KEYS}
        else:
            m = self.n_depth_images.double()
            out = {k: getattr(self, f"img_sum_{k}") / m for k in EIGEN_KEYS}
        out.update(n_valid_pixels=self.n_valid, missing_pixels=self.n_missing,
                   clamped_pixels=self.n_clamped, n_depth_images=self.n_depth_images)
        return out


class DisparityMAE(_SumMetric):
    """Cityscapes depth metric (Tables 1/4): mean absolute disparity error in px over every valid pixel
    of the set, at the evaluated size. ``compute()`` -> disparity_mae_px, n_valid_pixels, missing_pixels."""

    higher_is_better = False
    _sums = ("sum_abs",)
    _counts = ("n_valid", "n_missing", "n_clamped")

    def update(self, pred, target, valid, pred_valid=None) -> None:
        pred, target, valid, pred_valid = _prepare(pred, target, valid, pred_valid)
        region = valid & torch.isfinite(target)
        self.n_missing += (region & ~pred_valid).sum()
        region &= pred_valid
        p, g = pred[region].double(), target[region].double()
        _check_finite(p)
        self.sum_abs += (p - g).abs().sum()
        self.n_valid += region.sum()

    def compute(self) -> dict:
        mae = _nan() if self.n_valid == 0 else self.sum_abs / self.n_valid.double()
        return {"disparity_mae_px": mae, "n_valid_pixels": self.n_valid, "missing_pixels": self.n_missing,
                "clamped_pixels": self.n_clamped}


def make_depth_metric(target_kind: str = "depth", depth_protocol: str = "paper", **kwargs) -> Metric:
    """The metric object for a dataset's ``target_kind`` and a depth protocol."""
    if target_kind == "disparity":
        if depth_protocol != "paper":
            raise ValueError(f"depth protocol {depth_protocol!r} applies to metric depth only; disparity "
                             f"(Cityscapes) has one protocol: mean absolute error over the set ('paper')")
        return DisparityMAE(**kwargs)
    if target_kind != "depth":
        raise ValueError(f"unknown target_kind {target_kind!r}; choose depth or disparity")
    if depth_protocol == "paper":
        return DepthMetrics(**kwargs)
    if depth_protocol == "eigen":
        return EigenDepthMetrics(**kwargs)
    raise ValueError(f"unknown depth protocol {depth_protocol!r}; choose one of {', '.join(DEPTH_PROTOCOLS)}")
