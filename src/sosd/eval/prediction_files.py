"""Prediction files: the one implementation that ``sosd predict`` writes and the offline evaluator reads.

Two formats, one per target kind (``format_for(target_kind)``):

* ``nyu`` (target_kind "depth"): ``DIR/<id>_depth.png`` uint16 depth in millimetres (0 = no prediction)
  and ``DIR/<id>_labels.png`` uint8 class 1..K (0 = no prediction); internal class c is written as c+1
  (NYU's 40 classes 1..40 are internal ids 0..39).
* ``cityscapes`` (target_kind "disparity"): ``DIR/<id>_disparity.png`` uint16 p, disparity = (p − 1)/256
  px of the evaluated image (0 = no prediction) and ``DIR/<id>_labelTrainIds.png`` uint8 trainIds 0..K-1
  (255 = no prediction).

``<id>`` is the sample's ``id``: NYU "0001" (1-based index in the labelled .mat), Cityscapes
"<city>/<frame>" (a sub-folder per city), synthetic "indoor-0-000012" (flat). In memory, "no prediction"
is NaN for depth/disparity and 255 (``IGNORE_INDEX``) for labels, so ``write`` then ``read`` round-trips
exactly up to the quantisation (1 mm, 1/256 px).

Writing rules: NaN = no prediction; other values are clipped to what the file can hold: depth to
[1 mm, 65.535 m] (so a prediction <= 0 becomes 1 mm, still a prediction), disparity to [0, 255.996] px.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from sosd.data.sample import IGNORE_INDEX
from sosd.errors import SOSDError


@dataclass(frozen=True)
class PredictionFormat:
    name: str            # "nyu" | "cityscapes"
    target_kind: str     # "depth" | "disparity"
    values_suffix: str   # file name ending of the depth/disparity PNG
    labels_suffix: str   # file name ending of the label PNG
    label_offset: int    # file value = internal id + label_offset
    none_label: int      # file value meaning "no prediction"
    scale: float         # file value = round(value * scale) + value_offset
    value_offset: int

    def paths(self, pred_dir, sample_id: str) -> tuple[Path, Path]:
        """(values path, labels path) of a sample."""
        stem = _stem(sample_id)
        d = Path(pred_dir)
        return d / f"{stem}_{self.values_suffix}.png", d / f"{stem}_{self.labels_suffix}.png"

    # -------------------------------------------------------------------------------- encoding
    def encode_values(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        none = np.isnan(v)
        lo = 1 if self.target_kind == "depth" else self.value_offset  # depth 0 means none: floor to 1 mm
        q = np.round(np.nan_to_num(v, nan=0.0, posinf=1e9, neginf=-1e9) * self.scale) + self.value_offset
        q = np.clip(q, lo, 65535)
        q[none] = 0
        return q.astype(np.uint16)

    def decode_values(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q)
        v = (q.astype(np.float64) - self.value_offset) / self.scale
        v[q == 0] = np.nan
        return v.astype(np.float32)

    def encode_labels(self, labels: np.ndarray) -> np.ndarray:
        lab = np.asarray(labels)
        if lab.dtype.kind not in "iub":
            raise SOSDError(f"labels must be integer class ids, got dtype {lab.dtype}")
        lab = lab.astype(np.int64)
        none = lab == IGNORE_INDEX
        bad = ~none & ((lab < 0) | (lab + self.label_offset > 255) | (lab + self.label_offset == self.none_label))
        if bad.any():
            raise SOSDError(f"labels {np.unique(lab[bad])[:8].tolist()} cannot be written in the {self.name} "
                            f"format (class ids 0..{254 - self.label_offset}, {IGNORE_INDEX} = no prediction)")
        out = lab + self.label_offset
        out[none] = self.none_label
        return out.astype(np.uint8)

    def decode_labels(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q).astype(np.int64)
        out = q - self.label_offset
        out[q == self.none_label] = IGNORE_INDEX
        return out


NYU = PredictionFormat("nyu", "depth", "depth", "labels", label_offset=1, none_label=0, scale=1000.0,
                       value_offset=0)
CITYSCAPES = PredictionFormat("cityscapes", "disparity", "disparity", "labelTrainIds", label_offset=0,
                              none_label=255, scale=256.0, value_offset=1)
FORMATS = {"nyu": NYU, "cityscapes": CITYSCAPES}


def format_for(target_kind: str) -> PredictionFormat:
    """The file format of a dataset's ``target_kind``: depth -> nyu, disparity -> cityscapes."""
    for f in FORMATS.values():
        if f.target_kind == target_kind:
            return f
    raise SOSDError(f"no prediction file format for target_kind {target_kind!r} (depth or disparity)")


def get_format(fmt) -> PredictionFormat:
    """A PredictionFormat from itself or its name ("nyu" | "cityscapes")."""
    if isinstance(fmt, PredictionFormat):
        return fmt
    if fmt in FORMATS:
        return FORMATS[fmt]
    raise SOSDError(f"unknown prediction format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _stem(sample_id: str) -> str:
    sid = str(sample_id)
    parts = PurePosixPath(sid).parts
    if not sid or "\\" in sid or sid.startswith("/") or any(p in ("..", ".") for p in parts) or sid.endswith("/"):
        raise SOSDError(f"sample id {sample_id!r} cannot name a prediction file (need a relative name such "
                        f"as '0001', 'city/frame' or 'indoor-0-000012')")
    return sid


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    while x.ndim > 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        raise SOSDError(f"a prediction must be one (H, W) map, got shape {x.shape}")
    return x


class Prediction(NamedTuple):
    values: np.ndarray | None  # (H, W) float32 depth in m / disparity in px, NaN = no prediction
    labels: np.ndarray | None  # (H, W) int64 internal class ids, IGNORE_INDEX (255) = no prediction


def write_prediction(pred_dir, sample_id: str, depth_or_disp, labels, fmt) -> list[Path]:
    """Write a sample's prediction files (either array may be None to skip it); returns the paths written.

    depth_or_disp: (H, W) (or (1, H, W)) array/tensor in metres or px, NaN = no prediction.
    labels: (H, W) internal class ids 0..K-1, 255 = no prediction.
    """
    from PIL import Image

    f = get_format(fmt)
    vpath, lpath = f.paths(pred_dir, sample_id)
    written = []
    if depth_or_disp is not None:
        vpath.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(f.encode_values(_numpy(depth_or_disp))).save(vpath)
        written.append(vpath)
    if labels is not None:
        lpath.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(f.encode_labels(_numpy(labels))).save(lpath)
        written.append(lpath)
    return written


def _read_png(path: Path, bits: int, shape, sample_id: str) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise SOSDError(f"prediction file {path} is missing (sample '{sample_id}')")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.array(im)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ... on a broken file
        raise SOSDError(f"prediction file {path} cannot be read as an image: {e} (the file is cut short, "
                        f"corrupt, or not a PNG)") from None
    if bits == 16:
        ok = mode.startswith("I;16") or (mode == "I" and arr.size and arr.min() >= 0 and arr.max() <= 65535)
        want = "16-bit greyscale PNG (uint16)"
    else:
        ok = mode in ("L", "P")
        want = "8-bit greyscale PNG (uint8)"
    if not ok:
        raise SOSDError(f"prediction file {path} has the wrong type: expected a {want}, got PIL mode "
                        f"{mode!r} (dtype {arr.dtype}, shape {arr.shape})")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise SOSDError(f"prediction file {path} is {arr.shape[0]}x{arr.shape[1]} (HxW) but the evaluated "
                        f"image is {shape[0]}x{shape[1]}; predictions must be at the evaluated size")
    return arr.astype(np.uint16 if bits == 16 else np.uint8)


def read_prediction(pred_dir, sample_id: str, fmt, shape=None, num_classes: int | None = None,
                    depth: bool = True, labels: bool = True) -> Prediction:
    """Read a sample's prediction files. ``shape`` (H, W) is checked when given; ``num_classes`` checks
    that every label is a class or "no prediction". Raises :class:`SOSDError` naming the file when it is
    missing, unreadable, of the wrong type or size, or holds an impossible label."""
    f = get_format(fmt)
    vpath, lpath = f.paths(pred_dir, sample_id)
    values = f.decode_values(_read_png(vpath, 16, shape, sample_id)) if depth else None
    lab = None
    if labels:
        lab = f.decode_labels(_read_png(lpath, 8, shape, sample_id))
        if num_classes is not None:
            bad = (lab != IGNORE_INDEX) & ((lab < 0) | (lab >= num_classes))
            if bad.any():
                file_vals = np.unique(lab[bad] + f.label_offset)[:8].tolist()
                raise SOSDError(f"prediction file {lpath} holds values {file_vals} that are no class of this "
                                f"dataset ({f.name} format: {f.label_offset}..{num_classes - 1 + f.label_offset}, "
                                f"{f.none_label} = no prediction)")
    return Prediction(values, lab)
