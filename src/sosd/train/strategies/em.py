"""EM-style training (ESOSD-Net, §3.3, Algorithm 1; eq. (4)-(5)).

Iterations alternate two phases:
- depth phase: theta^dep, theta^3d, theta^2d (semantic-to-depth side) step on the depth loss; theta^com
  steps on sum_t alpha^t * grad through branch t (eq. 5); every semantic-side parameter is frozen;
- semantic phase: the reverse (theta^sem, theta^3d, theta^{d^-2} on the semantic loss).

Frozen parameters get ``requires_grad=False``, so they receive no gradient, Adam skips them (its moments
and step count do not advance: no state leaks between phases) and no compute is spent on their grads;
gradients still flow *through* them into the trunk (the 2d branch reaches theta^com through theta^sem).

BatchNorm of the frozen side: it keeps normalising with batch statistics (the function it computes while
it is trained), but its running statistics are not updated (``track_running_stats`` off for the phase),
so the frozen side's state is bit-for-bit unchanged. Switching it to eval mode instead would make the
frozen side compute a different function (running statistics) than when it learns, and feed that
mismatch into the gradient the trunk receives.

Schedule: ``switch_every`` steps (default 1: alternate every iteration, as Algorithm 1 loops over
iterations) or epochs. Alternating every step keeps both tasks' gradients reaching the shared trunk at
the same rate, so the trunk's BatchNorm statistics and Adam moments never drift towards one task for long.
The phase is a pure function of the step/epoch, so resuming a checkpoint resumes the schedule exactly.
"""
from __future__ import annotations

import torch

from sosd.models.sosd_net import DEPTH_SIDE, SEMANTIC_SIDE
from sosd.train.strategies.base import Strategy, task_losses

PHASES = ("depth", "semantic")


class EM(Strategy):
    name = "em"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.phase = cfg.em.first_phase

    def phase_at(self, step: int, epoch: int) -> str:
        unit = step if self.cfg.em.switch_unit == "step" else epoch
        first = PHASES.index(self.cfg.em.first_phase)
        return PHASES[(first + unit // self.cfg.em.switch_every) % 2]

    def prepare(self, model, step, epoch):
        if model.cfg.variant != "sosd":
            raise ValueError(f"the EM strategy trains the sosd variant (Algorithm 1); got {model.cfg.variant}")
        self.phase = self.phase_at(step, epoch)
        groups = model.parameter_groups()
        frozen = SEMANTIC_SIDE if self.phase == "depth" else DEPTH_SIDE
        for name, params in groups.items():
            for p in params:
                p.requires_grad_(name not in frozen)
        for side in ("depth", "semantic"):
            for m in model.side_modules(side):
                for bn in m.modules():
                    if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                        bn.track_running_stats = side != ("semantic" if self.phase == "depth" else "depth")
        alpha = tuple(float(a) for a in self.cfg.em.alpha)
        model.alphas = {"depth": alpha if self.phase == "depth" else (1.0, 1.0, 1.0),
                        "semantic": alpha if self.phase == "semantic" else (1.0, 1.0, 1.0)}

    def losses(self, model, batch):
        # the frozen side's loss is only reported: computed on the steps the loop logs (report_all), skipped on
        # the others (its head's forward: 1.04-1.09x an EM step at the study sizes)
        parts = task_losses(model, batch, ("depth", "semantic") if self.report_all else (self.phase,))
        loss = parts["dep"] if self.phase == "depth" else parts["sem"]
        # the other task's loss is reported, not optimised (detached: no graph kept for it)
        return {"loss": loss, **{k: (v if v is loss else v.detach()) for k, v in parts.items()}}

    def log_scalars(self):
        return {"em/phase_is_depth": float(self.phase == "depth")}


def release(model) -> None:
    """Undo EM's freezing (all parameters trainable, all BatchNorm tracking), e.g. before evaluation."""
    for p in model.parameters():
        p.requires_grad_(True)
    for bn in model.modules():
        if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
            bn.track_running_stats = True
    model.alphas = {"depth": (1.0, 1.0, 1.0), "semantic": (1.0, 1.0, 1.0)}
