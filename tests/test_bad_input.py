"""Bad input: every case is a real broken file run through the command a user would run, and the test
checks the exit code (2), that stderr names the file and says what is wrong, and that no traceback leaks.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_bad_input.py
(about 20 s; the fuzzers over the same readers are in tests/test_fuzz_readers.py)
"""
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import sosd
from sosd.cli import main
from sosd.config import ConfigError, dump_config
from sosd.errors import DataError, SOSDError
from sosd.models.sosd_net import InputSizeError
from tests.conftest import tiny_config

sys.path.insert(0, str(Path(__file__).parent / "data"))
from test_folder import arrays, write_folder  # noqa: E402
from test_nyu_folders import write_mtan, write_nyudmt  # noqa: E402

NYU = Path(__file__).parent / "data" / "nyuv2"
MAT = NYU / "nyu_depth_v2_labeled_excerpt_0001.mat"


def sosd_cli(capsys, *args):
    """Run `sosd ARGS` in this process: (exit code, stderr). An exception escaping main() (a traceback
    the user would see) fails the test by itself; the worker case below also checks the text."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def show(capsys, dataset, root, tmp_path, *extra):
    out = tmp_path / "show.png"
    rc, err = sosd_cli(capsys, "data", "show", "--dataset", dataset, "--root", root, "--out", out, *extra)
    assert not out.exists()
    return rc, err


def train_yaml(tmp_path, **data) -> Path:
    """A tiny training config on the given data settings, as the YAML file a user would pass."""
    cfg = tiny_config(tmp_path, steps=1)
    for k, v in data.items():
        if k == "num_classes":
            cfg.model.num_classes = v
        else:
            setattr(cfg.data, k, v)
    path = tmp_path / "train.yaml"
    dump_config(cfg, path)
    return path


def folder_train_yaml(tmp_path, root, **kw) -> Path:
    # 30x40 folder images are resized to 48x64 (the network needs 32 px a side); 3 classes (classes.txt)
    return train_yaml(tmp_path, dataset="folder", root=str(root), val_split="train", num_classes=3, **kw)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with one real checkpoint (untrained weights, full training state) and its config."""
    from sosd.train.loop import Trainer

    tmp = tmp_path_factory.mktemp("bad_input_run")
    cfg = tiny_config(tmp, steps=1)
    run_dir = tmp / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    dump_config(cfg, run_dir / "config.yaml")
    Trainer(cfg, run_dir, progress=False).save("step_0000000")
    return run_dir, cfg


# ------------------------------------------------------------------------------------------ datasets

def test_missing_dataset_root(tmp_path, capsys):
    missing = tmp_path / "no_such_folder"
    rc, err = sosd_cli(capsys, "train", "--config", folder_train_yaml(tmp_path, missing), "--no-progress")
    assert rc == 2
    assert f"{missing}: folder not found (expected a dataset root holding train/images/" in err
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    rc, err = sosd_cli(capsys, "data", "check", "--dataset", "cityscapes", "--root", not_a_dir)
    assert rc == 2 and f"{not_a_dir}: is a file, not a folder (expected the Cityscapes root" in err
    # a root without the split asked for: the message lists what it holds
    write_folder(tmp_path / "f", split="val")
    rc, err = sosd_cli(capsys, "data", "check", "--dataset", "folder", "--root", tmp_path / "f")
    assert rc == 2 and f"{tmp_path / 'f' / 'train'}: folder not found (expected the 'train' split folder" in err
    assert f"{tmp_path / 'f'} holds val/" in err


@pytest.mark.parametrize("dataset,message", [
    ("folder", "{root}: folder is empty (expected a dataset root holding train/images/"),
    ("cityscapes", "{root}: folder is empty (expected the Cityscapes root holding leftImg8bit/"),
    ("nyuv2_mtan", "{root}: folder is empty (expected MTAN's NYUv2 folder with train/ and val/"),
    ("nyud_mt", "{root}: folder is empty (expected the NYUD_MT folder with images/"),
    ("nyuv2", "{root}/nyu_depth_v2_labeled.mat: file not found (expected the official NYU Depth v2"),
    ("nyuv2-0-bytes", "{root}/nyu_depth_v2_labeled.mat: file is empty (0 bytes; expected the official NYU"),
])
def test_empty_dataset_root(tmp_path, capsys, dataset, message):
    root = tmp_path / "empty"
    root.mkdir()
    if dataset == "nyuv2-0-bytes":
        dataset = "nyuv2"
        (root / "nyu_depth_v2_labeled.mat").write_bytes(b"")
    rc, err = sosd_cli(capsys, "data", "check", "--dataset", dataset, "--root", root, "--split", "train")
    assert rc == 2 and message.format(root=root) in err, err


@pytest.mark.parametrize("kind,message", [
    ("png-cut-in-half", "(OSError: image file is truncated"),
    ("jpg-cut-in-half", "(OSError: "),
    ("random-bytes.png", "(UnidentifiedImageError: cannot identify image file"),
])
def test_truncated_or_corrupt_image(tmp_path, capsys, run, kind, message):
    root = write_folder(tmp_path / "f")
    img = root / "train" / "images" / "a.png"
    if kind == "png-cut-in-half":
        data = img.read_bytes()
        img.write_bytes(data[: len(data) // 2])
    elif kind == "jpg-cut-in-half":
        img.unlink()
        img = img.with_suffix(".jpg")
        Image.fromarray(arrays(0)[0]).save(img, quality=95)
        data = img.read_bytes()
        img.write_bytes(data[: len(data) // 2])
    else:
        img.write_bytes(np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes())
    rc, err = show(capsys, "folder", root, tmp_path)
    assert rc == 2
    assert f"{img}: cannot read as an image {message}" in err
    assert "the file is cut short, corrupt, or not a PNG/JPEG image" in err
    # the same file given to `sosd predict`
    run_dir, _ = run
    rc, err = sosd_cli(capsys, "predict", "--checkpoint", run_dir, img, "--out", tmp_path / "p", "--no-progress")
    assert rc == 2 and f"cannot read image {img}" in err


def test_nyu_mat_cut_in_half(tmp_path, capsys):
    cut = tmp_path / "nyu_depth_v2_labeled.mat"
    data = MAT.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    rc, err = show(capsys, "nyuv2", cut, tmp_path, "--split", "all")
    assert rc == 2
    assert f"{cut}: cannot open as MATLAB v7.3 / HDF5 (OSError: Unable to synchronously open file (truncated file" \
           in err


@pytest.mark.parametrize("dataset", ["folder", "nyud_mt"])
def test_image_and_labels_of_different_sizes(tmp_path, capsys, dataset):
    if dataset == "folder":  # through `sosd train`: the error stops the run before its first step
        root = write_folder(tmp_path / "f")
        lab = root / "train" / "labels" / "b.png"
        Image.fromarray(arrays(1)[2][:, :-1]).save(lab)
        rc, err = sosd_cli(capsys, "train", "--config", folder_train_yaml(tmp_path, root), "--no-progress")
        assert rc == 2 and f"{lab}: labels is 30x39 (HxW) but its image is 30x40" in err
        assert not list((tmp_path / "runs" / "tiny").glob("checkpoints/step_*"))
    else:
        root = write_nyudmt(tmp_path / "n")
        dep = root / "depth" / "0002.npy"
        np.save(dep, np.ones((47, 64), np.float32))
        rc, err = show(capsys, "nyud_mt", root, tmp_path)
        assert rc == 2 and f"{dep}: depth is 47x64 (HxW) but its image is 48x64" in err


@pytest.mark.parametrize("dataset", ["folder", "nyud_mt", "nyuv2_mtan"])
def test_label_ids_outside_the_class_table(tmp_path, capsys, dataset):
    if dataset == "folder":  # classes.txt names 3 classes; through `sosd train`
        root = write_folder(tmp_path / "f")
        lab = arrays(0)[2]
        lab[5, 5], lab[6, 6] = 7, 40
        p = root / "train" / "labels" / "a.png"
        Image.fromarray(lab).save(p)
        rc, err = sosd_cli(capsys, "train", "--config", folder_train_yaml(tmp_path, root), "--no-progress")
        assert rc == 2 and f"{p}: label ids [7, 40] outside the class table 0..2 (and 255 = ignore)" in err
    elif dataset == "nyud_mt":
        root = write_nyudmt(tmp_path / "n")
        p = root / "segmentation" / "0002.png"
        seg = np.array(Image.open(p))
        seg[0, :3] = [41, 99, 41]
        Image.fromarray(seg).save(p)
        rc, err = show(capsys, "nyud_mt", root, tmp_path)
        assert rc == 2 and f"{p}: label ids [41, 99] outside the class table (expected 0 = void and " \
                           f"classes 1..40" in err
    else:
        root = write_mtan(tmp_path / "m", n_train=1, n_val=0)
        p = root / "train" / "label" / "0.npy"
        lab = np.load(p)
        lab[20, 20] = 13
        np.save(p, lab)
        rc, err = show(capsys, "nyuv2_mtan", root, tmp_path)
        assert rc == 2 and f"{p}: label ids [13] outside the class table 0..12" in err


@pytest.mark.parametrize("case,message", [
    ("float32-tiff-named-png", "image mode F (expected a 16-bit single-channel PNG of depth in millimetres, "
                               "0 = invalid); it is a 32-bit float image: float values are not integer units"),
    ("uint8-png", "image mode L (expected a 16-bit single-channel PNG of depth in millimetres, 0 = invalid); "
                  "it is an 8-bit grey image: 8 bits hold only 0..255; save the values as np.uint16"),
    ("colourised-rgb-png", "image mode RGB (expected a 16-bit single-channel PNG of depth in millimetres, "
                           "0 = invalid); it is an 8-bit colour image: a colour picture (e.g. a colourised "
                           "depth map) does not hold the values"),
    ("metres-in-uint16", "depth values 3..4 look like metres, not millimetres (the farthest pixel would be 4 mm "
                         "away); expected depth in millimetres (3 m = 3000)"),
    ("mm-in-npy", "depth values up to 7800 look like millimetres, not metres (NYU depth is at most about "
                  "10 m); expected depth in metres: divide by 1000"),
    ("uint16-mm-npy", "depth values up to 7800 look like millimetres, not metres"),
])
def test_depth_in_the_wrong_unit_or_dtype(tmp_path, capsys, case, message):
    if case in ("mm-in-npy", "uint16-mm-npy"):  # NYUD_MT depth .npy is in metres
        root = write_nyudmt(tmp_path / "n")
        p = root / "depth" / "0002.npy"
        d = np.load(p) * 1000
        np.save(p, d.astype(np.uint16) if case == "uint16-mm-npy" else d)
        rc, err = show(capsys, "nyud_mt", root, tmp_path)
    else:  # folder depth PNG is uint16 millimetres
        root = write_folder(tmp_path / "f")
        p = root / "train" / "depth" / "a.png"
        mm = arrays(0)[1]
        if case == "float32-tiff-named-png":
            Image.fromarray(mm.astype(np.float32) / 1000).save(p, format="TIFF")
        elif case == "uint8-png":
            Image.fromarray((mm // 20).astype(np.uint8)).save(p)
        elif case == "colourised-rgb-png":
            Image.fromarray(np.stack([(mm // 20).astype(np.uint8)] * 3, -1)).save(p)
        else:
            Image.fromarray((mm * 3 / 1000).round().astype(np.uint16)).save(p)  # 3..4 "mm": metres as ints
        rc, err = show(capsys, "folder", root, tmp_path)
    assert rc == 2 and f"{p}: {message}" in err, err


@pytest.mark.parametrize("dataset", ["nyud_mt", "nyuv2_mtan"])
def test_nan_or_inf_in_depth_npy(tmp_path, capsys, dataset):
    if dataset == "nyud_mt":
        root = write_nyudmt(tmp_path / "n")
        p = root / "depth" / "0002.npy"
        d = np.load(p)
        d[3, 4], d[5, 6], d[7, 8] = np.nan, np.inf, -np.inf
        np.save(p, d)
        rc, err = show(capsys, dataset, root, tmp_path)
        assert rc == 2 and f"{p}: 3 NaN/inf depth values (1 NaN, 2 inf; the first at index (3, 4)) " \
                           f"(expected finite values, 0 = no measurement)" in err
    else:
        root = write_mtan(tmp_path / "m", n_train=1, n_val=0)
        p = root / "train" / "depth" / "0.npy"
        np.save(p, np.full((288, 384, 1), np.nan, np.float32))
        rc, err = show(capsys, dataset, root, tmp_path)
        assert rc == 2 and f"{p}: 110592 NaN/inf depth values (110592 NaN, 0 inf; the first at index (0, 0))" in err


def test_dataloader_worker_errors_print_no_worker_traceback(tmp_path, capsys):
    """With data.num_workers > 0 torch re-raises a worker's exception as type(e)("Caught ... Original
    Traceback ..."); the user must still see one line naming the file."""
    root = write_folder(tmp_path / "f")
    p = root / "train" / "images" / "b.png"
    p.write_bytes(p.read_bytes()[:30])
    rc, err = sosd_cli(capsys, "train", "--config", folder_train_yaml(tmp_path, root, num_workers=1),
                       "--no-progress")
    assert rc == 2 and f"{p}: cannot read as an image" in err
    assert "Caught" not in err and "Original Traceback" not in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------- checkpoints

def test_checkpoint_of_another_variant_or_class_count(tmp_path, capsys, run):
    from sosd.models import SOSDNet
    from sosd.checkpoint import save_weights

    run_dir, cfg = run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    # `sosd train --resume RUN` with a config of another variant
    other = train_yaml(tmp_path)
    d = yaml.safe_load(other.read_text())
    d["model"]["variant"] = "mtl"
    d["train"]["out_dir"] = str(run_dir.parent)
    other.write_text(yaml.safe_dump(d))
    rc, err = sosd_cli(capsys, "train", "--config", other, "--resume", run_dir, "--no-progress")
    assert rc == 2
    assert (f"checkpoint {run_dir} (variant sosd, {cfg.model.num_classes} classes, backbone xception_small) does "
            f"not fit the model (variant mtl, {cfg.model.num_classes} classes") in err
    assert "It was trained with model.variant='sosd' (asked for 'mtl')" in err
    # `sosd train --resume RUN` of a run whose checkpoint holds a 5-class model (its config says 9)
    five = tiny_config(tmp_path, steps=1)
    five.model.num_classes = 5
    save_weights(SOSDNet(five.model), five, copy / "checkpoints" / "step_0000000" / "model.safetensors")
    rc, err = sosd_cli(capsys, "train", "--resume", copy, "train.out_dir=" + str(tmp_path), "train.name=copy",
                       "--no-progress")
    assert rc == 2
    assert f"checkpoint {copy} (variant sosd, 5 classes, backbone xception_small) does not fit the model " \
           f"(variant sosd, {cfg.model.num_classes} classes" in err and "mis-shaped" in err
    # the advice states what differs; it does not suggest leaving out flags that were never passed
    assert f"model.num_classes=5 (asked for {cfg.model.num_classes})" in err and "--config" not in err
    # `sosd eval --checkpoint FILE`: a weights file whose config (metadata) is another variant's
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    src = run_dir / "checkpoints" / "step_0000000" / "model.safetensors"
    with safe_open(str(src), "pt") as fh:
        meta = fh.metadata()
    c = json.loads(meta["sosd_config"])
    c["model"]["variant"] = "depth_only"
    meta["sosd_config"] = json.dumps(c)
    bad = tmp_path / "model.safetensors"
    save_file(load_file(str(src)), str(bad), metadata=meta)
    rc, err = sosd_cli(capsys, "eval", "--checkpoint", bad, "--no-progress")
    assert rc == 2 and f"checkpoint {bad}: its weights do not fit the model its own config describes (variant " \
                       f"depth_only, {cfg.model.num_classes} classes" in err and "different checkpoints" in err


def test_a_refused_resume_leaves_the_run_config_alone(tmp_path, capsys, run):
    run_dir, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    before = (copy / "config.yaml").read_text()
    other = train_yaml(tmp_path)
    d = yaml.safe_load(other.read_text())
    d["model"]["variant"], d["train"]["out_dir"], d["train"]["name"] = "mtl", str(tmp_path), "copy"
    other.write_text(yaml.safe_dump(d))
    rc, err = sosd_cli(capsys, "train", "--config", other, "--resume", copy, "--no-progress")
    assert rc == 2 and "does not fit the model" in err
    assert (copy / "config.yaml").read_text() == before  # a later `--resume copy` must still work


def test_resume_of_a_run_without_a_finished_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "runs" / "tiny"
    (run_dir / "checkpoints" / ".step_0000001.tmp-999999").mkdir(parents=True)  # killed mid-write
    rc, err = sosd_cli(capsys, "train", "--resume", run_dir)
    assert rc == 2
    assert f"run folder {run_dir} has no finished checkpoint yet" in err and "--overwrite" in err


# ---------------------------------------------------------------------------------------------- config

@pytest.mark.parametrize("edit,message", [
    (lambda d: d["train"].update(stpes=d["train"].pop("steps")),
     "{path}, line {line}: unknown config key 'train.stpes' (did you mean 'steps'?)"),
    (lambda d: d["model"].update(lr=0.1),
     "{path}, line {line}: unknown config key 'model.lr' (did you mean 'train.lr'? 'lr' belongs under another "
     "section)"),
    (lambda d: d.update(steps=3),
     "{path}, line {line}: unknown config key 'steps' (did you mean 'train.steps'?"),
    (lambda d: d["train"].update(steps="ten"),
     "{path}, line {line}: config key 'train.steps' must be an integer, got 'ten'"),
    (lambda d: d["model"].update(variant="sodd"),
     "{path}, line {line}: config key 'model.variant' = 'sodd' is not one of semantic_only, depth_only, mtl, "
     "sosd (did you mean 'sosd'?)"),
])
def test_config_with_an_unknown_or_mistyped_key(tmp_path, capsys, edit, message):
    path = train_yaml(tmp_path)
    d = yaml.safe_load(path.read_text())
    edit(d)
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    parts = message.split("config key '")[1].split("'")[0].split(".")
    start = "  " * (len(parts) - 1) + parts[-1] + ":"  # yaml.safe_dump indents 2 spaces a level
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith(start))
    rc, err = sosd_cli(capsys, "train", "--config", path, "--no-progress")
    assert rc == 2 and message.format(path=path, line=line) in err, err


def test_config_file_that_is_not_yaml_text(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))  # an image saved under a .yaml name
    rc, err = sosd_cli(capsys, "train", "--config", path)
    assert rc == 2 and f"config file {path} is not a text (UTF-8) file: byte 0 is b'\\x89'; expected YAML" in err
    path.write_text("train: {steps: 3\n")
    rc, err = sosd_cli(capsys, "train", "--config", path)
    assert rc == 2 and f"config file {path} is not valid YAML" in err
    with pytest.raises(ConfigError, match=r"train.steps' must be an integer, got inf"):
        sosd.config.load_config(None, ["train.steps=.inf"])


# ------------------------------------------------------------------------------------ image too small

def test_image_too_small_for_the_network(tmp_path, capsys, run):
    run_dir, _ = run
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(small)
    # sosd predict --native-size: runs at the image's own size
    rc, err = sosd_cli(capsys, "predict", "--checkpoint", run_dir, small, "--native-size", "--out", tmp_path / "o",
                       "--no-progress")
    assert rc == 2
    assert "is 20x24 px, too small for the network at its own size (native size): each side must be at least " \
           "32 px" in err and "no --native-size" in err
    assert not list((tmp_path / "o").glob("small*"))
    # without --native-size the model resizes it to its training size: fine
    rc, _ = sosd_cli(capsys, "predict", "--checkpoint", run_dir, small, "--out", tmp_path / "o", "--no-progress")
    assert rc == 0
    # the Python API: a SOSDError (and the model's InputSizeError), naming the file when given a path
    p = sosd.load(run_dir, native_size=True)
    with pytest.raises(SOSDError, match=f"image {small} is 20x24 px, too small"):
        p.predict(small)
    with pytest.raises(InputSizeError, match="the image is 20x24 px"):
        p.predict(np.zeros((20, 24, 3), np.uint8))
    with pytest.raises(SOSDError, match=r"image #1 of 2 is 31x40 px"):
        p.predict_batch([np.zeros((40, 40, 3), np.uint8), np.zeros((31, 40, 3), np.uint8)])
    # a training size below the minimum is refused when the config is read
    rc, err = sosd_cli(capsys, "train", "--config", train_yaml(tmp_path), "data.height=16")
    assert rc == 2 and "config key 'data.height' = 16 is too small for the network: each side must be at " \
                       "least 32 px" in err
    # a dataset stored (and trained) at a size below the minimum: named before training starts
    from sosd.data.checks import check_first_sample
    from sosd.data.folder import FolderDataset

    root = write_folder(tmp_path / "f")  # 30x40 images
    with pytest.raises(DataError, match=r"the training set, first sample \(id a\): 30x40 px is too small"):
        check_first_sample(FolderDataset(root), "the training set")


def test_predict_names_the_image_that_is_too_small(tmp_path, capsys, run):
    run_dir, _ = run
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(small)
    rc, err = sosd_cli(capsys, "predict", "--checkpoint", run_dir, small, "--native-size", "--out", tmp_path / "o",
                       "--no-progress")
    assert rc == 2 and f"image {small} is 20x24 px, too small for the network" in err


def test_eval_at_a_size_too_small_for_the_network(capsys, run):
    run_dir, _ = run
    rc, err = sosd_cli(capsys, "eval", "--checkpoint", run_dir, "--height", 16, "--no-progress")
    assert rc == 2 and "too small for the network" in err


# --------------------------------------------------------------------------------- prediction files

def test_truncated_prediction_file(tmp_path, capsys):
    from sosd.config import DataConfig
    from sosd.data import build_dataset
    from sosd.eval.prediction_files import write_prediction

    ds = build_dataset(DataConfig(dataset="synthetic", preset="indoor", val_size=1, height=24, width=32), "test")
    s = ds.sample(0)
    preds = tmp_path / "preds"
    depth, _ = write_prediction(preds, s.id, s.target, np.where(s.labels == 255, 0, s.labels), "nyu")
    depth.write_bytes(depth.read_bytes()[:60])
    rc, err = sosd_cli(capsys, "eval", "--predictions", preds, "--dataset", "synthetic", "--n", 1, "--height", 24,
                       "--width", 32, "--no-progress")
    assert rc == 2 and f"prediction file {depth} cannot be read as an image" in err


# ---------------------------------------------------------------------------- checks before any work

def test_check_first_sample_names_the_set_and_the_file(tmp_path):
    """What a Trainer can run on each split before its first step (see the loop.py patch in the report)."""
    from sosd.data.checks import check_first_sample
    from sosd.data.folder import FolderDataset

    root = write_folder(tmp_path / "f")
    p = root / "train" / "depth" / "a.png"
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(p)
    ds = FolderDataset(root, height=48, width=64)
    with pytest.raises(DataError, match=f"the training set \\(folder, split 'train'\\), first sample: {p}: image "
                                        f"mode L"):
        check_first_sample(ds, "the training set (folder, split 'train')")
    write_folder(tmp_path / "g")
    check_first_sample(FolderDataset(tmp_path / "g", height=48, width=64), "the training set")  # fine
    with pytest.raises(DataError, match="label ids \\[1, 2\\] outside the class table 0..0"):
        check_first_sample(FolderDataset(tmp_path / "g", height=48, width=64), "the training set", num_classes=1)


# ----------------------------------------------------------------------- no model selection on reported data

def test_no_shipped_config_selects_on_the_split_it_reports():
    """Every config under configs/: when train.best_metric picks best.ckpt, data.val_split is not the
    reported split (the one tables and `sosd eval` use)."""
    from sosd.config import load_config
    from sosd.data.factory import reported_split

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))
    assert len(configs) > 20
    for path in configs:
        cfg = load_config(path)
        if cfg.train.best_metric:
            assert cfg.data.val_split != reported_split(cfg.data), path
            assert cfg.data.val_split != cfg.data.train_split, path


def test_selection_on_the_reported_split_is_refused():
    from sosd.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="best_metric.*reported"):
        load_config(None, ["data.val_split=test", "train.best_metric=rel"])
    with pytest.raises(ConfigError, match="best_metric"):
        load_config(None, ["data.dataset=cityscapes", "data.val_split=val", "train.best_metric=miou"])
    load_config(None, ["data.val_split=val", "train.best_metric=rel"])  # a held-out split is fine
    load_config(None, ["data.val_split=test", "train.best_metric="])   # monitoring without selection too


def test_synthetic_val_and_test_scenes_are_disjoint():
    from sosd.config import DataConfig
    from sosd.data import build_dataset

    cfg = DataConfig(dataset="synthetic", height=48, width=64, train_size=4, val_size=4)
    ids = {split: {build_dataset(cfg, split).sample(i).id for i in range(4)} for split in ("train", "val", "test")}
    assert not ids["val"] & ids["test"] and not ids["val"] & ids["train"] and not ids["test"] & ids["train"]


def test_nyu_validation_subset_is_fixed_and_excluded_from_training():
    from sosd.data.nyu import load_splits, validation_subset

    train = load_splits()["train"]
    val = validation_subset(train)
    assert len(val) == 80 and set(val) <= set(train)
    assert np.array_equal(val, validation_subset(train))  # seeded: the same subset every time
    rest = np.setdiff1d(train, val)
    assert len(rest) == 795 - 80 and not set(rest) & set(val)


# ----------------------------------------------------------------------- nothing already written is lost

def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_keeps_the_previous_run_until_the_new_one_starts(tmp_path, capsys):
    cfg_path = train_yaml(tmp_path)
    rc, err = sosd_cli(capsys, "train", "--config", cfg_path, "--no-progress")
    assert rc == 0, err
    run_dir = tmp_path / "runs" / "tiny"
    before = _tree(run_dir)
    assert any(k.endswith("model.safetensors") for k in before)
    bad = [("data.dataset=folder", f"data.root={tmp_path / 'no_such_folder'}"), ("train.lr=-1",),
           ("train.weight_decay=-1",), ("data.dataset=nyuv2", f"data.root={tmp_path / 'nyu.mat'}")]
    for overrides in bad:
        rc, err = sosd_cli(capsys, "train", "--config", cfg_path, "--overwrite", "--no-progress", *overrides)
        assert rc == 2 and "error" in err, (overrides, err)
        assert _tree(run_dir) == before, overrides   # the previous run is intact, file for file
        assert not (tmp_path / "runs" / ".tiny.replaced").exists()
    # a start that is accepted replaces it, and nothing is left aside
    rc, err = sosd_cli(capsys, "train", "--config", cfg_path, "--overwrite", "--no-progress", "train.seed=3")
    assert rc == 0, err
    assert "seed: 3" in (run_dir / "config.yaml").read_text()
    assert not (tmp_path / "runs" / ".tiny.replaced").exists()


def test_unwritable_train_out_dir(tmp_path, capsys):
    cfg_path = train_yaml(tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    rc, err = sosd_cli(capsys, "train", "--config", cfg_path, "--no-progress", f"train.out_dir={blocker / 'runs'}")
    assert rc == 2 and "cannot write the run folder" in err and "train.out_dir" in err


@pytest.mark.parametrize("override,message", [
    ("train.lr=-1", "'train.lr' must be > 0"), ("train.lr=nan", "'train.lr' must be a finite number"),
    ("train.lr=0", "'train.lr' must be > 0"), ("train.weight_decay=-1", "'train.weight_decay' must be >= 0"),
    ("train.warmup_steps=-3", "'train.warmup_steps' must be >= 0"), ("train.grad_clip=inf", "finite"),
    ("model.init_std=0", "'model.init_std' must be > 0"), ("data.scales=[1,nan]", "'data.scales'"),
    ("data.scales=[0,1]", "positive"), ("train.em.alpha=[1,a,1]", "'train.em.alpha'")])
def test_bad_numbers_are_refused_at_config_load(tmp_path, capsys, override, message):
    rc, err = sosd_cli(capsys, "train", "--print-config", override)
    assert rc == 2 and message in err, err


# ----------------------------------------------------------------------- bad input still let through (issue 14)

def _folder_root(tmp_path):
    root = tmp_path / "ds"
    write_folder(root)
    return root


def test_classes_txt_with_a_blank_line(tmp_path):
    from sosd.data.folder import FolderDataset

    root = _folder_root(tmp_path)
    (root / "classes.txt").write_text("wall\n\nfloor\nchair\n")
    with pytest.raises(DataError, match=r"classes.txt: line 2 is blank.*shift"):
        FolderDataset(root, split="train")
    (root / "classes.txt").write_text("wall\nfloor\nchair\n\n\n")  # trailing blank lines are fine
    assert FolderDataset(root, split="train").class_names == ["wall", "floor", "chair"]


def test_uppercase_png_extension_is_named(tmp_path):
    from sosd.data.folder import FolderDataset

    root = _folder_root(tmp_path)
    depth = min((root / "train" / "depth").glob("*.png"))
    depth.rename(depth.with_suffix(".PNG"))
    with pytest.raises(DataError, match=r"\.PNG is there.*lowercase \.png"):
        FolderDataset(root, split="train")


def test_intrinsics_given_as_strings_are_refused(tmp_path):
    from sosd.data.folder import read_intrinsics_json

    p = tmp_path / "k.json"
    p.write_text('{"fx": "500", "fy": 500, "cx": 320, "cy": 240}')
    with pytest.raises(DataError, match="fx is '500', a str, not a number"):
        read_intrinsics_json(p)
    p.write_text('{"fx": 500, "fy": 500.0, "cx": 320, "cy": 240}')
    assert read_intrinsics_json(p).tolist() == [500, 500, 320, 240]


def _png16_rgb(path, a):
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    import struct
    import zlib

    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[i].astype(">u2").tobytes() for i in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16_bit_rgb_images_are_scaled_with_a_warning(tmp_path):
    from sosd.data.folder import read_rgb
    from sosd.inference import _as_array, read_image

    a = np.full((40, 40, 3), 4095, np.uint16)  # 12-bit data in a 16-bit file: high byte 15
    a[0, 0] = 65535
    p = tmp_path / "rgb16.png"
    _png16_rgb(p, a)
    for reader in (read_rgb, read_image):
        with pytest.warns(UserWarning, match="16-bit colour PNG reduced to 8 bits"):
            out = reader(p)
        assert out.dtype == np.uint8 and out[0, 0, 0] == 255 and out[1, 1, 0] == 4095 // 256
    # a uint16 array through the API is scaled, not clipped to 255 (which would make it white)
    assert _as_array(a)[1, 1, 0] == round(4095 / 257) and _as_array(a)[0, 0, 0] == 255


def test_depth_in_tenth_millimetres_is_warned_about(tmp_path):
    from sosd.data.folder import FolderDataset

    root = _folder_root(tmp_path)
    for f in (root / "train" / "depth").glob("*.png"):
        mm = np.asarray(Image.open(f)).astype(np.uint16)
        tenth = np.where(mm > 0, np.full_like(mm, 25000), 0).astype(np.uint16)  # 2.5 m in 0.1 mm units
        Image.fromarray(tenth).save(f)
    ds = FolderDataset(root, split="train")
    with pytest.warns(UserWarning, match="0.1 mm units"):
        ds.sample(0)


@pytest.mark.parametrize("module,extra,call", [
    ("scipy", "data", "splits"), ("h5py", "data", "mat"), ("onnx", "export", "onnx")])
def test_missing_optional_dependency_names_the_extra(tmp_path, monkeypatch, module, extra, call):
    from sosd.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    for k in [k for k in sys.modules if k.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, k, None)
    with pytest.raises(MissingDependencyError, match=rf"pip install 'sosd\[{extra}\]'"):
        if call == "splits":
            from sosd.data.nyu import load_splits
            load_splits()
        elif call == "mat":
            from sosd.data.nyu import NYUDepthV2
            NYUDepthV2(MAT, split="all")
        else:
            from sosd.config import ModelConfig
            from sosd.export.onnx_export import export_onnx
            from sosd.models import SOSDNet
            from tests.models.base import SMALL
            export_onnx(SOSDNet(ModelConfig(variant="depth_only", **SMALL)).eval(), tmp_path / "m.onnx", 64, 64)


def test_overrides_split_around_a_flag(tmp_path, capsys):
    rc, err = sosd_cli(capsys, "train", "train.steps=7", "--print-config", "train.lr=0.002")
    out = capsys.readouterr().out
    assert rc == 0, err
    rc2 = main(["train", "train.steps=7", "--print-config", "train.lr=0.002"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert rc2 == 0 and printed["train"]["steps"] == 7 and printed["train"]["lr"] == 0.002
    with pytest.raises(SystemExit):  # anything else left over is still an argparse error
        main(["train", "train.steps=7", "--print-config", "--no-such-flag"])
    del out


def test_api_accepts_grey_and_rgba_arrays(run):
    run_dir, _ = run
    p = sosd.load(run_dir)
    rgb = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    grey = rgb[..., 0]
    ref_grey = p.predict(np.repeat(grey[..., None], 3, axis=2))
    for img in (grey, grey[..., None]):
        out = p.predict(img)
        np.testing.assert_allclose(out.depth, ref_grey.depth, rtol=1e-5, atol=1e-6)
    rgba = np.concatenate([rgb, np.full((48, 64, 1), 7, np.uint8)], axis=2)
    np.testing.assert_allclose(p.predict(rgba).depth, p.predict(rgb).depth, rtol=1e-5, atol=1e-6)
    with pytest.raises(SOSDError, match="RGBA"):
        p.predict(np.zeros((48, 64, 2), np.uint8))


def test_loose_weights_of_another_variant_in_a_run_folder(tmp_path, capsys, run):
    from sosd.models import SOSDNet
    from sosd.checkpoint import save_weights

    run_dir, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    other = tiny_config(tmp_path, variant="mtl", steps=1)
    save_weights(SOSDNet(other.model), other, copy / "model.safetensors")
    for cmd in (["eval", "--checkpoint", copy, "--no-progress"], ["export", "--checkpoint", copy, "--out", tmp_path / "m.onnx"]):
        rc, err = sosd_cli(capsys, *cmd)
        assert rc == 2 and "model.variant: 'mtl' in model.safetensors, 'sosd' in config.yaml" in err, err
    with pytest.raises(SOSDError, match="another model than the run's"):
        sosd.load(copy)


def test_unwritable_output_paths_are_checked_before_the_work(tmp_path, capsys, run):
    run_dir, _ = run
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc, err = sosd_cli(capsys, "eval", "--checkpoint", run_dir, "--no-progress", "--out", blocker / "r.json")
    out = capsys.readouterr().out
    assert rc == 2 and "cannot write --out" in err and "rel" not in out  # no results printed, then a failure
    rc, err = sosd_cli(capsys, "export", "--checkpoint", run_dir, "--out", blocker / "m.onnx")
    assert rc == 2 and "cannot write --out" in err
    img = tmp_path / "img.png"
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(img)
    rc, err = sosd_cli(capsys, "predict", img, "--checkpoint", run_dir, "--out", blocker / "preds", "--no-progress")
    assert rc == 2 and "cannot write --out" in err


def test_probe_of_a_finished_run_whose_weights_were_not_kept(run, tmp_path, capsys):
    # the claims study keeps config.yaml, metrics.json and test scores in git, not the checkpoints
    run_dir, _ = run
    kept = tmp_path / "street-sosd-b1000-seed0"
    kept.mkdir()
    shutil.copy(run_dir / "config.yaml", kept / "config.yaml")
    (kept / "metrics.json").write_text("{}")
    rc, err = sosd_cli(capsys, "probe", "--checkpoint", kept, "--out", tmp_path / "probe")
    assert rc == 2 and "holds no checkpoint: its weights were not kept" in err
    assert f"sosd train --config {kept / 'config.yaml'} --overwrite" in err
