"""What the multi-task methods share: one small interface, so that a method is one module.

What a method needs: the task losses of a micro-batch, ``{"sem": L_sem, "dep": L_dep}`` (eq. 6, eq. 7),
and, if it asks, the shared parameters theta^com (``model.parameter_groups()["com"]``: backbone, ASPP and,
in the sosd variant, the Common Representation) or the shared representation Z (the decoder's inputs,
``SOSDNet.forward(..., return_shared=True)``). What it returns: gradients in ``.grad`` - the combined
gradient of theta^com, and the task-specific parameters' own gradients.

Two kinds of method, both subclasses of :class:`MTLStrategy` (a :class:`Strategy`, so the loop needs
nothing new):

- loss weighting (equal, dwa, kendall, gradnorm, mgda): ``total(losses)`` gives the scalar to
  backpropagate; gradnorm and mgda also override ``backward`` to look at gradients first;
- gradient combination: :class:`GradientMethod` subclasses implement only ``combine(G) -> g``, G (T, n)
  the per-task gradients of theta^com flattened (row t = task ``TASKS[t]``); :func:`gradient_backward`
  takes ``torch.autograd.grad`` of each task loss w.r.t. theta^com (graph retained), writes ``combine(G)``
  into their ``.grad`` and backpropagates sum_t L_t into the task-specific parameters only. The shipped
  gradient methods (pcgrad, cagrad, aligned_mtl and every torchjd aggregator) run through the jd strategy
  instead (jd.py): the same split, one backward per task through the whole network, G accumulated over
  micro-batches and averaged over processes before the combination, so they run under torchrun.

gradnorm and mgda call ``torch.autograd.grad`` without that reduction, which bypasses DDP's reducer: they
declare ``supports_ddp = False`` (one process only) and, overriding ``backward``, do not combine with
``train.amp=fp16``'s loss scaling (bf16 is fine). The loss-weighting ones (equal, kendall) keep the
ordinary backward and run anywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from sosd.losses import depth_l1, semantic_ce
from sosd.train.strategies.base import Strategy

TASKS = ("sem", "dep")  # row order of every per-task tensor (gradients, weights, log-variances)


# --------------------------------------------------------------------------------------------- helpers
def shared_parameters(model) -> list[torch.nn.Parameter]:
    """theta^com: the parameters every task's loss depends on (trainable ones)."""
    return [p for p in model.parameter_groups()["com"] if p.requires_grad]


def specific_parameters(model) -> list[torch.nn.Parameter]:
    """Every trainable parameter outside theta^com (the task-specific side of both tasks)."""
    shared = {id(p) for p in model.parameter_groups()["com"]}
    return [p for p in model.parameters() if id(p) not in shared and p.requires_grad]


def flat_gradients(losses, inputs) -> torch.Tensor:
    """(T, n): row t = d losses[t] / d inputs, flattened and concatenated (zeros where unused).
    ``inputs`` are parameters or intermediate tensors (MGDA-UB's Z); the graph is kept."""
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(x)).reshape(-1)
                               for g, x in zip(grads, inputs)]))
    return torch.stack(rows)


def add_flat_gradient(params, flat: torch.Tensor, scale: float = 1.0) -> None:
    """Accumulate ``scale * flat`` (concatenated in ``params`` order) into the parameters' ``.grad``."""
    offset = 0
    for p in params:
        n = p.numel()
        g = flat[offset:offset + n].view_as(p) * scale
        if p.grad is None:
            p.grad = g.clone()
        else:
            p.grad.add_(g)
        offset += n
    if offset != flat.numel():
        raise ValueError(f"gradient of {flat.numel()} values for parameters of {offset}")


def gradient_backward(model, losses, combine, scale: float = 1.0) -> torch.Tensor:
    """The gradient methods' backward: per-task gradients G of theta^com -> ``combine(G)`` into their
    ``.grad`` (times ``scale``); sum of ``losses`` backpropagated into the task-specific parameters only.
    Returns G (for logging)."""
    shared, specific = shared_parameters(model), specific_parameters(model)
    grads = flat_gradients(losses, shared)
    combined = combine(grads)
    if specific:
        (sum(losses) * scale).backward(inputs=specific)  # stops at theta^com: no third pass through it
    add_flat_gradient(shared, combined, scale)
    return grads


def gram(grads: torch.Tensor) -> torch.Tensor:
    """(T, T) float64 Gram matrix G G^T of the task gradients (the only thing the 2-task solvers need)."""
    if grads.dtype in (torch.float16, torch.bfloat16):  # Z's gradients under autocast
        grads = grads.float()
    return (grads @ grads.T).double()


def require_two_tasks(model, name: str) -> None:
    if not (getattr(model, "has_semantic", False) and getattr(model, "has_depth", False)):
        raise ValueError(f"the {name} strategy balances two tasks: use model.variant mtl or sosd "
                         f"(got {model.cfg.variant})")


# ------------------------------------------------------------------------------------------ the base
@dataclass
class Pending:
    """What ``losses`` leaves for ``backward`` on the same micro-batch (never checkpointed)."""
    model: torch.nn.Module
    losses: dict = field(default_factory=dict)  # {"sem": L_sem, "dep": L_dep}
    shared: tuple | None = None                 # Z = (refined, aspp_out) when ``needs_shared``


class MTLStrategy(Strategy):
    """Base of the multi-task methods. ``losses`` runs the model, computes L_sem and L_dep and returns
    ``{"loss": total(losses), "sem", "dep"}`` (sem/dep: the plain task losses, for the logs); the default
    ``backward`` backpropagates ``loss``. Subclasses implement ``total`` (loss weighting), or override
    ``backward`` (gradient-based) and set ``uses_gradients``: ``losses`` then keeps the model, the task
    losses and, with ``needs_shared``, Z for it (:meth:`take_pending`), and the loop refuses the method
    under DDP (``torch.autograd.grad`` bypasses DDP's reducer)."""

    name = "mtl"
    uses_gradients = False  # overrides backward() and reads the pending losses
    needs_shared = False    # asks the model for Z = (refined, aspp_out)

    @property
    def supports_ddp(self) -> bool:
        return not self.uses_gradients

    def prepare(self, model, step, epoch):
        require_two_tasks(model, self.name)

    def losses(self, model, batch):
        require_two_tasks(model, self.name)
        out = model(batch["image"], batch.get("intrinsics"), return_shared=self.needs_shared)
        losses = {"sem": semantic_ce(out["semantic"], batch["labels"]),
                  "dep": depth_l1(out["depth"], batch["target"], batch["valid"])}
        if self.uses_gradients:
            self._pending = Pending(model, losses, out.get("shared"))
        return {"loss": self.total(losses), **losses}

    def total(self, losses: dict) -> torch.Tensor:
        """The scalar to backpropagate (and log as ``loss``); default: the plain sum."""
        return losses["sem"] + losses["dep"]

    def take_pending(self) -> Pending:
        pending, self._pending = getattr(self, "_pending", None), None
        if pending is None:
            raise RuntimeError(f"{self.name}: backward() needs a losses() call on the same micro-batch first")
        return pending


class GradientMethod(MTLStrategy):
    """A method that combines the task gradients of theta^com: implement ``combine(G) -> g``."""

    uses_gradients = True

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, out, scale=1.0):
        p = self.take_pending()
        grads = gradient_backward(p.model, [p.losses[t] for t in TASKS], self.combine, scale)
        gg = gram(grads)
        self._diag = {"mtl/grad_norm_sem": math.sqrt(gg[0, 0]), "mtl/grad_norm_dep": math.sqrt(gg[1, 1]),
                      "mtl/grad_cos": float(gg[0, 1] / (gg[0, 0] * gg[1, 1]).sqrt().clamp(min=1e-30))}

    def log_scalars(self):
        return dict(getattr(self, "_diag", {}))
