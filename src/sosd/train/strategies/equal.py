"""Equal weighting (EW): one step on L_sem + L_dep with fixed weights (1, 1) - the usual reference row of
multi-task comparisons (e.g. Liu et al. 2019's "Equal", LibMTL's EW).

It computes exactly what ``joint`` computes for the mtl and sosd variants (the same sum, in the same
order: the same bits); it is an explicit entry of the multi-task family so a comparison lists it by
name beside the other methods, and, unlike ``joint``, it refuses single-task variants.
"""
from __future__ import annotations

from sosd.train.strategies.gradients import MTLStrategy


class Equal(MTLStrategy):
    name = "equal"

    def log_scalars(self):
        return {"mtl/w_sem": 1.0, "mtl/w_dep": 1.0}
