"""Segmentation metrics of §4.1 (Tables 1-5): mIoU, mean (class) accuracy and pixel accuracy, all from
ONE confusion matrix accumulated over the evaluated set (torchmetrics ``MulticlassConfusionMatrix``, whose
state is summed across ranks under torch.distributed).

Conventions:

* Ground-truth pixels labelled ``ignore_index`` (255) are left out entirely.
* A *predicted* label equal to ``ignore_index`` means "no prediction" (prediction files: NYU 0,
  Cityscapes 255). Such a pixel counts as wrong: it is a miss for its ground-truth class (lowers that
  class's IoU and accuracy and the pixel accuracy) and a hit for no class. Internally it goes to an extra
  confusion-matrix column K.
* IoU_c = TP_c / (GT_c + Pred_c − TP_c). A class absent from both the prediction and the ground truth
  (0/0) is left out of the mean IoU; a class predicted but absent from the ground truth has IoU 0 and
  is kept.
* Accuracy_c = TP_c / GT_c; mean accuracy averages over classes present in the ground truth (a class
  absent from the ground truth has no accuracy — this includes every class absent from both).
* Pixel accuracy = Σ_c TP_c / (number of labelled pixels).
* With no labelled pixel at all, the three metrics are NaN (and ``n_labelled_pixels`` is 0).
"""
from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from sosd.data.sample import IGNORE_INDEX


class SegmentationMetrics(MulticlassConfusionMatrix):
    """Confusion matrix of ``num_classes`` classes plus a "no prediction" column, and the paper's metrics.

    ``update(pred_labels, labels)``: pred_labels (B,H,W) integer ids in 0..K-1, or ``ignore_index`` for no
    prediction, or scores (B,K,H,W) (argmax taken); labels (B,H,W) ids 0..K-1 or ``ignore_index``.
    ``compute()`` -> dict of 0-d tensors: miou, mean_acc, pixel_acc, n_labelled_pixels, missing_pixels, and
    (K,) tensors iou_per_class, acc_per_class (NaN where undefined; torchmetrics squeezes them to 0-d when
    K = 1, so ``reshape(-1)`` them).
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX, **kwargs):
        if num_classes < 1:
            raise ValueError("num_classes must be >= 1")
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index {ignore_index} collides with a class id (0..{num_classes - 1})")
        # column K collects "no prediction"; row K stays empty (ground truth is never K)
        super().__init__(num_classes=num_classes + 1, ignore_index=ignore_index, validate_args=False, **kwargs)
        self.n_classes = num_classes

    def update(self, pred_labels: torch.Tensor, labels: torch.Tensor) -> None:  # type: ignore[override]
        k = self.n_classes
        if labels.ndim == 4 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if pred_labels.ndim == labels.ndim + 1:
            if pred_labels.shape[1] != k:
                raise ValueError(f"score maps have {pred_labels.shape[1]} channels, expected {k} classes")
            pred_labels = pred_labels.argmax(dim=1)
        if pred_labels.shape != labels.shape:
            raise ValueError(f"pred_labels {tuple(pred_labels.shape)} and labels {tuple(labels.shape)} must "
                             f"have the same shape (no implicit resizing)")
        if pred_labels.is_floating_point() or labels.is_floating_point():
            raise TypeError("pred_labels and labels must be integer class ids")
        pred_labels, labels = pred_labels.long(), labels.long()
        bad_gt = (labels != self.ignore_index) & ((labels < 0) | (labels >= k))
        if bad_gt.any():
            raise ValueError(f"ground-truth labels must be 0..{k - 1} or {self.ignore_index}, found "
                             f"{labels[bad_gt].unique()[:8].tolist()}")
        missing = pred_labels == self.ignore_index
        bad_pred = ~missing & ((pred_labels < 0) | (pred_labels >= k))
        if bad_pred.any():
            raise ValueError(f"predicted labels must be 0..{k - 1} or {self.ignore_index} (no prediction), "
                             f"found {pred_labels[bad_pred].unique()[:8].tolist()}")
        pred_labels = torch.where(missing, torch.full_like(pred_labels, k), pred_labels)
        super().update(pred_labels, labels)

    def confusion(self) -> torch.Tensor:
        """(K, K+1) int64: rows ground truth, columns prediction, last column "no prediction"."""
        return self.confmat[: self.n_classes]

    @staticmethod
    def metrics_from_confusion(conf: torch.Tensor) -> dict:
        """The module docstring's formulas on a (K, K+1) or (K, K) confusion matrix (float64 tensors)."""
        c = conf.double()
        k = c.shape[0]
        tp = torch.diagonal(c[:, :k])
        gt = c.sum(1)                 # includes "no prediction"
        pr = c[:, :k].sum(0)
        union = gt + pr - tp
        total = c.sum()
        nan = torch.tensor(float("nan"), dtype=torch.float64, device=c.device)
        present = union > 0
        in_gt = gt > 0
        iou = torch.where(present, tp / union.clamp_min(1), nan)
        acc = torch.where(in_gt, tp / gt.clamp_min(1), nan)
        return {
            "miou": iou[present].mean() if present.any() else nan,
            "mean_acc": acc[in_gt].mean() if in_gt.any() else nan,
            "pixel_acc": tp.sum() / total if total > 0 else nan,
            "iou_per_class": iou,
            "acc_per_class": acc,
        }

    def compute(self) -> dict:  # type: ignore[override]
        conf = self.confusion()
        out = self.metrics_from_confusion(conf)
        out["n_labelled_pixels"] = conf.sum()
        out["missing_pixels"] = conf[:, self.n_classes].sum()
        return out
