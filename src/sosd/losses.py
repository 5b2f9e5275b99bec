"""The paper's losses: cross-entropy over labelled pixels (eq. 6) and L1 over valid depth pixels (eq. 7)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from sosd.data.sample import IGNORE_INDEX


def semantic_ce(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Eq. (6): cross-entropy averaged over the labelled pixels of the mini-batch. logits (B,K,H,W),
    labels (B,H,W). A batch with no labelled pixel gives 0 (connected to the graph), not NaN."""
    n = (labels != ignore_index).sum()
    loss = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="sum")
    return loss / n.clamp(min=1)


def depth_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Eq. (7): mean |y - y*| over the valid pixels of the mini-batch (depth in m or disparity in px).
    pred/target/valid (B,1,H,W). A batch with no valid pixel gives 0, not NaN."""
    # where() rather than indexing keeps shapes static (export- and compile-friendly) and masks NaN targets
    diff = torch.where(valid, (pred - target).abs(), torch.zeros_like(pred))
    return diff.sum() / valid.sum().clamp(min=1)
