"""Checks of loaded samples: what ``sosd data check`` reports for every sample, and the check of the first
sample of each split that training runs before its first step (bad data stops the run there, naming the
file).

Used by the CLI (:mod:`sosd.data.command`) and by training (:mod:`sosd.train.loop`); it imports neither.
"""
from __future__ import annotations

import numpy as np

from sosd.data.sample import IGNORE_INDEX, Sample
from sosd.errors import DataError, SOSDError


def sample_problems(s: Sample, num_classes: int) -> list[str]:
    """What is wrong with a loaded sample (empty list = fine)."""
    out = []
    img = s.image
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        out.append(f"image is {getattr(img, 'dtype', type(img))} {getattr(img, 'shape', '')} "
                   f"(expected uint8 HxWx3)")
        return out
    hw = img.shape[:2]
    for name, a, dt in (("target", s.target, np.float32), ("valid", s.valid, np.bool_),
                        ("labels", s.labels, np.int64)):
        if not isinstance(a, np.ndarray) or a.dtype != dt:
            out.append(f"{name} dtype {getattr(a, 'dtype', type(a))} (expected {np.dtype(dt).name})")
        if getattr(a, "shape", None) != hw:
            out.append(f"{name} shape {getattr(a, 'shape', None)} (expected {hw}, the image's)")
    if out:
        return out
    nonfinite = int(s.target.size - np.count_nonzero(np.isfinite(s.target)))
    if nonfinite:
        out.append(f"{nonfinite} NaN/inf {s.target_kind} values")
    # depth must be > 0 where valid; a disparity of 0 is a valid measurement (Cityscapes p = 1: far away)
    bad_t = s.valid & ~((s.target >= 0) if s.target_kind == "disparity" else (s.target > 0))
    if bad_t.any():
        op = "< 0" if s.target_kind == "disparity" else "<= 0"
        out.append(f"{int(bad_t.sum())} valid pixels with {s.target_kind} {op}")
    bad = (s.labels != IGNORE_INDEX) & ((s.labels < 0) | (s.labels >= num_classes))
    if bad.any():
        ids = sorted(int(v) for v in np.unique(s.labels[bad])[:10])
        out.append(f"label ids {ids} outside the class table 0..{num_classes - 1}")
    k = np.asarray(s.intrinsics)
    if k.shape != (4,) or not np.all(np.isfinite(k)) or k[0] <= 0 or k[1] <= 0:
        out.append(f"intrinsics {k.tolist()} (expected 4 finite numbers fx, fy > 0, cx, cy)")
    return out


MIN_SIDE = 32  # the network's smallest input side (sosd.models.sosd_net.MIN_INPUT_SIZE)


def check_first_sample(ds, what: str, num_classes: int | None = None) -> None:
    """Read sample 0 of ``ds`` and raise a DataError naming ``what`` (e.g. "the training set (folder,
    split 'train')") and the file if it cannot be read, is malformed (the checks of ``sosd data check``),
    or is smaller than the network accepts. For a check before any work starts: the rest of the set is
    read during training (``sosd data check`` reads every sample)."""
    if len(ds) == 0:
        raise DataError(f"{what} is empty")
    try:
        s = ds.sample(0)
    except SOSDError as e:
        raise DataError(f"{what}, first sample: {e}") from None
    k = int(num_classes if num_classes is not None else ds.num_classes)
    problems = sample_problems(s, k)
    if problems:
        raise DataError(f"{what}, first sample (id {s.id or 0}): {'; '.join(problems)}")
    h, w = s.image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DataError(f"{what}, first sample (id {s.id or 0}): {h}x{w} px is too small for the network "
                        f"(each side must be at least {MIN_SIDE} px); set data.height and data.width")
