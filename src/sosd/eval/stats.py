"""Paired statistics for comparing two methods over seeds, and the verdict a claim gets.

Two rows trained with the same seed share their initial weights and data order, so the comparison is the
per-seed difference d_s = metric(A, s) - metric(B, s), not two independent means. Its 95 % interval comes
from scipy.stats (the paired t interval of ``ttest_rel``, or a BCa ``bootstrap`` of the mean difference):
with 5 seeds the t interval is the one a reviewer expects; the bootstrap needs more seeds to be reliable.

A claim "A is better than B on m" **holds** when the interval of the signed improvement excludes 0 on the
paper's side, is **reversed** when it excludes 0 on the other side, and is **not resolved** otherwise.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

HOLDS, REVERSED, NOT_RESOLVED = "holds", "reversed", "not resolved"


def _scipy_stats():
    try:
        from scipy import stats
    except ImportError as e:  # scipy is in the `data` extra
        from sosd.errors import SOSDError

        raise SOSDError("paired intervals need scipy: pip install 'sosd[data]'") from e
    return stats


@dataclass
class Paired:
    """The paired comparison of A against B (improvement = A better than B, in the metric's direction)."""
    n: int
    mean: float           # mean improvement of A over B (metric units, positive = A better)
    lo: float             # 95 % interval of the mean improvement
    hi: float
    method: str           # "t" (paired t interval) or "bootstrap" (BCa)
    verdict: str          # holds | reversed | not resolved
    diffs: list           # per-seed improvements

    def to_dict(self) -> dict:
        return asdict(self)


def paired(a: list[float], b: list[float], higher_is_better: bool, method: str = "t",
           confidence: float = 0.95, seed: int = 0) -> Paired:
    """Paired improvement of A over B across seeds (equal length, same seed order)."""
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs one value per seed on both sides ({len(a)} vs {len(b)})")
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None
             and math.isfinite(x) and math.isfinite(y)]
    sign = 1.0 if higher_is_better else -1.0
    diffs = [sign * (x - y) for x, y in pairs]
    n = len(diffs)
    if n < 2:
        return Paired(n, diffs[0] if diffs else float("nan"), float("nan"), float("nan"), method,
                      NOT_RESOLVED, diffs)
    mean = sum(diffs) / n
    stats = _scipy_stats()
    if all(d == diffs[0] for d in diffs):  # zero spread: the interval is the point itself
        lo = hi = mean
    elif method == "t":
        better, worse = zip(*pairs) if higher_is_better else zip(*[(y, x) for x, y in pairs])
        ci = stats.ttest_rel(better, worse).confidence_interval(confidence)  # interval of mean(better - worse)
        lo, hi = float(ci.low), float(ci.high)
    elif method == "bootstrap":
        import numpy as np

        res = stats.bootstrap((np.asarray(diffs),), np.mean, confidence_level=confidence, method="BCa",
                              n_resamples=9999, random_state=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    else:
        raise ValueError(f"unknown interval method '{method}' (t | bootstrap)")
    verdict = HOLDS if lo > 0 else REVERSED if hi < 0 else NOT_RESOLVED
    return Paired(n, mean, lo, hi, method, verdict, diffs)


def mean_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and its t interval over seeds (e.g. Δm of one row), ignoring missing values."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return float("nan"), float("nan"), float("nan")
    m = sum(vals) / len(vals)
    if len(vals) < 2 or all(v == vals[0] for v in vals):
        return m, (m if len(vals) > 1 else float("nan")), (m if len(vals) > 1 else float("nan"))
    ci = _scipy_stats().ttest_1samp(vals, 0.0).confidence_interval(confidence)
    return m, float(ci.low), float(ci.high)


def combine_verdicts(first: str, second: str) -> str:
    """A verdict that changes when the budget doubles is not a result about the method."""
    return first if first == second else NOT_RESOLVED


def converged(curves: list[list[dict]], metrics: dict, tolerance: float) -> dict:
    """Relative gain of the mean-over-seeds val curve over the last quarter of the budget, per metric:
    converged when every main metric gained less than ``tolerance`` (a loss counts as no gain)."""
    out = {}
    steps = sorted({p["step"] for c in curves for p in c})
    if len(steps) < 2:
        return {"converged": None, "gain": {}}
    last = steps[-1]
    q = min(steps, key=lambda s: abs(s - 0.75 * last))
    for key, higher in metrics.items():
        def mean_at(step):
            vals = [p[key] for c in curves for p in c if p["step"] == step and key in p]
            return sum(vals) / len(vals) if vals else float("nan")
        a, b = mean_at(q), mean_at(last)
        if math.isnan(a) or math.isnan(b):
            continue
        out[key] = ((b - a) if higher else (a - b)) / max(abs(a), 1e-12)
    return {"converged": all(g < tolerance for g in out.values()) if out else None, "gain": out,
            "from_step": q, "to_step": last}
