"""The one sample format every dataset returns (synthetic, NYU Depth v2, Cityscapes, folders).

A dataset is a ``torch.utils.data.Dataset`` whose ``sample(i)`` returns a :class:`Sample` of numpy arrays
and whose ``__getitem__`` returns :func:`to_tensors` of it (after the dataset's transform).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from sosd.errors import DataError, SOSDError

IGNORE_INDEX = 255  # label of unlabelled pixels in every dataset (Cityscapes' convention)


@dataclass
class Sample:
    image: np.ndarray        # (H, W, 3) uint8 RGB
    target: np.ndarray       # (H, W) float32: metric depth in metres, or disparity in px (see target_kind)
    valid: np.ndarray        # (H, W) bool: pixels whose target is a measurement
    labels: np.ndarray       # (H, W) int64 class ids 0..K-1, IGNORE_INDEX where unlabelled
    intrinsics: np.ndarray   # (4,) float32 fx, fy, cx, cy in px of *this* image (scaled with it)
    id: str = ""             # stable name: file stem, or "<preset>-<seed>-<index>"
    index: int = 0           # position in its dataset
    target_kind: str = "depth"  # "depth" (metres) | "disparity" (px)
    extras: dict = field(default_factory=dict)

    def replace(self, **kw) -> "Sample":
        return replace(self, **kw)


def to_tensors(s: Sample) -> dict:
    """Sample -> dict of tensors: image float (3,H,W) in [0,1], target/valid (1,H,W), labels (H,W)."""
    return {
        "image": torch.from_numpy(np.ascontiguousarray(s.image.transpose(2, 0, 1))).float().div_(255.0),
        "target": torch.from_numpy(np.ascontiguousarray(s.target, dtype=np.float32))[None],
        "valid": torch.from_numpy(np.ascontiguousarray(s.valid, dtype=bool))[None],
        "labels": torch.from_numpy(np.ascontiguousarray(s.labels, dtype=np.int64)),
        "intrinsics": torch.from_numpy(np.asarray(s.intrinsics, dtype=np.float32)),
        "index": torch.tensor(s.index, dtype=torch.int64),
    }


class SceneDataset(torch.utils.data.Dataset):
    """Base class: subclasses set the class attributes and implement ``__len__`` and ``sample``."""

    num_classes: int = 0
    class_names: list[str] = []
    target_kind: str = "depth"
    ignore_index: int = IGNORE_INDEX

    def __init__(self, transform=None):
        self.transform = transform  # callable(Sample, index) -> Sample, e.g. data.transforms.PaperAugment

    def __len__(self) -> int:
        raise NotImplementedError

    def sample(self, i: int) -> Sample:
        raise NotImplementedError

    def __getitem__(self, i: int) -> dict:
        try:
            s = self.sample(i)
        except SOSDError as e:
            raise WorkerDataError(str(e)) from None
        if self.transform is not None:
            s = self.transform(s, i)
        return to_tensors(s)


class WorkerDataError(DataError):
    """The DataError of a sample read through ``__getitem__``, which is what a DataLoader calls.

    In a DataLoader worker process, torch re-raises an exception in the main process as
    ``type(e)("Caught <type> in DataLoader worker process N. Original Traceback ...: <message>")``, so the
    message the CLI prints would start with a worker traceback. This class keeps only the original message
    (the text after the last ``<module>.WorkerDataError: `` of that traceback); in the main process
    (num_workers=0) it is just the DataError's message."""

    def __init__(self, message: str = ""):
        marker = f"{type(self).__module__}.{type(self).__qualname__}: "
        if "Original Traceback" in message and marker in message:
            message = message.rsplit(marker, 1)[1].rstrip("\n")
        super().__init__(message)
