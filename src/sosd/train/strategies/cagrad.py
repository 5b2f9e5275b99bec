"""CAGrad: B. Liu, X. Liu, X. Jin, P. Stone, Q. Liu, "Conflict-averse gradient descent for multi-task
learning", NeurIPS 2021.

On the shared parameters theta^com, with g0 the average gradient, CAGrad takes the direction d that
maximises the worst task's improvement min_i g_i . d in the ball || d - g0 || <= c ||g0||. Its dual is a
problem over the simplex,

    w* = argmin_w  g_w . g0 + c ||g0|| ||g_w||,   g_w = sum_i w_i g_i,

and d = g0 + c ||g0|| g_w* / ||g_w*||. For two tasks w = (x, 1 - x) and the objective is a convex
function of one variable on [0, 1] (linear term plus the norm of an affine map), written with the 2x2
Gram matrix only; it is minimised here by a bounded golden-section search run to float64 resolution
(``solve_2task``) - exact up to rounding, where the official code runs SLSQP (scipy) from w = (1/2, 1/2).
c = 0.5 by default (``train.mtl.cagrad_c``, the paper's value on NYUv2/Cityscapes); c = 0 gives the
average gradient. As in the official code (``rescale=1``), the update is divided by 1 + c^2
(``train.mtl.cagrad_rescale``). Note the average, not the sum: the update is half ``equal``'s gradient
scale when the tasks agree (Adam is invariant to that).
"""
from __future__ import annotations

import math

import torch

from sosd.train.strategies.gradients import gram

GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def solve_2task(gg: torch.Tensor, c: float, iters: int = 100) -> float:
    """x in [0, 1] minimising F(x) = g_w . g0 + c ||g0|| ||g_w||, w = (x, 1 - x), from the Gram ``gg``."""
    a, b, d = float(gg[0, 0]), float(gg[0, 1]), float(gg[1, 1])
    g0_norm = math.sqrt(max(0.0, (a + 2 * b + d) / 4.0))
    k = c * g0_norm

    def f(x):
        y = 1.0 - x
        lin = 0.5 * (x * (a + b) + y * (b + d))            # g_w . g0
        quad = x * x * a + 2 * x * y * b + y * y * d         # ||g_w||^2
        return lin + k * math.sqrt(max(quad, 0.0))

    lo, hi = 0.0, 1.0
    x1, x2 = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(iters):
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - GOLDEN * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + GOLDEN * (hi - lo)
            f2 = f(x2)
    cands = [0.0, 1.0, 0.5 * (lo + hi)]  # the minimum of a convex function may sit on the boundary
    return min(cands, key=f)


def cagrad(grads: torch.Tensor, c: float = 0.5, rescale: bool = True) -> torch.Tensor:
    """The CAGrad update for two task gradients ``grads`` (2, n)."""
    g0 = grads.mean(0)
    if c == 0:
        return g0
    gg = gram(grads)
    x = solve_2task(gg, c)
    w = torch.tensor([x, 1.0 - x], dtype=grads.dtype, device=grads.device)
    gw = w @ grads
    g0_norm = math.sqrt(max(0.0, float(gg.sum()) / 4.0))
    gw_norm = float(gw.norm())
    d = g0 + (c * g0_norm / gw_norm) * gw if gw_norm > 0 else g0
    return d / (1.0 + c * c) if rescale else d


def cagrad_strategy(cfg):
    """``train.strategy=cagrad``: this solver, driven by the jd strategy (per-task gradients of theta^com
    averaged over micro-batches and processes before the solve, so it runs under torchrun).

    Why ours and not torchjd's CAGrad: torchjd solves the same dual with cvxpy's CLARABEL, which stops at a
    solver tolerance (on our hand-computed case its update is 1e-4 relative off the optimum; the test
    ``test_cagrad_solves_its_defining_problem`` demands 1e-9) and needs cvxpy; for two tasks the problem
    is one-dimensional and solved here to float64 resolution from the 2x2 Gram matrix. The update is the
    same otherwise (torchjd's equals ours with ``cagrad_rescale`` off); ``train.strategy=jd
    train.jd.aggregator=CAGrad`` runs torchjd's."""
    from sosd.train.strategies.jd import JD

    c, rescale = float(cfg.mtl.cagrad_c), bool(cfg.mtl.cagrad_rescale)

    def combine(grads):
        if grads.shape[0] != 2:
            raise ValueError("this CAGrad solves the two-task problem exactly; got "
                             f"{grads.shape[0]} task gradients")
        return cagrad(grads, c, rescale)

    return JD(cfg, combine=combine, name="cagrad")
