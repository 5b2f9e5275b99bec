"""Cityscapes from the official release folders (leftImg8bit, gtFine, disparity, camera).

Layout (the release's zips unpacked into one ROOT)::

    ROOT/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png     2048x1024 RGB
    ROOT/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png      label ids 0..33
    ROOT/disparity/{split}/{city}/{city}_{seq}_{frame}_disparity.png         uint16 p
    ROOT/camera/{split}/{city}/{city}_{seq}_{frame}_camera.json              extrinsic.baseline (m),
                                                                             intrinsic.fx, fy, u0, v0 (px)

Splits: train (2975), val (500), test (1525; its gtFine labels are all void in the public release).

* Labels: the 34 label ids -> the 19 train ids of the benchmark, everything else -> 255 (ignore).
* Disparity: ``d = (p - 1) / 256`` px at 2048 wide for ``p > 0``; ``p = 0`` = no measurement
  (``valid = False``). ``target="depth"`` gives metric depth ``baseline * fx / d`` (camera.json), valid
  where ``p > 1`` (``d > 0``).
* The paper's protocol (§4.1, after Ozan et al.): everything resized to 256x512 (the default
  ``height, width``): image bilinear, labels/disparity nearest (no blending of valid and invalid
  pixels), **disparity divided by 4** (it is measured in pixels of the evaluated 512-wide image); depth is
  unchanged by resizing; intrinsics scaled (see :mod:`sosd.data.transforms`).
* Intrinsics come from camera.json; if a frame has none (allowed only for ``target="disparity"``), the
  typical Cityscapes values below are used and ``extras["intrinsics_source"] = "default"``.
* ``id`` = ``f"{city}/{frame}"``, frame = the file name before ``_leftImg8bit`` (e.g.
  ``aachen/aachen_000000_000019``).

The labelId -> trainId table is embedded below instead of importing ``cityscapesscripts.helpers.labels``:
it is 34 fixed numbers of the benchmark (unchanged since 2016), while the ``cityscapesscripts`` package
pulls requests, pyquaternion, coloredlogs, matplotlib and the obsolete ``typing`` backport as
dependencies. The tests compare this table with ``cityscapesscripts`` when it is installed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sosd.data.folder import (check_same_size, read_label_png, read_rgb, read_uint16_png, require_dir,
                              require_file)
from sosd.data.sample import IGNORE_INDEX, Sample, SceneDataset
from sosd.data.transforms import resize_sample
from sosd.errors import DataError

# labelId -> trainId, from cityscapesscripts/helpers/labels.py (ids 0..33; license plate -1 never occurs
# in *_labelIds.png). 255 = ignored in training and evaluation.
LABEL_TO_TRAIN = {
    0: 255, 1: 255, 2: 255, 3: 255, 4: 255, 5: 255, 6: 255, 7: 0, 8: 1, 9: 255, 10: 255, 11: 2, 12: 3,
    13: 4, 14: 255, 15: 255, 16: 255, 17: 5, 18: 255, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
    26: 13, 27: 14, 28: 15, 29: 255, 30: 255, 31: 16, 32: 17, 33: 18,
}
CLASS_NAMES = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
               "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
               "motorcycle", "bicycle"]
# typical camera of the release (most frames): used only when a frame has no camera.json
DEFAULT_CAMERA = {"baseline": 0.209313, "fx": 2262.52, "fy": 2265.30, "u0": 1096.98, "v0": 513.137}
SPLITS = ("train", "val", "test")


def label_lut() -> np.ndarray:
    """uint8 (256,) map labelId -> trainId (ids outside 0..33 -> 255)."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for k, v in LABEL_TO_TRAIN.items():
        lut[k] = v
    return lut


def read_camera(path) -> dict:
    p = require_file(path, "a Cityscapes camera.json")
    try:
        d = json.loads(p.read_text())
        cam = {"baseline": float(d["extrinsic"]["baseline"])}
        cam.update({k: float(d["intrinsic"][k]) for k in ("fx", "fy", "u0", "v0")})
    except Exception as e:
        raise DataError(f"{p}: cannot read camera ({type(e).__name__}: {e}); expected "
                        f'{{"extrinsic": {{"baseline": ..}}, "intrinsic": {{"fx": .., "fy": .., "u0": .., '
                        f'"v0": ..}}}}') from None
    if cam["baseline"] <= 0 or cam["fx"] <= 0:
        raise DataError(f"{p}: baseline {cam['baseline']} / fx {cam['fx']} (expected positive values)")
    return cam


class Cityscapes(SceneDataset):
    """Cityscapes (official layout) with disparity (px) or metric depth targets; see the module docstring.

    ``height, width``: output size (default 256x512, the paper's); None or 0 keeps 1024x2048."""

    num_classes = 19
    class_names = CLASS_NAMES

    def __init__(self, root, split: str = "train", target: str = "disparity", height: int | None = 256,
                 width: int | None = 512, transform=None):
        super().__init__(transform)
        self.root = require_dir(root, "the Cityscapes root holding leftImg8bit/, gtFine/, disparity/, "
                                      "camera/", nonempty=True)
        if split not in SPLITS:
            raise DataError(f"Cityscapes split must be one of {', '.join(SPLITS)}, got {split!r}")
        if target not in ("disparity", "depth"):
            raise DataError(f"Cityscapes target must be 'disparity' or 'depth', got {target!r}")
        self.split, self.target_kind = split, target
        self.height, self.width = height, width
        img_root = require_dir(self.root / "leftImg8bit" / split,
                               f"leftImg8bit/{split}/<city>/<city>_<seq>_<frame>_leftImg8bit.png")
        self.frames = []  # (city, frame)
        for city_dir in sorted(p for p in img_root.iterdir() if p.is_dir()):
            for f in sorted(city_dir.glob("*_leftImg8bit.png")):
                self.frames.append((city_dir.name, f.name[: -len("_leftImg8bit.png")]))
        if not self.frames:
            raise DataError(f"{img_root}: no <city>/*_leftImg8bit.png images found")
        need = [("gtFine", "_gtFine_labelIds.png"), ("disparity", "_disparity.png")]
        if target == "depth":
            need.append(("camera", "_camera.json"))
        for folder, suffix in need:
            missing = [self._path(folder, c, fr, suffix) for c, fr in self.frames]
            missing = [p for p in missing if not p.is_file()]
            if missing:
                raise DataError(f"{missing[0]}: file not found (expected {folder}/{split}/<city>/*{suffix} "
                                f"for every image; {len(missing)} missing)")
        self._lut = label_lut()

    def _path(self, folder: str, city: str, frame: str, suffix: str) -> Path:
        return self.root / folder / self.split / city / f"{frame}{suffix}"

    def __len__(self) -> int:
        return len(self.frames)

    def paths(self, i: int) -> dict[str, Path]:
        city, frame = self.frames[i]
        return {"image": self._path("leftImg8bit", city, frame, "_leftImg8bit.png"),
                "labels": self._path("gtFine", city, frame, "_gtFine_labelIds.png"),
                "disparity": self._path("disparity", city, frame, "_disparity.png"),
                "camera": self._path("camera", city, frame, "_camera.json")}

    def sample(self, i: int) -> Sample:
        city, frame = self.frames[i]
        p = self.paths(i)
        image = read_rgb(p["image"])
        h, w = image.shape[:2]
        ids = read_label_png(p["labels"])
        check_same_size(ids, (h, w), p["labels"], "labelIds")
        if ids.max(initial=0) > 33:
            bad = sorted(int(v) for v in np.unique(ids[ids > 33])[:10])
            raise DataError(f"{p['labels']}: label ids {bad} outside the Cityscapes table 0..33")
        labels = self._lut[ids].astype(np.int64)
        raw = read_uint16_png(p["disparity"], "a 16-bit disparity PNG, disparity = (p - 1) / 256")
        check_same_size(raw, (h, w), p["disparity"], "disparity")
        disp = np.where(raw > 0, (raw.astype(np.float32) - 1.0) / 256.0, 0.0).astype(np.float32)
        if p["camera"].is_file():
            cam, src = read_camera(p["camera"]), "file"
        elif self.target_kind == "depth":
            raise DataError(f"{p['camera']}: file not found (expected camera.json for metric depth)")
        else:
            cam, src = dict(DEFAULT_CAMERA), "default"
        if self.target_kind == "disparity":
            valid = raw > 0
            target = disp
        else:
            valid = raw > 1  # p = 1 is disparity 0: infinitely far, no metric depth
            target = np.where(valid, cam["baseline"] * cam["fx"] / np.where(valid, disp, 1.0), 0.0)
            target = target.astype(np.float32)
        k = np.array([cam["fx"], cam["fy"], cam["u0"], cam["v0"]], np.float32)
        s = Sample(image=image, target=target, valid=valid, labels=labels, intrinsics=k, id=f"{city}/{frame}",
                   index=i, target_kind=self.target_kind,
                   extras={"intrinsics_source": src, "baseline": cam["baseline"]})
        return resize_sample(s, self.height, self.width)
