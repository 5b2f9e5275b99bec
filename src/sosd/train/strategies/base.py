"""What a training strategy is: the part of a step that decides *what* is optimised.

The loop calls, per optimiser step: ``prepare(model, step, epoch)`` (e.g. EM picks its phase),
``losses(model, batch)`` per micro-batch -> dict with ``loss`` (what to backpropagate) and named parts
(``sem``, ``dep``: eq. 6 and eq. 7), and ``backward(out)``. Strategies that combine task gradients
themselves (GradNorm, MGDA, PCGrad...) override ``backward``.
"""
from __future__ import annotations

import torch

from sosd.losses import depth_l1, semantic_ce


def task_losses(model, batch, tasks: tuple[str, ...] = ("depth", "semantic")) -> dict[str, torch.Tensor]:
    """The variant's task losses on a batch: ``sem`` (eq. 6) and/or ``dep`` (eq. 7), of ``tasks`` only."""
    out = model(batch["image"], batch.get("intrinsics"), tasks=tasks)
    losses = {}
    if "semantic" in out:
        losses["sem"] = semantic_ce(out["semantic"], batch["labels"])
    if "depth" in out:
        losses["dep"] = depth_l1(out["depth"], batch["target"], batch["valid"])
    return losses


class Strategy:
    name = "base"
    # set by the training loop before each step: whether the step's losses are logged. A strategy may skip
    # computing what it only reports (EM: the frozen side's loss) when it is not.
    report_all = True
    supports_ddp = True  # False: computes task gradients itself (autograd.grad), which bypasses DDP

    def __init__(self, cfg):
        self.cfg = cfg  # the TrainConfig

    def prepare(self, model, step: int, epoch: int) -> None:
        """Called before each optimiser step."""

    def losses(self, model, batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    reduces_gradients = False  # True: averages its own gradients across processes (no DDP wrapper)

    def backward(self, out: dict[str, torch.Tensor], scale: float = 1.0) -> None:
        (out["loss"] * scale).backward()

    def finish(self, model) -> None:
        """Called after the last micro-batch's ``backward`` of a step, before the optimiser step (the jd
        gradient methods all-reduce and aggregate their per-task gradients here)."""

    def extra_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters the strategy itself learns (e.g. Kendall's log-variances), optimised with the model."""
        return []

    def after_step(self, model, step: int) -> None:
        """Called after each optimiser step (e.g. GradNorm renormalises its task weights)."""

    def log_scalars(self) -> dict[str, float]:
        """Extra scalars for TensorBoard (e.g. the EM phase, task weights)."""
        return {}

    def state_dict(self) -> dict:
        """Non-parameter state to checkpoint (tensors, numbers, lists): resume must be exact."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
