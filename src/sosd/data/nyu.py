"""NYU Depth v2 from the official ``nyu_depth_v2_labeled.mat`` (1449 labelled images, 2.8 GB).

Only that file is needed: the official split (``splits.mat``: 795 train / 654 test, 1-based) and the class
mappings (894 raw classes -> 40 of Gupta et al., ``classMapping40.mat``; 40 -> 13 of the MTAN-family papers,
``class13Mapping.mat``) ship inside the package (``sosd/data/nyu_meta/``, see PROVENANCE.md there); pass
``splits_path=`` / ``mapping_dir=`` to use other copies.

Reading: the .mat is MATLAB v7.3 = HDF5, read with h5py **lazily** (one image per ``sample(i)``; the file
is opened on first use in each process and reopened after a fork, and the handle is never pickled, so
DataLoader workers each get their own). h5py sees MATLAB's column-major arrays transposed: ``images`` is
(N, 3, W, H), so ``images[i].transpose(2, 1, 0)`` is (H, W, 3); ``depths``/``rawDepths``/``labels`` are
(N, W, H), so ``depths[i].T`` is (H, W).

Sample conventions:

* ``id`` = ``f"{i:04d}"``, ``i`` the 1-based index into the .mat (the index ``splits.mat`` uses);
* labels: raw 0 (unlabelled) -> 255 (ignore); raw r -> 40-class c = mapClass[r-1] in 1..40 -> id c-1;
  with ``classes=13`` additionally c -> labels13[c-1] in 1..13 -> id minus 1;
* depth (metres): ``depth="depths"`` (default) is the release's inpainted depth, ``valid = depth > 0`` (and
  finite; the inpainted maps have no holes, so normally every pixel); ``depth="rawDepths"`` is the
  projected Kinect depth, ``0`` = no measurement -> ``valid = False`` (about a quarter of the pixels).
  NaN/inf depth is reported as a malformed file (``DataError``), never silently masked;
* intrinsics: NYU's colour camera, fx=518.8579, fy=519.4696, cx=325.5824, cy=253.7362 at 640x480
  (scaled with the image when ``height, width`` differ, see :mod:`sosd.data.transforms`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sosd.data.folder import check_finite, require_file
from sosd.data.sample import IGNORE_INDEX, Sample, SceneDataset
from sosd.data.transforms import resize_sample
from sosd.errors import DataError, MissingDependencyError, require_module

META_DIR = Path(__file__).with_name("nyu_meta")
MAT_NAME = "nyu_depth_v2_labeled.mat"
NYU_INTRINSICS = (518.8579, 519.4696, 325.5824, 253.7362)  # fx, fy, cx, cy at 640x480
NYU_HEIGHT, NYU_WIDTH = 480, 640


def _loadmat(path, what: str) -> dict:
    p = require_file(path, what)
    require_module("scipy", "data", f"reading {p.name} (NYU's split and class-mapping files)")
    import scipy.io

    try:
        return scipy.io.loadmat(str(p))
    except Exception as e:
        raise DataError(f"{p}: cannot read as a MATLAB file ({type(e).__name__}: {e}); expected {what}") \
            from None


def _strings(cells) -> list[str]:
    """A MATLAB cell array of strings as loaded by scipy -> list of str."""
    out = []
    for c in np.asarray(cells).ravel():
        while isinstance(c, np.ndarray) and c.dtype == object:
            c = c.ravel()[0]
        out.append(str(np.asarray(c).ravel()[0]) if isinstance(c, np.ndarray) else str(c))
    return out


VAL_SIZE, VAL_SEED = 80, 0  # the fixed validation subset of the 795 training images (documented in docs/data.md)


def validation_subset(train: np.ndarray, size: int = VAL_SIZE, seed: int = VAL_SEED) -> np.ndarray:
    """Sorted indices of NYU's fixed validation subset: ``size`` of the official training indices, drawn
    with ``numpy.random.default_rng(seed)``. NYU has no official validation split, and model selection on
    the 654 test images (the ones the tables report) would be selection on reported data."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.asarray(train), size=size, replace=False))


def load_splits(path=None) -> dict[str, np.ndarray]:
    """{"train": 795 and "test": 654 sorted 1-based indices} from ``splits.mat``."""
    path = Path(path) if path else META_DIR / "splits.mat"
    m = _loadmat(path, "NYU's splits.mat with trainNdxs and testNdxs")
    try:
        return {"train": np.sort(np.asarray(m["trainNdxs"]).ravel().astype(np.int64)),
                "test": np.sort(np.asarray(m["testNdxs"]).ravel().astype(np.int64))}
    except KeyError as e:
        raise DataError(f"{path}: variable {e} missing (expected trainNdxs and testNdxs)") from None


def load_class_mapping(mapping_dir=None) -> dict:
    """The 894 -> 40 map, the 40 names, the 40 -> 13 map and the 13 names, from the two mapping files.

    Returns ``{"map40": uint8 (895,) with map40[0] = 0, "names40": 40 names, "map13": uint8 (41,) with
    map13[0] = 0, "names13": 13 names}`` (maps in the files' 1-based class numbering)."""
    d = Path(mapping_dir) if mapping_dir else META_DIR
    m40 = _loadmat(d / "classMapping40.mat", "classMapping40.mat with mapClass and className (Gupta et al.)")
    m13 = _loadmat(d / "class13Mapping.mat", "class13Mapping.mat with classMapping13.labels13/classNames")
    try:
        map_class = np.asarray(m40["mapClass"]).ravel().astype(np.int64)
        names40 = _strings(m40["className"])
        s = m13["classMapping13"]
        labels13 = np.asarray(s["labels13"][0, 0]).ravel().astype(np.int64)
        names13 = _strings(s["classNames"][0, 0])
    except (KeyError, ValueError, IndexError) as e:
        raise DataError(f"{d}: NYU class mapping files malformed ({type(e).__name__}: {e})") from None
    if len(names40) != 40 or map_class.min() < 1 or map_class.max() > 40:
        raise DataError(f"{d / 'classMapping40.mat'}: expected 40 class names and mapClass values in 1..40")
    if labels13.size != 40 or len(names13) != 13 or labels13.min() < 1 or labels13.max() > 13:
        raise DataError(f"{d / 'class13Mapping.mat'}: expected labels13 of 40 values in 1..13 and 13 names")
    return {"map40": np.concatenate([[0], map_class]).astype(np.uint8), "names40": names40,
            "map13": np.concatenate([[0], labels13]).astype(np.uint8), "names13": names13}


class NYUDepthV2(SceneDataset):
    """NYU Depth v2 labelled set from the official .mat (see the module docstring for every convention).

    ``mat_path_or_root``: the .mat file, or a folder holding ``nyu_depth_v2_labeled.mat``. ``split``:
    "train" (795) | "test" (654) | "val" (a fixed seeded 80 of the 795, :func:`validation_subset`) |
    "train_no_val" (the other 715) | "all" (every image in the file, in file order). ``indices``: explicit
    1-based indices (overrides ``split``). A split index beyond the file's image count is a DataError
    naming the file and the index (e.g. the one-image excerpt with ``split="test"``).
    """

    target_kind = "depth"

    def __init__(self, mat_path_or_root, split: str = "train", classes: int = 40, depth: str = "depths",
                 splits_path=None, mapping_dir=None, height: int | None = 480, width: int | None = 640,
                 transform=None, indices=None):
        super().__init__(transform)
        p = Path(mat_path_or_root)
        if p.is_dir():
            p = p / MAT_NAME
        self.path = require_file(p, f"the official NYU Depth v2 {MAT_NAME} (MATLAB v7.3 / HDF5)")
        if classes not in (40, 13):
            raise DataError(f"NYU classes must be 40 or 13, got {classes!r}")
        if depth not in ("depths", "rawDepths"):
            raise DataError(f"NYU depth must be 'depths' (inpainted) or 'rawDepths', got {depth!r}")
        self.classes, self.depth_key = classes, depth
        self.height, self.width = height, width
        self.split = split

        maps = load_class_mapping(mapping_dir)
        self.num_classes = classes
        if classes == 40:
            self.class_names = maps["names40"]
            lut = maps["map40"].astype(np.int64) - 1
        else:
            self.class_names = maps["names13"]
            lut = maps["map13"][maps["map40"]].astype(np.int64) - 1
        lut[0] = IGNORE_INDEX  # raw 0 = unlabelled
        self._lut = lut  # raw id 0..894 -> internal id

        self.n_images = self._inspect()
        if indices is not None:
            idx = np.asarray(list(indices), dtype=np.int64).ravel()
            what = "indices"
        elif split == "all":
            idx = np.arange(1, self.n_images + 1)
            what = "split 'all'"
        elif split in ("train", "test"):
            idx = load_splits(splits_path)[split]
            what = f"split '{split}'"
        elif split in ("val", "train_no_val"):
            train = load_splits(splits_path)["train"]
            val = validation_subset(train)
            idx = val if split == "val" else np.setdiff1d(train, val)
            what = f"split '{split}'"
        else:
            raise DataError(f"NYU split must be 'train', 'test', 'val', 'train_no_val' or 'all', got {split!r}")
        if idx.size == 0:
            raise DataError(f"{self.path}: {what} selects no images")
        bad = idx[(idx < 1) | (idx > self.n_images)]
        if bad.size:
            raise DataError(
                f"{self.path}: {what} uses image #{int(bad[0])} (1-based) but the file holds only "
                f"{self.n_images} image(s) ({bad.size} indices out of range); expected the full 1449-image "
                f"{MAT_NAME}, or use split='all' / indices=[...] for a partial file")
        self.indices = idx
        self._h5 = None
        self._pid = None

    # -- file handle: one per process, never pickled ------------------------------------------------
    def _open(self):
        h5py = require_module("h5py", "data", f"reading {self.path} (MATLAB v7.3 = HDF5)")
        try:
            return h5py.File(self.path, "r")
        except Exception as e:
            raise DataError(f"{self.path}: cannot open as MATLAB v7.3 / HDF5 ({type(e).__name__}: {e}); "
                            f"expected the official {MAT_NAME}") from None

    def _file(self):
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = self._open()  # after a fork the parent's handle must not be reused
            self._pid = os.getpid()
        return self._h5

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_h5"], state["_pid"] = None, None
        return state

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5, self._pid = None, None

    def _inspect(self) -> int:
        try:
            return self._inspect_file()
        except (DataError, MissingDependencyError):
            raise
        except Exception as e:  # noqa: BLE001 - h5py raises KeyError, OSError, ValueError, ... on a broken file
            raise DataError(f"{self.path}: malformed MATLAB v7.3 / HDF5 file ({type(e).__name__}: {e}); "
                            f"expected the official {MAT_NAME}") from None

    def _inspect_file(self) -> int:
        with self._open() as f:
            need = {"images": 4, "labels": 3, self.depth_key: 3}
            for k, nd in need.items():
                if k not in f or not hasattr(f[k], "shape"):
                    raise DataError(f"{self.path}: variable '{k}' missing (expected the official {MAT_NAME} "
                                    f"with images, depths, rawDepths, labels)")
                if f[k].ndim != nd:
                    raise DataError(f"{self.path}: '{k}' has shape {f[k].shape} (expected {nd} dimensions)")
            n, c, w, h = f["images"].shape
            if c != 3:
                raise DataError(f"{self.path}: 'images' has shape {f['images'].shape} (expected N x 3 x W "
                                f"x H as h5py sees MATLAB's H x W x 3 x N)")
            for k in ("labels", self.depth_key):
                if f[k].shape != (n, w, h):
                    raise DataError(f"{self.path}: '{k}' has shape {f[k].shape}, 'images' "
                                    f"{f['images'].shape} (expected {(n, w, h)})")
            if f["images"].dtype != np.uint8:
                raise DataError(f"{self.path}: 'images' dtype {f['images'].dtype} (expected uint8)")
            return int(n)

    # -- Dataset -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.indices.size)

    def read_raw(self, i: int) -> dict:
        """Arrays of 1-based image ``i`` as stored (image (H,W,3) uint8, depth/rawDepth (H,W) float32 m,
        raw labels (H,W) uint16 in 0..894), already transposed to image order."""
        f = self._file()
        j = int(i) - 1
        return {
            "image": np.ascontiguousarray(f["images"][j].transpose(2, 1, 0)),
            "depth": np.ascontiguousarray(f[self.depth_key][j].T).astype(np.float32, copy=False),
            "labels": np.ascontiguousarray(f["labels"][j].T),
        }

    def sample(self, k: int) -> Sample:
        i = int(self.indices[k])
        try:
            raw = self.read_raw(i)
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"{self.path}: cannot read image #{i} ({type(e).__name__}: {e})") from None
        where = f"{self.path} image #{i}"
        depth = raw["depth"]
        check_finite(depth, where, f"'{self.depth_key}'")
        valid = depth > 0
        target = np.where(valid, depth, 0).astype(np.float32)
        lab = raw["labels"].astype(np.int64)
        if lab.size and (lab.min() < 0 or lab.max() >= self._lut.size):
            raise DataError(f"{where}: raw label ids up to {int(lab.max())} "
                            f"(expected 0..{self._lut.size - 1})")
        labels = self._lut[lab]
        s = Sample(image=raw["image"], target=target, valid=valid, labels=labels,
                   intrinsics=self._intrinsics(raw["image"].shape[:2]), id=f"{i:04d}", index=k,
                   target_kind="depth")
        return resize_sample(s, self.height, self.width)

    @staticmethod
    def _intrinsics(hw) -> np.ndarray:
        k = np.array(NYU_INTRINSICS, dtype=np.float32)
        if tuple(hw) != (NYU_HEIGHT, NYU_WIDTH):  # a file at another size: assume a plain resize
            from sosd.data.transforms import scale_intrinsics
            k = scale_intrinsics(k, hw[1] / NYU_WIDTH, hw[0] / NYU_HEIGHT)
        return k
