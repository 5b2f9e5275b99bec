"""Uncertainty weighting: A. Kendall, Y. Gal, R. Cipolla, "Multi-task learning using uncertainty to weigh
losses for scene geometry and semantics", CVPR 2018 (the paper's [18], Table 4 row "Kendall").

Each task has a learned homoscedastic noise scale, parametrised (as the paper advises, for stability) by
its log-variance s = log sigma^2, an extra parameter stepped by the same Adam as the network:

- segmentation, the classification form (eq. 10): L_sem / sigma^2 + log sigma = exp(-s) L_sem + s / 2;
  at fixed L its minimum is at s* = log(2 L_sem);
- depth, the regression form (eq. 7): L_dep / (2 sigma^2) + log sigma = exp(-s) L_dep / 2 + s / 2;
  minimum at s* = log L_dep.

Why the Gaussian form although eq. (7) of SOSD-Net is an L1 loss: it is the form of the paper we compare
with (eq. 7 is the loss Kendall et al. write down and weight with), and the one the common
reimplementations use for every loss, L1 depth included (LibMTL's UW, the MTAN / Nash-MTL benchmarks), so
the "Kendall" row means what readers expect. The likelihood that matches an L1 loss exactly is the
Laplace one, -log p = |y - f| / b + log b (+ const); ``train.mtl.kendall_depth_form=laplace`` uses it with
s = log b: exp(-s) L_dep + s, minimum at s* = log L_dep. The two differ in how fast the depth weight
reacts (1/L vs 1/(2L) at the optimum), not in what they balance.

Logged: sigma of each task (sqrt(exp s); for the Laplace form the scale b = exp s) and the effective
weights. Both log-variances start at ``train.mtl.kendall_init`` (0: sigma = 1, equal weighting 1 and 1/2).
"""
from __future__ import annotations

import math

import torch

from sosd.train.strategies.gradients import MTLStrategy


class Kendall(MTLStrategy):
    name = "kendall"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.form = cfg.mtl.kendall_depth_form
        # (s_sem, s_dep); a Parameter, so the loop optimises and checkpoints it
        self.log_vars = torch.nn.Parameter(torch.full((2,), float(cfg.mtl.kendall_init),
                                                      device=torch.device(cfg.device)))

    def extra_parameters(self):
        return [self.log_vars]

    def total(self, losses):
        s_sem, s_dep = self.log_vars[0], self.log_vars[1]
        sem = torch.exp(-s_sem) * losses["sem"] + 0.5 * s_sem
        if self.form == "laplace":
            dep = torch.exp(-s_dep) * losses["dep"] + s_dep
        else:
            dep = 0.5 * torch.exp(-s_dep) * losses["dep"] + 0.5 * s_dep
        return sem + dep

    def weights(self) -> tuple[float, float]:
        """The current factors in front of L_sem and L_dep."""
        s_sem, s_dep = (float(v) for v in self.log_vars.detach())
        return math.exp(-s_sem), math.exp(-s_dep) * (1.0 if self.form == "laplace" else 0.5)

    def log_scalars(self):
        s_sem, s_dep = (float(v) for v in self.log_vars.detach())
        w_sem, w_dep = self.weights()
        return {"kendall/sigma_sem": math.exp(0.5 * s_sem),
                "kendall/sigma_dep": math.exp(s_dep) if self.form == "laplace" else math.exp(0.5 * s_dep),
                "mtl/w_sem": w_sem, "mtl/w_dep": w_dep}
