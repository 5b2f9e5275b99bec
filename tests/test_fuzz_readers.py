"""Fuzzing the file readers: random bytes and mutated real files never raise anything but our error types.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_fuzz_readers.py
More examples per target (default 50): SOSD_FUZZ_EXAMPLES=2000 OMP_NUM_THREADS=1 .venv/bin/python -m pytest ...
Coverage-guided (libFuzzer via atheris, same targets): benchmarks/fuzz_atheris.py.

Every target writes the fuzz bytes to one file of a seed dataset (real NYU Depth v2 files from
tests/data/nyuv2, and files written here in the Cityscapes, folder, MTAN, NYUD_MT, prediction-file,
config and checkpoint formats) and calls the reader the CLI uses on it. The property: the call returns,
or raises DataError / SOSDError (ConfigError for config files) whose message names the file. Anything
else (IndexError from deep in numpy, OSError from PIL, UnpicklingError, a segfault) is a bug.

Inputs are a mix of: random bytes; random bytes after a format's magic number; the seed file with 1-8
mutations (bit flips, byte sets, truncation, insertion, deletion, duplication; positions biased to the
header); and well-formed files of the wrong kind (any Pillow mode / .npy dtype and shape).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# PIL ("Corrupt EXIF data", DecompressionBombWarning) and torch ("Detected pickle protocol 75") warn about
# broken files before (or instead of) failing: expected here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
NYU = Path(__file__).parent / "data" / "nyuv2"
EXAMPLES = int(os.environ.get("SOSD_FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\x93NUMPY\x01\x00", b"\x89HDF\r\n\x1a\n", b"PK\x03\x04",
         b"II*\x00", b"MM\x00*", b"BM", b"GIF89a", b"{", b"\x80\x02", b"\x00\x00\x00\x00\x00\x00\x00\x08{"]


# ------------------------------------------------------------------------------------------ targets

class Readers:
    """Seed files of every format, and one target per file: ``run(name, data)`` writes ``data`` in place of
    that file, calls the reader(s) that read it, and restores the seed. Only our error types may escape
    (``run`` re-raises anything else); the error must name the file (or another file of its dataset)."""

    GROUPS = ("folder", "nyudmt", "mtan", "nyuv2", "cityscapes", "predictions", "read_image", "run")

    def __init__(self, root: Path, groups=GROUPS):
        """Seed files of ``groups`` (default all) under ``root``."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.targets: dict = {}  # name -> (path to overwrite, call(), allowed exception types)
        build = {"folder": self._folder, "nyudmt": self._nyudmt, "mtan": self._mtan, "nyuv2": self._nyuv2,
                 "cityscapes": self._cityscapes, "predictions": self._predictions, "read_image": self._images,
                 "run": self._config_and_checkpoint}
        for g in groups:
            build[g]()
        self.seeds = {name: path.read_bytes() for name, (path, _, _) in self.targets.items()}

    def names(self) -> list[str]:
        return sorted(self.targets)

    def seed(self, name: str) -> bytes:
        return self.seeds[name]

    def run(self, name: str, data: bytes) -> str | None:
        """Write ``data`` as target ``name``'s file, read it; returns the error message (None if it read).
        Raises AssertionError for a message that does not name the file, anything else as it comes."""
        path, call, allowed = self.targets[name]
        path.write_bytes(data)
        try:
            call()
        except allowed as e:
            msg = str(e)
            # it names the file, or (a mismatch between files, e.g. labels vs image size) one of its dataset
            dataset = self.root / path.relative_to(self.root).parts[0]
            assert path.name in msg or str(dataset) in msg, f"{name}: message names no file of {dataset}: {msg}"
            return msg
        finally:
            path.write_bytes(self.seeds[name])
        return None

    # -- seed datasets -------------------------------------------------------------------------------
    def _add(self, name, path, call, allowed=None):
        from sosd.errors import DataError

        self.targets[name] = (Path(path), call, allowed or DataError)

    def _folder(self):
        """Folder layout with the real NYU #1: rgb.jpg, rawDepth PNG (as mm), label13 PNG."""
        from sosd.data.folder import FolderDataset

        r = self.root / "folder"
        for sub in ("images", "depth", "labels"):
            (r / "train" / sub).mkdir(parents=True)
        shutil.copy(NYU / "labeled_0001" / "rgb.jpg", r / "train" / "images" / "0001.jpg")
        shutil.copy(NYU / "labeled_0001" / "rawdepth_0.1mm.png", r / "train" / "depth" / "0001.png")
        shutil.copy(NYU / "labeled_0001" / "label13.png", r / "train" / "labels" / "0001.png")
        (r / "classes.txt").write_text("\n".join(f"c{i}" for i in range(14)) + "\n")
        (r / "intrinsics.json").write_text(json.dumps({"fx": 518.9, "fy": 519.5, "cx": 325.6, "cy": 253.7}))

        def call():
            FolderDataset(r, "train").sample(0)
        for f in ("train/images/0001.jpg", "train/depth/0001.png", "train/labels/0001.png", "classes.txt",
                  "intrinsics.json"):
            self._add(f"folder:{f}", r / f, call)

    def _nyudmt(self):
        """NYUD_MT layout with the real NYU #1: images/ jpg, segmentation/ = label40 (palette, 0 = void)."""
        from sosd.data.nyu_folders import NYUDMT

        r = self.root / "nyudmt"
        for sub in ("images", "segmentation", "depth", "gt_sets"):
            (r / sub).mkdir(parents=True)
        shutil.copy(NYU / "labeled_0001" / "rgb.jpg", r / "images" / "0001.jpg")
        shutil.copy(NYU / "labeled_0001" / "label40.png", r / "segmentation" / "0001.png")
        shutil.copy(NYU / "labeled_0001" / "depth.npy", r / "depth" / "0001.npy")
        (r / "gt_sets" / "val.txt").write_text("0001\n")

        def call():
            NYUDMT(r, "test").sample(0)
        for f in ("images/0001.jpg", "segmentation/0001.png", "depth/0001.npy", "gt_sets/val.txt"):
            self._add(f"nyudmt:{f}", r / f, call)

    def _mtan(self):
        """MTAN's .npy layout from the real NYU #1 (float image in [0, 1], 13-class ids with -1, depth)."""
        from sosd.data.nyu_folders import NYUv2MTAN

        r = self.root / "mtan"
        for sub in ("image", "label", "depth"):
            (r / "val" / sub).mkdir(parents=True)
        (r / "train").mkdir()
        rgb = np.asarray(Image.open(NYU / "labeled_0001" / "rgb.jpg").convert("RGB"))[::4, ::4]
        lab = np.asarray(Image.open(NYU / "labeled_0001" / "label13.png"))[::4, ::4].astype(np.float32) - 1
        np.save(r / "val" / "image" / "0.npy", (rgb / 255.0).astype(np.float32))
        np.save(r / "val" / "label" / "0.npy", lab)
        np.save(r / "val" / "depth" / "0.npy", np.load(NYU / "labeled_0001" / "depth.npy")[::4, ::4, None])

        def call():
            NYUv2MTAN(r, "test", height=None, width=None).sample(0)
        for f in ("image", "label", "depth"):
            self._add(f"mtan:{f}", r / "val" / f / "0.npy", call)

    def _nyuv2(self):
        """The real one-image excerpt of the official nyu_depth_v2_labeled.mat (MATLAB v7.3 / HDF5)."""
        from sosd.data.nyu import NYUDepthV2

        p = self.root / "nyuv2" / "nyu_depth_v2_labeled.mat"
        p.parent.mkdir()
        shutil.copy(NYU / "nyu_depth_v2_labeled_excerpt_0001.mat", p)

        def call():
            ds = NYUDepthV2(p, split="all", height=None, width=None)
            try:
                ds.sample(0)
            finally:
                ds.close()
        self._add("nyuv2:mat", p, call)

    def _cityscapes(self):
        """Cityscapes layout written here (the data may not be redistributed), 64x128 instead of 1024x2048."""
        from sosd.data.cityscapes import Cityscapes

        r = self.root / "cityscapes"
        stem = "aachen_000000_000019"
        h, w = 64, 128
        yy, xx = np.mgrid[0:h, 0:w]
        files = {
            "leftImg8bit": (f"{stem}_leftImg8bit.png", np.stack([xx * 2, yy * 4, xx ^ yy], -1).astype(np.uint8)),
            "gtFine": (f"{stem}_gtFine_labelIds.png", ((xx // 4) % 34).astype(np.uint8)),
            "disparity": (f"{stem}_disparity.png", (1 + 256 * (yy % 40)).astype(np.uint16)),
        }
        for folder, (name, a) in files.items():
            d = r / folder / "val" / "aachen"
            d.mkdir(parents=True)
            Image.fromarray(a).save(d / name)
        cam = {"extrinsic": {"baseline": 0.209313}, "intrinsic": {"fx": 2262.52, "fy": 2265.3, "u0": 1096.98,
                                                                   "v0": 513.137}}
        (r / "camera" / "val" / "aachen").mkdir(parents=True)
        (r / "camera" / "val" / "aachen" / f"{stem}_camera.json").write_text(json.dumps(cam))

        def call():
            Cityscapes(r, "val", target="depth", height=None, width=None).sample(0)
        for folder, (name, _) in files.items():
            self._add(f"cityscapes:{folder}", r / folder / "val" / "aachen" / name, call)
        self._add("cityscapes:camera", r / "camera" / "val" / "aachen" / f"{stem}_camera.json", call)

    def _predictions(self):
        """Prediction files as `sosd predict` writes them: NYU format from the real depth/labels of NYU #1,
        Cityscapes format ('<city>/<frame>') from made-up disparities."""
        from sosd.errors import SOSDError
        from sosd.eval.prediction_files import read_prediction, write_prediction

        d = self.root / "preds"
        depth = np.load(NYU / "labeled_0001" / "depth.npy")
        lab40 = np.asarray(Image.open(NYU / "labeled_0001" / "label40.png")).astype(np.int64)
        nyu = write_prediction(d, "0001", depth, np.where(lab40 == 0, 255, lab40 - 1), "nyu")
        disp = np.linspace(0, 80, 64 * 128, dtype=np.float32).reshape(64, 128)
        cs = write_prediction(d, "aachen/aachen_000000_000019", disp, (np.arange(64 * 128) % 19).reshape(64, 128),
                              "cityscapes")

        def nyu_call():
            read_prediction(d, "0001", "nyu", shape=(480, 640), num_classes=40)

        def cs_call():
            read_prediction(d, "aachen/aachen_000000_000019", "cityscapes", shape=(64, 128), num_classes=19)
        self._add("predictions:nyu_depth", nyu[0], nyu_call, SOSDError)
        self._add("predictions:nyu_labels", nyu[1], nyu_call, SOSDError)
        self._add("predictions:cityscapes_disparity", cs[0], cs_call, SOSDError)
        self._add("predictions:cityscapes_labelTrainIds", cs[1], cs_call, SOSDError)

    def _images(self):
        """`sosd predict` / sosd.load(...).predict(path) inputs (sosd.inference.read_image)."""
        from sosd.errors import SOSDError
        from sosd.inference import read_image

        d = self.root / "images"
        d.mkdir()
        shutil.copy(NYU / "labeled_0001" / "rgb.jpg", d / "photo.jpg")
        Image.open(NYU / "labeled_0001" / "rgb.jpg").convert("RGB").resize((160, 120)).save(d / "photo.png")
        for name in ("photo.jpg", "photo.png"):
            p = d / name
            self._add(f"read_image:{name}", p, lambda p=p: read_image(p), SOSDError)

    def _config_and_checkpoint(self):
        """A tiny run's config.yaml and checkpoint (model.safetensors, train_state.pt, meta.json)."""
        from sosd import checkpoint as ckpt
        from sosd.config import ConfigError, dump_config, load_config
        from sosd.errors import SOSDError
        from sosd.models import SOSDNet
        from sosd.train.loop import Trainer
        from tests.conftest import tiny_config

        cfg = tiny_config(self.root, steps=1)
        run = self.root / "run"
        run.mkdir()
        dump_config(cfg, run / "config.yaml")
        folder = Trainer(cfg, run, progress=False).save("step_0000000")
        model = SOSDNet(cfg.model)

        self._add("config:yaml", run / "config.yaml", lambda: load_config(run / "config.yaml"),
                  (ConfigError, SOSDError))

        def weights():  # what load_model does, with one model for all examples (building one is slow)
            sd, _, _ = ckpt.read_weights(folder)
            ckpt.check_compatible(model, sd, str(folder))
        self._add("checkpoint:model.safetensors", folder / ckpt.MODEL_FILE, weights, SOSDError)
        self._add("checkpoint:train_state.pt", folder / ckpt.STATE_FILE, lambda: ckpt.read_train_state(folder),
                  SOSDError)
        self._add("checkpoint:meta.json", folder / ckpt.META_FILE, lambda: ckpt.read_train_state(folder),
                  SOSDError)


# ------------------------------------------------------------------------------------- strategies

@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """``seed`` with 1-8 mutations; positions biased to the first 512 bytes (headers, chunk tables)."""
    b = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        if not b:
            break
        pos = draw(st.one_of(st.integers(0, min(len(b), 512) - 1), st.integers(0, len(b) - 1)))
        kind = draw(st.sampled_from(["flip", "flip", "set", "truncate", "insert", "delete", "duplicate"]))
        if kind == "flip":
            b[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            b[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, ord("9"), ord('"'), ord("-")]))
        elif kind == "truncate":
            del b[pos:]
        elif kind == "insert":
            b[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "delete":
            del b[pos:pos + draw(st.integers(1, 64))]
        else:
            n = draw(st.integers(1, 64))
            b[pos:pos] = b[pos:pos + n]
    return bytes(b)


MODES = ["1", "L", "P", "LA", "PA", "RGB", "RGBA", "I", "I;16", "F", "CMYK"]


@st.composite
def other_images(draw) -> bytes:
    """A well-formed image of any Pillow mode, size and format: the wrong kind of file, not a broken one."""
    mode = draw(st.sampled_from(MODES))
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if mode in ("I", "F"):
        scale = 10 ** draw(st.integers(0, 6))
        a = (rng.standard_normal((h, w)) * scale).astype(np.float32 if mode == "F" else np.int32)
        im = Image.fromarray(a, mode)
    elif mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    else:
        bands = len(Image.new(mode, (1, 1)).getbands())
        im = Image.frombytes(mode, (w, h), rng.integers(0, 256, h * w * bands * 4, dtype=np.uint8).tobytes())
    fmt = draw(st.sampled_from(["PNG", "TIFF", "BMP", "GIF", "JPEG"]))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow: "Saving I mode images as PNG is deprecated"
        try:
            im.save(buf, format=fmt)
        except (OSError, ValueError, KeyError):  # that mode cannot be written in that format
            buf = io.BytesIO()
            im.save(buf, format="TIFF")
    return buf.getvalue()


DTYPES = ["u1", "i1", "<u2", ">u2", "<i4", "<i8", "<f2", "<f4", ">f4", "<f8", "?", "<c8", "<U3", "S2",
          "V4", "[('a', '<f4'), ('b', 'u1')]", "O"]


@st.composite
def other_npy(draw) -> bytes:
    """A well-formed .npy of any dtype (object arrays included: written pickled) and 0-4 dimensions."""
    dt = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=4)))
    dtype = np.dtype(eval(dt) if dt.startswith("[") else dt)  # noqa: S307 - a literal from the list above
    a = np.zeros(shape, dtype)
    if dtype.kind in "biuf" and a.size:
        vals = draw(st.lists(st.sampled_from([0, 1, -1, 12, 255, 1e4, 1e30, float("nan"), float("inf")]),
                             min_size=a.size, max_size=a.size))
        with np.errstate(all="ignore"):
            a = np.array(vals, dtype=np.float64).astype(dtype).reshape(shape)
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def inputs(seed: bytes, name: str):
    kinds = [st.binary(max_size=1024),
             st.builds(lambda m, b: m + b, st.sampled_from(MAGIC), st.binary(max_size=1024)),
             mutated(seed), mutated(seed), mutated(seed)]
    if name.endswith((".png", ".jpg")) or name in ("cityscapes:leftImg8bit", "cityscapes:gtFine",
                                                    "cityscapes:disparity") or name.startswith("predictions:"):
        kinds.append(other_images())
    if name.endswith(".npy") or name.startswith("mtan:"):
        kinds.append(other_npy())
    return st.one_of(*kinds)


# ------------------------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    return Readers(tmp_path_factory.mktemp("fuzz"))


def test_seeds_read_cleanly(readers):
    """The unmutated seeds are valid: every target reads its own seed without an error."""
    for name in readers.names():
        assert readers.run(name, readers.seed(name)) is None, name


TARGETS = ["folder:train/images/0001.jpg", "folder:train/depth/0001.png", "folder:train/labels/0001.png",
           "folder:classes.txt", "folder:intrinsics.json",
           "nyudmt:images/0001.jpg", "nyudmt:segmentation/0001.png", "nyudmt:depth/0001.npy", "nyudmt:gt_sets/val.txt",
           "mtan:image", "mtan:label", "mtan:depth", "nyuv2:mat",
           "cityscapes:leftImg8bit", "cityscapes:gtFine", "cityscapes:disparity", "cityscapes:camera",
           "predictions:nyu_depth", "predictions:nyu_labels", "predictions:cityscapes_disparity",
           "predictions:cityscapes_labelTrainIds", "read_image:photo.jpg", "read_image:photo.png",
           "config:yaml", "checkpoint:model.safetensors", "checkpoint:train_state.pt", "checkpoint:meta.json"]


def test_every_target_is_fuzzed(readers):
    assert sorted(TARGETS) == readers.names()


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz(readers, name):
    @FUZZ
    @given(data=st.data())
    def fuzz(data):
        readers.run(name, data.draw(inputs(readers.seed(name), name), label="file bytes"))
    fuzz()
