"""Your own RGB-D + segmentation data, from plain files (no code to write). Layout::

    ROOT/
      classes.txt                  optional: one class name per line; line k (0-based) names class id k
      intrinsics.json              optional: {"fx": .., "fy": .., "cx": .., "cy": ..} in px of the stored
                                   images (cx, cy: pixel-centre convention, the top-left pixel's centre
                                   is (0, 0))
      {split}/                     e.g. train/, val/, test/
        images/<name>.png|.jpg     RGB (8-bit; grey or palette images are converted to RGB)
        depth/<name>.png           16-bit single-channel PNG, depth in millimetres, 0 = no measurement
        labels/<name>.png          8-bit single-channel (grey 'L' or palette 'P': the pixel *indices*
                                   count) class ids 0..K-1, 255 = ignore
        intrinsics/<name>.json     optional, per image; wins over ROOT/intrinsics.json

Every image needs its depth and labels file of the same size and name stem. A whole ``depth/`` or
``labels/`` folder may be left out (segmentation-only or depth-only data): then every pixel is invalid
(depth) or 255 (labels). Depth: ``valid = png > 0``, ``target = png / 1000`` metres.

Number of classes: the lines of ``classes.txt``; without it, ``num_classes=`` if given, else one more than
the largest id found in the split's label files (scanned once, names ``class_0`` ...).

Intrinsics: per-image json, else ROOT/intrinsics.json, else a guess (``fx = fy = W``, ``cx = (W-1)/2``,
``cy = (H-1)/2``: about a 53 degree horizontal field of view) marked ``extras["intrinsics_source"] =
"guess"``. They only matter with ``model.focal_aware``.

This module also holds the small file readers every loader shares; they raise :class:`DataError` naming
the file and what was expected.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from sosd.data.sample import IGNORE_INDEX, Sample, SceneDataset
from sosd.data.transforms import resize_sample
from sosd.errors import DataError

IMAGE_EXTS = (".png", ".jpg", ".jpeg")


# ---------------------------------------------------------------------------------------- file readers

def require_dir(path, what: str, nonempty: bool = False) -> Path:
    """``path`` as a Path if it is a folder (and, with ``nonempty``, holds something); else DataError."""
    p = Path(path)
    if not p.is_dir():
        if p.exists():
            raise DataError(f"{p}: is a file, not a folder (expected {what})")
        raise DataError(f"{p}: folder not found (expected {what})")
    if nonempty and next(p.iterdir(), None) is None:
        raise DataError(f"{p}: folder is empty (expected {what})")
    return p


def require_file(path, what: str) -> Path:
    """``path`` as a Path if it is a non-empty file; else DataError (missing, a folder, or 0 bytes)."""
    p = Path(path)
    if not p.is_file():
        if p.is_dir():
            raise DataError(f"{p}: is a folder, not a file (expected {what})")
        raise DataError(f"{p}: file not found (expected {what})")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: file is empty (0 bytes; expected {what})")
    return p


# what an image of a given Pillow mode is, for the messages below
_MODE_NAMES = {"1": "a 1-bit black-and-white image", "L": "an 8-bit grey image", "P": "an 8-bit palette image",
               "LA": "an 8-bit grey image with alpha", "PA": "an 8-bit palette image with alpha",
               "RGB": "an 8-bit colour image", "RGBA": "an 8-bit colour image with alpha",
               "CMYK": "a CMYK colour image", "YCbCr": "a YCbCr colour image", "F": "a 32-bit float image",
               "I": "a 32-bit integer image", "I;16": "a 16-bit grey image", "I;16B": "a 16-bit grey image",
               "I;16L": "a 16-bit grey image"}


def _open(path) -> Image.Image:
    p = require_file(path, "an image file")
    try:
        im = Image.open(p)
        im.load()
    except Exception as e:  # PIL raises many types for truncated / non-image files
        raise DataError(f"{p}: cannot read as an image ({type(e).__name__}: {e}); the file is cut short, "
                        f"corrupt, or not a PNG/JPEG image") from None
    if im.width < 1 or im.height < 1:
        raise DataError(f"{p}: image of {im.height}x{im.width} px holds no pixels")
    return im


def png_bit_depth(path) -> int | None:
    """Bits per channel from a PNG's IHDR header (None for other files)."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24]


def read_rgb(path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any 8-bit image file. A 16-bit colour PNG (which Pillow decodes to its high
    byte, i.e. value // 256) is kept at that 8-bit scale with a warning: a file whose values use only the
    low bits (12-bit data in a 16-bit container) would come out nearly black."""
    im = _open(path)
    if im.mode in ("RGB", "RGBA") and png_bit_depth(path) == 16:
        a = np.asarray(im.convert("RGB"))
        warnings.warn(f"{path}: 16-bit colour PNG reduced to 8 bits per channel (value / 256; its brightest "
                      f"channel value is now {int(a.max())} of 255). If its values use only the low bits "
                      f"(e.g. 12-bit data), rescale it to 8-bit yourself first", stacklevel=2)
        return a
    if im.mode not in ("RGB", "RGBA", "L", "P", "LA", "CMYK", "YCbCr"):
        raise DataError(f"{path}: image mode {im.mode} is not 8-bit colour or grey (expected an RGB image; "
                        f"it is {_MODE_NAMES.get(im.mode, 'another kind of image')})")
    try:
        return np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001 - a decoder or palette problem PIL reports only when converting
        raise DataError(f"{path}: cannot convert image mode {im.mode} to RGB ({type(e).__name__}: {e})") \
            from None


def read_uint16_png(path, what: str = "a 16-bit single-channel PNG") -> np.ndarray:
    """(H, W) uint16 of a 16-bit single-channel PNG (Pillow modes I;16 / I;16B / I). A file of another
    kind is a DataError that says what it is: an 8-bit (too few bits), float (not integer units) or colour
    image (a colourised picture, not the values)."""
    im = _open(path)
    if im.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(im).astype(np.uint16)
    if im.mode == "I":
        a = np.asarray(im)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise DataError(f"{path}: values {int(a.min())}..{int(a.max())} outside 0..65535 (expected {what})")
        return a.astype(np.uint16)
    if im.mode in ("L", "P", "1"):
        hint = "8 bits hold only 0..255; save the values as np.uint16"
    elif im.mode == "F":
        hint = "float values are not integer units; round them and save as np.uint16"
    elif im.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LA", "PA"):
        hint = "a colour picture (e.g. a colourised depth map) does not hold the values; save them as one " \
               "channel of np.uint16"
    else:
        hint = "save the values as a single-channel np.uint16 PNG"
    raise DataError(f"{path}: image mode {im.mode} (expected {what}); it is "
                    f"{_MODE_NAMES.get(im.mode, 'another kind of image')}: {hint}")


def read_label_png(path) -> np.ndarray:
    """(H, W) uint8 class ids of a single-channel 8-bit PNG (grey, or palette indices)."""
    im = _open(path)
    if im.mode not in ("L", "P"):
        raise DataError(f"{path}: image mode {im.mode} (expected a single-channel 8-bit label PNG: grey 'L' "
                        f"or palette 'P' holding class ids; it is "
                        f"{_MODE_NAMES.get(im.mode, 'another kind of image')})")
    return np.array(im, dtype=np.uint8)  # palette images: the indices, never the colours


def read_npy(path, what: str = "a .npy array") -> np.ndarray:
    """The array of a .npy file (never unpickling: object arrays are refused), numeric dtypes only."""
    p = require_file(path, what)
    try:
        a = np.load(p, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError, OSError, EOFError, ... on broken files
        raise DataError(f"{p}: cannot read ({type(e).__name__}: {e}); expected {what}") from None
    if not isinstance(a, np.ndarray):  # np.load of a .npz archive
        raise DataError(f"{p}: a .npz archive, not a .npy array (expected {what})")
    if a.dtype.kind not in "biuf":
        raise DataError(f"{p}: array of dtype {a.dtype} (expected {what}, a numeric array)")
    return a


def check_labels(labels: np.ndarray, num_classes: int, path) -> None:
    """Raise if ``labels`` holds an id outside 0..num_classes-1 that is not the ignore index 255."""
    bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        ids = sorted(int(v) for v in np.unique(labels[bad])[:10])
        raise DataError(f"{path}: label ids {ids} outside the class table 0..{num_classes - 1} "
                        f"(and {IGNORE_INDEX} = ignore)")


def check_same_size(a: np.ndarray, hw: tuple, path, what: str) -> None:
    if a.ndim < 2:
        raise DataError(f"{path}: {what} has shape {a.shape} (expected an HxW array, the size of its image)")
    if tuple(a.shape[:2]) != tuple(hw):
        raise DataError(f"{path}: {what} is {a.shape[0]}x{a.shape[1]} (HxW) but its image is "
                        f"{hw[0]}x{hw[1]}")


def check_finite(a: np.ndarray, path, what: str = "depth") -> None:
    finite = np.isfinite(a)
    n = int(a.size - np.count_nonzero(finite))
    if n:
        n_nan = int(np.count_nonzero(np.isnan(a)))
        first = tuple(int(v) for v in np.argwhere(~finite)[0])
        raise DataError(f"{path}: {n} NaN/inf {what} values ({n_nan} NaN, {n - n_nan} inf; the first at "
                        f"index {first}) (expected finite values, 0 = no measurement)")


# Plausibility of depth units. A depth map in millimetres whose largest value is under MM_MIN_PLAUSIBLE
# (2 cm) is almost surely metres written as integers; one in metres whose largest value is over
# M_MAX_PLAUSIBLE_INDOOR (100 m; NYU's Kinect reads up to 10 m) is almost surely millimetres.
MM_MIN_PLAUSIBLE = 20
M_MAX_PLAUSIBLE_INDOOR = 100.0


def check_depth_millimetres(mm: np.ndarray, path) -> None:
    """Raise if a depth map that should be in millimetres looks like metres (see MM_MIN_PLAUSIBLE)."""
    v = mm[mm > 0]
    if v.size and int(v.max()) < MM_MIN_PLAUSIBLE:
        raise DataError(f"{path}: depth values {int(v.min())}..{int(v.max())} look like metres, not "
                        f"millimetres (the farthest pixel would be {int(v.max())} mm away); expected depth in "
                        f"millimetres (3 m = 3000): save (depth_m * 1000).round().astype(np.uint16)")


# A depth map in millimetres whose median valid value is over this (15 m) is implausible for the indoor
# scenes a folder dataset usually holds and is what NYU's raw 0.1 mm PNGs look like read as millimetres.
MM_MEDIAN_SUSPICIOUS = 15000


def warn_depth_tenth_millimetres(mm: np.ndarray, path) -> bool:
    """Warn (once per call) when a millimetre depth map looks like 0.1 mm units; True if it warned."""
    v = mm[mm > 0]
    if v.size and float(np.median(v)) > MM_MEDIAN_SUSPICIOUS:
        warnings.warn(f"{path}: depth values {int(v.min())}..{int(v.max())} read as millimetres put the median "
                      f"pixel {float(np.median(v)) / 1000:.1f} m away, implausibly far for indoor scenes: if the "
                      f"file is in 0.1 mm units (NYU's raw depth PNGs), divide it by 10 to get millimetres",
                      stacklevel=2)
        return True
    return False


def check_depth_metres(d: np.ndarray, path, dataset: str = "NYU") -> None:
    """Raise if an indoor depth map that should be in metres looks like millimetres."""
    v = d[d > 0]
    if v.size and float(v.max()) > M_MAX_PLAUSIBLE_INDOOR:
        raise DataError(f"{path}: depth values up to {float(v.max()):.6g} look like millimetres, not metres "
                        f"({dataset} depth is at most about 10 m); expected depth in metres: divide by 1000")


def read_lines(path, what: str) -> list[str]:
    """The non-blank, stripped lines of a UTF-8 text file (DataError naming it if it is not text)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not a text (UTF-8) file: byte {e.start} is {e.object[e.start:e.start + 1]!r} "
                        f"(expected {what})") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror or e}; expected {what})") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def read_class_names(path) -> list[str]:
    """Class names of ``classes.txt``: line k names class id k, so a blank line inside the list is an error
    (dropping it would shift every later name by one); blank lines at the end are ignored."""
    p = Path(path)
    read_lines(p, "one class name per line")  # the text checks and their messages
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    blank = [i + 1 for i, ln in enumerate(lines) if not ln]
    if blank:
        raise DataError(f"{p}: line {blank[0]} is blank ({len(blank)} blank line(s) before the last name); line "
                        f"k names class id k-1, so a blank line would shift the names after it: write a name "
                        f"on every line (e.g. 'unused') or delete the line")
    return lines


def read_intrinsics_json(path) -> np.ndarray:
    p = require_file(path, 'a JSON object {"fx":..,"fy":..,"cx":..,"cy":..}')
    try:
        d = json.loads(p.read_text())
        for key in ("fx", "fy", "cx", "cy"):
            if isinstance(d[key], bool) or not isinstance(d[key], (int, float)):
                raise TypeError(f"{key} is {d[key]!r}, a {type(d[key]).__name__}, not a number")
        k = np.array([float(d[k]) for k in ("fx", "fy", "cx", "cy")], dtype=np.float32)
    except Exception as e:
        raise DataError(f'{p}: cannot read intrinsics ({type(e).__name__}: {e}); expected a JSON object '
                        f'{{"fx":..,"fy":..,"cx":..,"cy":..}}') from None
    if not np.all(np.isfinite(k)) or k[0] <= 0 or k[1] <= 0:
        raise DataError(f"{p}: intrinsics {k.tolist()} (expected finite fx, fy > 0 and cx, cy in px)")
    return k


# ---------------------------------------------------------------------------------------- dataset

class FolderDataset(SceneDataset):
    """The layout in the module docstring. ``height``/``width`` (None or 0 = stored size) resize with
    :func:`~sosd.data.transforms.resize_sample`."""

    target_kind = "depth"

    def __init__(self, root, split: str = "train", height: int | None = None, width: int | None = None,
                 transform=None, num_classes: int | None = None):
        super().__init__(transform)
        self.root = require_dir(root, f"a dataset root holding {split}/images/ (see sosd.data.folder)",
                                nonempty=True)
        self.split = split
        if not (self.root / split).is_dir():
            have = sorted(q.name + "/" for q in self.root.iterdir() if q.is_dir())
            raise DataError(f"{self.root / split}: folder not found (expected the '{split}' split folder with "
                            f"images/, depth/, labels/; {self.root} holds {', '.join(have) or 'no folders'})")
        self.dir = self.root / split
        img_dir = require_dir(self.dir / "images", "RGB images <name>.png|jpg")
        self.names, self.image_paths = [], []
        for p in sorted(img_dir.iterdir()):
            if p.suffix.lower() in IMAGE_EXTS and p.is_file():
                self.names.append(p.stem)
                self.image_paths.append(p)
        if not self.names:
            raise DataError(f"{img_dir}: no .png/.jpg images (expected <name>.png|jpg)")
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})[:5]
            raise DataError(f"{img_dir}: several images share a name stem {dup} (expected one per name)")
        self.has_depth = (self.dir / "depth").is_dir()
        self.has_labels = (self.dir / "labels").is_dir()
        if not (self.has_depth or self.has_labels):
            raise DataError(f"{self.dir}: neither depth/ nor labels/ found (expected at least one)")
        for sub, has in (("depth", self.has_depth), ("labels", self.has_labels)):
            if has:
                missing = [n for n in self.names if not (self.dir / sub / f"{n}.png").is_file()]
                if missing:
                    want = self.dir / sub / (missing[0] + ".png")
                    other = [q.name for q in (self.dir / sub).glob(missing[0] + ".*")
                             if q.suffix.lower() == ".png"]
                    if other:  # a.PNG: not found on a case-sensitive file system, so say why
                        raise DataError(f"{want}: file not found, but {self.dir / sub / other[0]} is there: {sub} "
                                        f"files must end in lowercase .png; rename them (e.g. "
                                        f"`for f in *.PNG; do mv \"$f\" \"${{f%.PNG}}.png\"; done`)")
                    raise DataError(f"{want}: file not found (expected a "
                                    f"{sub} PNG for every image; {len(missing)} missing)")
        self.height, self.width = height, width
        self._warned_units = False  # the 0.1 mm warning: once per dataset, not once per sample

        classes = self.root / "classes.txt"
        if classes.is_file():
            names = read_class_names(classes)
            if not names:
                raise DataError(f"{classes}: empty (expected one class name per line)")
            self.class_names = names
            self.num_classes = len(names)
        else:
            if num_classes is None:
                num_classes = self._scan_num_classes()
            self.num_classes = int(num_classes)
            self.class_names = [f"class_{k}" for k in range(self.num_classes)]
        root_k = self.root / "intrinsics.json"
        self._root_intrinsics = read_intrinsics_json(root_k) if root_k.is_file() else None

    def _scan_num_classes(self) -> int:
        top = -1
        if self.has_labels:
            for n in self.names:
                lab = read_label_png(self.dir / "labels" / f"{n}.png")
                ids = lab[lab != IGNORE_INDEX]
                if ids.size:
                    top = max(top, int(ids.max()))
        return max(top + 1, 1)

    def __len__(self) -> int:
        return len(self.names)

    def sample(self, i: int) -> Sample:
        name = self.names[i]
        image = read_rgb(self.image_paths[i])
        h, w = image.shape[:2]
        if self.has_depth:
            p = self.dir / "depth" / f"{name}.png"
            mm = read_uint16_png(p, "a 16-bit single-channel PNG of depth in millimetres, 0 = invalid")
            check_same_size(mm, (h, w), p, "depth")
            check_depth_millimetres(mm, p)
            if not self._warned_units:
                self._warned_units = warn_depth_tenth_millimetres(mm, p)
            valid = mm > 0
            target = mm.astype(np.float32) / 1000.0
        else:
            valid = np.zeros((h, w), bool)
            target = np.zeros((h, w), np.float32)
        if self.has_labels:
            p = self.dir / "labels" / f"{name}.png"
            lab = read_label_png(p)
            check_same_size(lab, (h, w), p, "labels")
            check_labels(lab, self.num_classes, p)
            labels = lab.astype(np.int64)
        else:
            labels = np.full((h, w), IGNORE_INDEX, np.int64)
        per_image = self.dir / "intrinsics" / f"{name}.json"
        if per_image.is_file():
            k, src = read_intrinsics_json(per_image), "file"
        elif self._root_intrinsics is not None:
            k, src = self._root_intrinsics.copy(), "file"
        else:
            k, src = np.array([w, w, (w - 1) / 2, (h - 1) / 2], np.float32), "guess"
        s = Sample(image=image, target=target, valid=valid, labels=labels, intrinsics=k, id=name, index=i,
                   target_kind="depth", extras={"intrinsics_source": src})
        return resize_sample(s, self.height, self.width)
