"""PCGrad: T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman, C. Finn, "Gradient surgery for multi-task
learning", NeurIPS 2020 (Algorithm 1).

On the shared parameters theta^com: for each task i, g_i^PC starts at g_i and, for every other task j in
a random order, if g_i^PC . g_j < 0 (a conflict) it is projected onto the normal plane of g_j:
g_i^PC -= (g_i^PC . g_j) / ||g_j||^2 g_j (always against the *original* g_j). The update of theta^com is
sum_i g_i^PC (the sum, as in Algorithm 1: without conflicts it is the gradient of L_sem + L_dep, i.e.
``equal``). The task-specific parameters get their ordinary gradients (``gradients.py``).

The random order comes from a ``torch.Generator`` seeded with ``train.seed`` whose state is in
``state_dict`` (a resumed run draws the same orders). With two tasks each g_i has a single other task,
so the order cannot change the result; it is kept so the method is the paper's for any number of tasks.
"""
from __future__ import annotations

import torch

from sosd.train.strategies.gradients import GradientMethod


def pcgrad(grads: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """sum_i g_i^PC for the task gradients ``grads`` (T, n)."""
    t = grads.shape[0]
    sq = (grads * grads).sum(1)
    out = torch.zeros_like(grads[0])
    for i in range(t):
        g = grads[i].clone()
        for j in torch.randperm(t, generator=generator).tolist():
            if j == i or sq[j] <= 0:
                continue
            dot = g @ grads[j]
            if dot < 0:
                g -= dot / sq[j] * grads[j]
        out += g
    return out


class PCGrad(GradientMethod):
    name = "pcgrad"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.generator = torch.Generator().manual_seed(int(cfg.seed))

    def combine(self, grads):
        return pcgrad(grads, self.generator)

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        if state.get("generator") is not None:
            self.generator.set_state(state["generator"])
