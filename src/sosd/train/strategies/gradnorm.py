"""GradNorm: Z. Chen, V. Badrinarayanan, C.-Y. Lee, A. Rabinovich, "GradNorm: gradient normalization for
adaptive loss balancing in deep multitask networks", ICML 2018 (the paper's [19], Table 4 row "GradNorm").

The network steps on sum_i w_i L_i with learned task weights w_i (an extra parameter, init 1, stepped by
the same Adam as the network). The weights themselves step on

    L_grad = sum_i | G_i - mean(G) * r_i^alpha |,   G_i = || d(w_i L_i) / dW || = w_i || dL_i / dW ||,

with r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0)) the relative inverse training rate and the target
mean(G) r_i^alpha treated as a constant (detached), as in the paper; L_grad reaches only the w_i (the
network gets nothing from it), and w_i gets nothing from sum_i w_i L_i (w detached there). After each
optimiser step the weights are renormalised to sum to T = 2 (``after_step``; clamped at 1e-4 first, a
guard against a negative weight that a sane learning rate never triggers). alpha = 1.5 by default
(``train.mtl.gradnorm_alpha``; the value of the paper's NYUv2 experiments). L_i(0) are the losses of the
first micro-batch trained; they are part of ``state_dict`` (a resumed run keeps the same reference).

W, the layer whose gradients are balanced (``train.mtl.gradnorm_layer``): ``aspp.project.conv.weight``,
the 1x1 projection that closes the ASPP. The paper takes the last shared layer; SOSD-Net's trunk ends in
two tensors (the backbone's stride-4 refined feature and the ASPP output), so no single layer is last
on every path. The ASPP projection is the last layer of theta^com on the path of the global feature,
which every task's decoder branch reads, in both the mtl and the sosd variant (the sosd-only Common
Representation is not in mtl), so the same W is balanced on both nets; it is also cheap (one 1x1 conv).
Since G_i is linear in w_i, the gradients dL_i/dW need no second-order graph.
"""
from __future__ import annotations

import math

import torch

from sosd.train.strategies.gradients import TASKS, MTLStrategy

MIN_WEIGHT = 1e-4


def gradnorm_weight_grad(weights: torch.Tensor, norms: torch.Tensor, losses: torch.Tensor,
                         initial: torch.Tensor, alpha: float) -> torch.Tensor:
    """d L_grad / d w for task weights ``weights`` (T,), gradient norms ``norms`` = ||dL_i/dW|| (T,),
    current and initial losses (T,). Everything but ``weights`` is a constant here."""
    w = weights.detach().requires_grad_(True)
    g = w * norms.detach()
    ratio = losses.detach() / initial.clamp(min=1e-12)
    r = ratio / ratio.mean()
    target = (g.mean() * r ** alpha).detach()
    loss_grad = (g - target).abs().sum()
    return torch.autograd.grad(loss_grad, w)[0]


class GradNorm(MTLStrategy):
    name = "gradnorm"
    uses_gradients = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.alpha = float(cfg.mtl.gradnorm_alpha)
        self.layer = cfg.mtl.gradnorm_layer
        self.weights = torch.nn.Parameter(torch.ones(len(TASKS), device=torch.device(cfg.device)))
        self.initial: list[float] | None = None  # L_i(0)

    def extra_parameters(self):
        return [self.weights]

    def total(self, losses):
        w = self.weights.detach()
        return w[0] * losses["sem"] + w[1] * losses["dep"]

    def shared_weight(self, model) -> torch.nn.Parameter:
        params = dict(model.named_parameters())
        if self.layer not in params:
            raise ValueError(f"train.mtl.gradnorm_layer '{self.layer}' is not a parameter of the model")
        return params[self.layer]

    def backward(self, out, scale=1.0):
        p = self.take_pending()
        losses = [p.losses[t] for t in TASKS]
        self.weight_backward(losses, self.shared_weight(p.model), scale)
        (out["loss"] * scale).backward()

    def weight_backward(self, losses, layer: torch.Tensor, scale: float = 1.0) -> None:
        """Accumulate ``scale * dL_grad/dw`` into ``self.weights.grad`` (graph of ``losses`` kept)."""
        values = [float(v.detach()) for v in losses]
        if not all(math.isfinite(v) for v in values):
            return  # the loop will skip or stop on this batch; keep L(0) and the weights clean
        if self.initial is None:
            self.initial = values
        norms = []
        for v in losses:
            (g,) = torch.autograd.grad(v, layer, retain_graph=True, allow_unused=True)
            norms.append(g.norm() if g is not None else layer.new_zeros(()))
        dev = self.weights.device
        initial = torch.tensor(self.initial, device=dev, dtype=self.weights.dtype)
        grad = gradnorm_weight_grad(self.weights, torch.stack(norms).to(dev),
                                    torch.stack([v.detach() for v in losses]).to(dev), initial, self.alpha)
        self.weights.grad = grad * scale if self.weights.grad is None else self.weights.grad + grad * scale

    def after_step(self, model, step):
        with torch.no_grad():
            self.weights.clamp_(min=MIN_WEIGHT)
            self.weights.mul_(len(TASKS) / self.weights.sum())

    def log_scalars(self):
        w = self.weights.detach()
        return {"mtl/w_sem": float(w[0]), "mtl/w_dep": float(w[1])}

    def state_dict(self):
        return {"initial": None if self.initial is None else list(self.initial)}

    def load_state_dict(self, state):
        init = state.get("initial")
        self.initial = None if init is None else [float(v) for v in init]
