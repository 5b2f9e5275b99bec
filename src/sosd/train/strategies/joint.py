"""Joint training (MTL and SOSD-Net rows): one optimiser step on L_sem + L_dep (eq. 6 + eq. 7).
For the single-task variants the sum has one term, so this is also their strategy."""
from __future__ import annotations

from sosd.train.strategies.base import Strategy, task_losses


class Joint(Strategy):
    name = "joint"

    def losses(self, model, batch):
        parts = task_losses(model, batch)
        return {"loss": sum(parts.values()), **parts}
