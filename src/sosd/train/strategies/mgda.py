"""MGDA-UB: O. Sener, V. Koltun, "Multi-task learning as multi-objective optimization", NeurIPS 2018 (the
paper's [20], Table 4 row "Ozan").

MGDA steps along the minimum-norm element of the convex hull of the task gradients (a common descent
direction, Pareto-stationary when it is 0). MGDA-UB, the paper's practical form, takes the gradients not
w.r.t. the shared parameters but w.r.t. the shared representation Z (an upper bound of the
parameter-space objective, one backward through the task heads per task instead of through the trunk):
here Z = (refined, aspp_out), the decoder's two inputs, which every task path in both the mtl and the
sosd variant goes through (``SOSDNet.forward(..., return_shared=True)``). For two tasks the Frank-Wolfe
problem min_{g in [0,1]} || g g1 + (1-g) g2 ||^2 has the closed form

    g = clip( (g2 - g1) . g2 / || g1 - g2 ||^2, 0, 1 ),   weights (g, 1 - g)   (g1 == g2: 1/2),

(the authors' ``_min_norm_element_from2``, which clips to [0.001, 0.999] instead of [0, 1]); then the
network steps on sum_i w_i L_i (one ordinary backward: the task heads get w_i dL_i, the trunk the
min-norm combination), as in the authors' training script. The weights sum to 1, so the update is about
half the scale of ``equal``'s sum (Adam is invariant to that).

Options (``train.mtl``): ``mgda_normalization`` scales each task gradient before the solve, by 1 (none,
the default: the MGDA-UB of the paper's algorithm - the authors' code calls normalisation "optional and
not included in the paper"), ||g_i|| (l2), L_i (loss) or L_i ||g_i|| (loss+, what their sample config
uses); as in their code the resulting weights then multiply the unnormalised losses.
``mgda_space=parameters`` takes the gradients w.r.t. theta^com instead of Z (plain MGDA: exact, one extra
pass through the trunk per task).
"""
from __future__ import annotations

import torch

from sosd.train.strategies.gradients import TASKS, MTLStrategy, flat_gradients, gram, shared_parameters


def min_norm_2(gg: torch.Tensor) -> float:
    """gamma in [0, 1] minimising || gamma g1 + (1 - gamma) g2 ||^2, from the 2x2 Gram matrix ``gg``."""
    g11, g12, g22 = float(gg[0, 0]), float(gg[0, 1]), float(gg[1, 1])
    denom = g11 + g22 - 2.0 * g12  # || g1 - g2 ||^2
    if denom <= 1e-30 * max(g11, g22, 1e-300):
        return 0.5  # g1 == g2: every combination is the same vector
    return min(1.0, max(0.0, (g22 - g12) / denom))


def normalisers(gg: torch.Tensor, losses: list[float], kind: str) -> list[float]:
    """The authors' ``gradient_normalizers``: what each task gradient is divided by before the solve."""
    norms = [float(gg[i, i]) ** 0.5 for i in range(len(losses))]
    if kind == "l2":
        out = norms
    elif kind == "loss":
        out = list(losses)
    elif kind == "loss+":
        out = [v * n for v, n in zip(losses, norms)]
    else:
        out = [1.0] * len(losses)
    return [v if v > 0 else 1.0 for v in out]


def mgda_weights(grads: torch.Tensor, losses: list[float] | None = None, kind: str = "none") -> tuple:
    """(w_1, w_2) of the min-norm combination of the rows of ``grads`` (2, n), after normalisation."""
    gg = gram(grads)
    n = torch.tensor(normalisers(gg, losses or [1.0, 1.0], kind), dtype=gg.dtype)
    gamma = min_norm_2(gg / (n[:, None] * n[None, :]))
    return gamma, 1.0 - gamma


class MGDA(MTLStrategy):
    name = "mgda"
    uses_gradients = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.kind = cfg.mtl.mgda_normalization
        self.space = cfg.mtl.mgda_space
        self.needs_shared = self.space == "representation"
        self.w = (0.5, 0.5)

    def backward(self, out, scale=1.0):
        p = self.take_pending()
        losses = [p.losses[t] for t in TASKS]
        inputs = list(p.shared) if self.space == "representation" else shared_parameters(p.model)
        grads = flat_gradients(losses, inputs)
        self.w = mgda_weights(grads, [float(v.detach()) for v in losses], self.kind)
        del grads
        ((self.w[0] * losses[0] + self.w[1] * losses[1]) * scale).backward()

    def log_scalars(self):
        return {"mtl/w_sem": self.w[0], "mtl/w_dep": self.w[1]}
