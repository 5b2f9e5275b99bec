"""Aligned-MTL: D. Senushkin, N. Patakin, A. Kuznetsov, A. Konushin, "Independent component alignment for
multi-task learning", CVPR 2023.

On the shared parameters theta^com, with G (T, n) the task gradients and M = G G^T = V diag(lambda) V^T
(eigen-decomposition of the T x T Gram matrix, eigenvalues below rank tolerance dropped), the aligned
gradients are the rows of B G with

    B = sqrt(lambda_min) V diag(lambda)^(-1/2) V^T,

i.e. G is replaced by the closest (Procrustes) system of orthogonal, equal-norm gradients, scaled by the
smallest singular value (``train.mtl.aligned_scale``: min, the paper's; median | rmse, the official code's
other options). The update of theta^com is their sum, sum_i alpha_i g_i with alpha = B^T 1 (the column
sums of B, the official code's / LibMTL's form). The task-specific parameters get their ordinary
gradients (``gradients.py``). Orthogonal gradients of equal norm are left as they are (alpha = 1, 1).

Why Aligned-MTL and not Nash-MTL: for two tasks everything is a closed-form 2x2 symmetric
eigen-decomposition of the Gram matrix, stateless and deterministic, so it is one ``combine`` of the
interface; Nash-MTL solves its bargaining system with an iterative convex solver (cvxpy in the official
code, re-solved only every few steps, with state between solves), a dependency and state this project
does not need for a two-task baseline.
"""
from __future__ import annotations

import torch

from sosd.train.strategies.gradients import GradientMethod, gram


def aligned_weights(gg: torch.Tensor, scale: str = "min") -> torch.Tensor:
    """alpha (T,) from the Gram matrix ``gg`` (T, T): the aligned update is alpha @ G."""
    lam, vec = torch.linalg.eigh(gg)
    tol = lam.max() * gg.shape[0] * torch.finfo(torch.float32).eps  # the gradients are float32
    keep = lam > tol
    if not bool(keep.any()):
        return torch.zeros(gg.shape[0], dtype=gg.dtype)
    lam, vec = lam[keep], vec[:, keep]
    if scale == "median":
        s = lam.median().sqrt()
    elif scale == "rmse":
        s = lam.mean().sqrt()
    else:
        s = lam.min().sqrt()
    b = s * (vec / lam.sqrt()) @ vec.T
    return b.sum(0)


class AlignedMTL(GradientMethod):
    name = "aligned_mtl"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.scale = cfg.mtl.aligned_scale
        self.alpha = (1.0, 1.0)

    def combine(self, grads):
        alpha = aligned_weights(gram(grads), self.scale)
        self.alpha = tuple(float(a) for a in alpha)
        return alpha.to(grads.dtype) @ grads

    def log_scalars(self):
        return {**super().log_scalars(), "mtl/w_sem": self.alpha[0], "mtl/w_dep": self.alpha[1]}
