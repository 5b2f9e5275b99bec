"""Dynamic Weight Average: S. Liu, E. Johns, A. J. Davison, "End-to-end multi-task learning with
attention", CVPR 2019 (MTAN), §3.3.

    w_k(t) = K exp(r_k(t-1) / T) / sum_i exp(r_i(t-1) / T),   r_k(t-1) = L_k(t-1) / L_k(t-2),

with L_k(t) the average training loss of task k over epoch t, K = 2 tasks, temperature T = 2
(``train.mtl.dwa_temperature``), and w_k = 1 while fewer than two epochs are complete, as in the paper.
``train.mtl.dwa_window = k > 0`` averages over k-step windows instead of epochs (for short runs; 0 = the
epoch, the default). The network steps on sum_k w_k L_k.

State (``state_dict``, so a resumed run continues bit-exactly): the current window's index, its running
loss sums and count, and the averages of the last two complete windows. Losses are recorded per
micro-batch in ``losses`` (non-finite ones, which the loop skips, are left out). Under DDP each rank
averages the losses of its own shard of the batches (close to, not exactly, the global averages).
"""
from __future__ import annotations

import math

from sosd.train.strategies.gradients import TASKS, MTLStrategy


def dwa_weights(history: list, temperature: float = 2.0) -> list[float]:
    """Task weights from the average losses of past windows, ``history`` = [..., L(t-2), L(t-1)], each
    a list over TASKS. Fewer than two windows: all ones."""
    k = len(TASKS)
    if len(history) < 2:
        return [1.0] * k
    prev, last = history[-2], history[-1]
    r = [last[i] / max(prev[i], 1e-12) for i in range(k)]
    e = [math.exp(v / temperature) for v in r]
    return [k * v / sum(e) for v in e]


class DWA(MTLStrategy):
    name = "dwa"
    # its weights come from this process's own loss averages: under DDP they would drift apart between
    # processes (and only rank 0's window state is checkpointed), so the loop refuses it there
    supports_ddp = False

    def __init__(self, cfg):
        super().__init__(cfg)
        self.temperature = float(cfg.mtl.dwa_temperature)
        self.window = int(cfg.mtl.dwa_window)
        self.unit: int | None = None   # index of the window being averaged
        self.sums = [0.0] * len(TASKS)
        self.count = 0
        self.history: list = []        # averages of the last two complete windows
        self.w = [1.0] * len(TASKS)

    def prepare(self, model, step, epoch):
        super().prepare(model, step, epoch)
        unit = epoch if self.window == 0 else step // self.window
        if self.unit is not None and unit != self.unit and self.count:
            self.history = (self.history + [[s / self.count for s in self.sums]])[-2:]
            self.sums, self.count = [0.0] * len(TASKS), 0
        self.unit = unit
        self.w = dwa_weights(self.history, self.temperature)

    def total(self, losses):
        values = [float(losses[t].detach()) for t in TASKS]
        if all(math.isfinite(v) for v in values):
            self.sums = [s + v for s, v in zip(self.sums, values)]
            self.count += 1
        return self.w[0] * losses["sem"] + self.w[1] * losses["dep"]

    def log_scalars(self):
        return {"mtl/w_sem": self.w[0], "mtl/w_dep": self.w[1]}

    def state_dict(self):
        return {"unit": self.unit, "sums": list(self.sums), "count": self.count,
                "history": [list(h) for h in self.history]}

    def load_state_dict(self, state):
        if not state:
            return
        self.unit, self.sums, self.count = state["unit"], list(state["sums"]), int(state["count"])
        self.history = [list(h) for h in state["history"]]
        self.w = dwa_weights(self.history, self.temperature)
