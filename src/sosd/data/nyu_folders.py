"""NYU Depth v2 in the two preprocessed folder formats other multi-task codebases distribute.

**MTAN** (lorenmt/mtan ``im2im_pred/create_dataset.py``; also used by LibMTL, AuxiLearn, Nash-MTL, ...)::

    ROOT/{train,val}/image/<i>.npy    (288, 384, 3) float in [0, 1]   (<i> = 0, 1, ... without padding)
    ROOT/{train,val}/label/<i>.npy    (288, 384) float, 13-class ids 0..12, -1 = unlabelled
    ROOT/{train,val}/depth/<i>.npy    (288, 384, 1) (or (288, 384)) float metres, 0 = no measurement
    ROOT/{train,val}/normal/<i>.npy   (not used here)

``train`` holds the 795 official training images, ``val`` the 654 official test images (so this loader's
split "test" reads ``val/``; "val" is accepted too). Every file is an image of NYU resized from 480x640 to
288x384 (factor 0.6), so the intrinsics are NYU's scaled by 0.6. The class order is the 13-class table
of ``class13Mapping.mat`` (bed, books, ceiling, chair, floor, furniture, objects, picture, sofa, table, tv,
wall, window) minus one. MTAN's release has no stored ids: a sample's id is ``f"{folder}/{i}"``. This
layout was checked against MTAN's loader (``np.load(.../image/{index}.npy)``, ``np.moveaxis(.., -1, 0)``
for image and depth); no sample file is public, so the value ranges above follow the format's description.

**NYUD_MT** (the ASTMT / Multi-Task-Learning-PyTorch release ``NYUD_MT.tgz``)::

    ROOT/images/<id>.jpg           RGB
    ROOT/segmentation/<id>.png     8-bit class ids 0..40 with 0 = void
    ROOT/depth/<id>.npy            float metres (H, W) (or (H, W, 1)), 0 = no measurement
    ROOT/gt_sets/{train,val}.txt   one <id> per line (val = the 654 official test images)
    ROOT/edge/, normals/           (not used here)

Label reading: ASTMT's loader (``_load_semseg``) maps 0 -> 255 and c -> c - 1, i.e. the PNGs hold the 40
classes of Gupta et al. as 1..40 with 0 = void, exactly like ``label40`` of the official release; this is
the default here (``label_zero="void"``). If your copy stores 0..39 with 255 = ignore, pass
``label_zero="class"``. Depth validity follows ASTMT's evaluation (``valid = depth != 0``, plus finite).
Without ``gt_sets/`` every image of ``images/`` is used whatever the split, with a warning. Intrinsics:
NYU's, scaled to the stored size (exact for a plain resize of the 640x480 frames; only approximate for a
border-cropped copy - pass ``intrinsics=`` if you know better).
"""
from __future__ import annotations

import re
import warnings

import numpy as np

from sosd.data.folder import (check_depth_metres, check_finite, check_labels, check_same_size, read_label_png,
                              read_lines, read_npy, read_rgb, require_dir)
from sosd.data.nyu import NYU_HEIGHT, NYU_INTRINSICS, NYU_WIDTH, load_class_mapping
from sosd.data.sample import IGNORE_INDEX, Sample, SceneDataset
from sosd.data.transforms import resize_sample, scale_intrinsics
from sosd.errors import DataError


def _nyu_intrinsics(h: int, w: int) -> np.ndarray:
    return scale_intrinsics(np.array(NYU_INTRINSICS, np.float32), w / NYU_WIDTH, h / NYU_HEIGHT)


def _depth2d(d: np.ndarray, path) -> np.ndarray:
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[..., 0]
    if d.ndim != 2:
        raise DataError(f"{path}: depth array of shape {d.shape} (expected (H, W) or (H, W, 1))")
    if not np.issubdtype(d.dtype, np.floating) and not np.issubdtype(d.dtype, np.integer):
        raise DataError(f"{path}: depth dtype {d.dtype} (expected float metres)")
    d = d.astype(np.float32)
    check_finite(d, path)
    check_depth_metres(d, path)
    return d


class NYUv2MTAN(SceneDataset):
    """MTAN's preprocessed NYUv2 (.npy, 13 classes, 288x384); see the module docstring."""

    target_kind = "depth"
    num_classes = 13

    def __init__(self, root, split: str = "train", height: int | None = 288, width: int | None = 384,
                 transform=None):
        super().__init__(transform)
        root = require_dir(root, "MTAN's NYUv2 folder with train/ and val/ (image/, label/, depth/ .npy)",
                           nonempty=True)
        if split not in ("train", "val", "test"):
            raise DataError(f"MTAN NYUv2 split must be 'train' or 'test' (= the val/ folder), got {split!r}")
        self.folder = "train" if split == "train" else "val"
        self.dir = require_dir(root / self.folder,
                               f"MTAN's {self.folder}/ folder with image/, label/, depth/")
        for sub in ("image", "label", "depth"):
            require_dir(self.dir / sub, f"<i>.npy files of {sub}")
        nums = sorted(int(m.group(1)) for p in (self.dir / "image").iterdir()
                      if (m := re.fullmatch(r"(\d+)\.npy", p.name)))
        if not nums:
            raise DataError(f"{self.dir / 'image'}: no <i>.npy files (expected 0.npy, 1.npy, ...)")
        if nums != list(range(len(nums))):
            gap = next(k for k, n in enumerate(nums) if n != k)
            raise DataError(f"{self.dir / 'image' / f'{gap}.npy'}: file not found (expected "
                            f"0..{len(nums) - 1} numbered without gaps, as MTAN's loader reads index i "
                            f"from <i>.npy)")
        for sub in ("label", "depth"):
            missing = [n for n in nums if not (self.dir / sub / f"{n}.npy").is_file()]
            if missing:
                raise DataError(f"{self.dir / sub / f'{missing[0]}.npy'}: file not found (expected a {sub} "
                                f".npy for every image; {len(missing)} missing)")
        self.n = len(nums)
        self.height, self.width = height, width
        self.class_names = load_class_mapping()["names13"]

    def __len__(self) -> int:
        return self.n

    def sample(self, i: int) -> Sample:
        p_img, p_lab, p_dep = (self.dir / sub / f"{i}.npy" for sub in ("image", "label", "depth"))
        img = read_npy(p_img, "an (H, W, 3) float image in [0, 1]")
        if img.ndim != 3 or img.shape[2] != 3:
            raise DataError(f"{p_img}: shape {img.shape} (expected (H, W, 3) float in [0, 1])")
        if img.dtype == np.uint8:
            image = img
        elif np.issubdtype(img.dtype, np.floating):
            check_finite(img, p_img, "image")
            if img.size and (img.min() < -1e-3 or img.max() > 1 + 1e-3):
                raise DataError(f"{p_img}: values in [{img.min():.3g}, {img.max():.3g}] (expected a float "
                                f"image in [0, 1])")
            image = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
        else:
            raise DataError(f"{p_img}: dtype {img.dtype} (expected float in [0, 1])")
        h, w = image.shape[:2]
        lab = read_npy(p_lab, "an (H, W) array of 13-class ids, -1 = unlabelled")
        if lab.ndim == 3 and lab.shape[2] == 1:
            lab = lab[..., 0]
        if lab.ndim != 2:
            raise DataError(f"{p_lab}: shape {lab.shape} (expected (H, W) class ids)")
        check_same_size(lab, (h, w), p_lab, "label")
        labf = lab.astype(np.float64)
        if not np.all(np.isfinite(labf)) or np.any(labf != np.round(labf)):
            raise DataError(f"{p_lab}: non-integer label values (expected ids 0..12 and -1)")
        labels = labf.astype(np.int64)
        labels[labels == -1] = IGNORE_INDEX
        check_labels(labels, self.num_classes, p_lab)
        depth = _depth2d(read_npy(p_dep, "an (H, W, 1) float depth in metres"), p_dep)
        check_same_size(depth, (h, w), p_dep, "depth")
        valid = depth > 0
        s = Sample(image=image, target=np.where(valid, depth, 0).astype(np.float32), valid=valid,
                   labels=labels, intrinsics=_nyu_intrinsics(h, w), id=f"{self.folder}/{i}", index=i,
                   target_kind="depth")
        return resize_sample(s, self.height, self.width)


class NYUDMT(SceneDataset):
    """The NYUD_MT release (ASTMT): 40 classes, depth .npy in metres; see the module docstring."""

    target_kind = "depth"
    num_classes = 40

    def __init__(self, root, split: str = "train", height: int | None = None, width: int | None = None,
                 transform=None, label_zero: str = "void", intrinsics=None):
        super().__init__(transform)
        self.root = require_dir(root, "the NYUD_MT folder with images/, segmentation/, depth/, gt_sets/",
                                nonempty=True)
        if label_zero not in ("void", "class"):
            raise DataError(f"label_zero must be 'void' (0 = void, 1..40 classes) or 'class' (0..39, 255 "
                            f"ignore), got {label_zero!r}")
        self.label_zero = label_zero
        for sub in ("images", "segmentation", "depth"):
            require_dir(self.root / sub, f"NYUD_MT's {sub}/ folder")
        txt_split = {"test": "val"}.get(split, split)
        sets = self.root / "gt_sets"
        if sets.is_dir():
            f = sets / f"{txt_split}.txt"
            if not f.is_file():
                have = sorted(p.stem for p in sets.glob("*.txt"))
                raise DataError(f"{f}: file not found (expected the id list of split '{split}'; gt_sets/ "
                                f"holds {have})")
            ids = read_lines(f, f"one image id of split '{split}' per line")
            bad = [i for i in ids if not re.fullmatch(r"[\w.\- ]+", i) or i in (".", "..")]
            if bad:
                raise DataError(f"{f}: {len(bad)} line(s) that are no image id, e.g. {bad[0][:40]!r} (expected "
                                f"one file name stem per line, such as 0001, naming images/<id>.jpg)")
        else:
            ids = sorted(p.stem for p in (self.root / "images").glob("*.jpg"))
            warnings.warn(f"{sets} not found: using every image in {self.root / 'images'} for split "
                          f"'{split}'", stacklevel=2)
        if not ids:
            raise DataError(f"{self.root}: no images for split '{split}'")
        for sub, ext in (("images", ".jpg"), ("segmentation", ".png"), ("depth", ".npy")):
            missing = [i for i in ids if not (self.root / sub / f"{i}{ext}").is_file()]
            if missing:
                raise DataError(f"{self.root / sub / (missing[0] + ext)}: file not found (expected one for "
                                f"every id of split '{split}'; {len(missing)} missing)")
        self.ids = ids
        self.split = split
        self.height, self.width = height, width
        self._intrinsics = None if intrinsics is None else np.asarray(intrinsics, np.float32)
        self.class_names = load_class_mapping()["names40"]

    def __len__(self) -> int:
        return len(self.ids)

    def sample(self, i: int) -> Sample:
        name = self.ids[i]
        image = read_rgb(self.root / "images" / f"{name}.jpg")
        h, w = image.shape[:2]
        p_seg = self.root / "segmentation" / f"{name}.png"
        seg = read_label_png(p_seg).astype(np.int64)
        check_same_size(seg, (h, w), p_seg, "segmentation")
        if self.label_zero == "void":
            if seg.max(initial=0) > 40:
                bad = sorted(int(v) for v in np.unique(seg[seg > 40])[:10])
                raise DataError(f"{p_seg}: label ids {bad} outside the class table (expected 0 = void and "
                                f"classes 1..40; with label_zero='class': 0..39 and 255 = ignore)")
            labels = np.where(seg == 0, IGNORE_INDEX, seg - 1)
        else:
            labels = seg
            check_labels(labels, self.num_classes, p_seg)
        p_dep = self.root / "depth" / f"{name}.npy"
        depth = _depth2d(read_npy(p_dep, "an (H, W) float depth in metres"), p_dep)
        check_same_size(depth, (h, w), p_dep, "depth")
        valid = depth > 0
        k = self._intrinsics.copy() if self._intrinsics is not None else _nyu_intrinsics(h, w)
        s = Sample(image=image, target=np.where(valid, depth, 0).astype(np.float32), valid=valid,
                   labels=labels, intrinsics=k, id=name, index=i, target_kind="depth")
        return resize_sample(s, self.height, self.width)
