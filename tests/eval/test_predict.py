"""`sosd predict`: output files and sizes, bad inputs, and the predict -> `eval --predictions` round trip.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/eval/test_predict.py
"""
import json

import numpy as np
import pytest
from PIL import Image

import sosd
from sosd.cli import main
from sosd.data import build_dataset
from sosd.eval.predict import size_groups
from sosd.eval.prediction_files import read_prediction
from sosd.train.loop import fit
from tests.conftest import tiny_config

NYU_FILES = ("_depth.png", "_labels.png", "_depth_color.png", "_labels_color.png", "_overlay.png")


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


def _png(path, h, w, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_predict_a_folder_writes_every_file_at_the_input_size(run, tmp_path, capsys):
    ckpt, cfg = run
    sizes = {"a": (37, 91), "b": (60, 80), "c": (60, 80), "d": (48, 64)}
    for i, (stem, hw) in enumerate(sizes.items()):
        _png(tmp_path / "in" / f"{stem}.png", *hw, seed=i)
    out = tmp_path / "out"
    rc = main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "in"), "--out", str(out), "--batch-size", "2",
               "--no-progress"])
    assert rc == 0
    assert "4 image(s)" in capsys.readouterr().out
    p = sosd.load(ckpt)
    for stem, hw in sizes.items():
        for suffix in NYU_FILES:
            assert (out / f"{stem}{suffix}").is_file(), f"{stem}{suffix}"
        for suffix in ("_depth.png", "_labels.png", "_overlay.png"):  # data files and overlay: input size
            assert Image.open(out / f"{stem}{suffix}").size == (hw[1], hw[0])
        assert Image.open(out / f"{stem}_depth.png").mode == "I;16"
        for suffix in ("_depth_color.png", "_labels_color.png"):  # pictures with a bar / legend: larger
            im = Image.open(out / f"{stem}{suffix}")
            assert im.mode == "RGB" and im.size[0] > hw[1] and im.size[1] > hw[0]
        # the files hold the predictor's output (1 mm quantisation)
        ref = p.predict(tmp_path / "in" / f"{stem}.png")
        got = read_prediction(out, stem, "nyu", shape=hw, num_classes=cfg.model.num_classes)
        np.testing.assert_allclose(got.values, ref.depth, atol=5.01e-4)
        np.testing.assert_array_equal(got.labels, ref.labels)
    info = json.loads((out / "predict.json").read_text())
    assert info["format"] == "nyu" and info["units"] == "m" and info["target_kind"] == "depth"
    assert info["class_names"]["1"] == p.class_names[0] and len(info["inputs"]) == 4


def test_size_groups_batch_same_size_images_in_order():
    sizes = {"a": (1, 2), "b": (3, 4), "c": (1, 2), "d": (1, 2), "e": (3, 4)}
    assert size_groups(sizes, 2) == [["a", "c"], ["d"], ["b", "e"]]
    assert size_groups(sizes, 8) == [["a", "c", "d"], ["b", "e"]]


def test_recursive_and_mixed_inputs(run, tmp_path):
    ckpt, _ = run
    _png(tmp_path / "in" / "top.jpg", 30, 40)
    _png(tmp_path / "in" / "sub" / "deep.png", 30, 40)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    single = _png(tmp_path / "single.bmp", 20, 20)
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "in"), str(single), "--out", str(out),
                 "--no-progress", "--no-pictures"]) == 0
    assert (out / "top_depth.png").is_file() and (out / "single_labels.png").is_file()
    assert not (out / "deep_depth.png").exists() and not (out / "top_overlay.png").exists()
    assert main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "in"), "--recursive", "--out", str(out),
                 "--no-progress"]) == 0
    assert (out / "deep_depth.png").is_file() and (out / "deep_overlay.png").is_file()


def test_a_corrupt_image_is_an_error_naming_the_file(run, tmp_path, capsys):
    ckpt, _ = run
    good = _png(tmp_path / "in" / "a_good.png", 30, 40)
    (tmp_path / "in" / "b_broken.png").write_bytes(good.read_bytes()[:80])  # truncated PNG
    _png(tmp_path / "in" / "c_good.png", 30, 40)
    out = tmp_path / "out"
    rc = main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "in"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "b_broken.png" in err
    assert not list(out.glob("b_broken*"))  # nothing written for it
    # --skip-bad reports it and goes on; exit status 1 says something was skipped
    rc = main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "in"), "--out", str(out), "--no-progress",
               "--skip-bad"])
    err = capsys.readouterr().err
    assert rc == 1 and "b_broken.png" in err
    assert (out / "a_good_depth.png").is_file() and (out / "c_good_overlay.png").is_file()
    assert not list(out.glob("b_broken*"))


@pytest.mark.parametrize("make_args,message", [
    (lambda t: [str(t / "missing.png")], "does not exist"),
    (lambda t: [str(t / "empty")], "holds no images"),
    (lambda t: [str(t / "x" / "same.png"), str(t / "y" / "same.png")], "same name 'same'"),
    (lambda t: [str(t / "x" / "same.png"), "--backend", "onnxruntime"], "sosd export"),
    (lambda t: [str(t / "x" / "same.png"), "--device", "cuda:99"], "cuda"),
])
def test_input_errors(run, tmp_path, capsys, make_args, message):
    ckpt, _ = run
    _png(tmp_path / "x" / "same.png", 20, 20)
    _png(tmp_path / "y" / "same.png", 20, 20)
    (tmp_path / "empty").mkdir()
    rc = main(["predict", "--checkpoint", str(ckpt), *make_args(tmp_path), "--out", str(tmp_path / "out"),
               "--no-progress"])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_predict_then_eval_predictions_equals_eval_checkpoint(run, tmp_path):
    ckpt, cfg = run
    ds = build_dataset(cfg.data, cfg.data.val_split)
    (tmp_path / "images").mkdir()
    for i in range(len(ds)):  # the validation images as PNGs named by sample id
        s = ds.sample(i)
        Image.fromarray(s.image).save(tmp_path / "images" / f"{s.id}.png")
    preds = tmp_path / "preds"
    assert main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "images"), "--out", str(preds),
                 "--no-progress", "--no-pictures"]) == 0
    data = ["--dataset", "synthetic", "--preset", "indoor", "--n", str(len(ds)), "--seed", str(cfg.data.seed),
            "--height", str(cfg.data.height), "--width", str(cfg.data.width)]
    assert main(["eval", "--predictions", str(preds), *data, "--out", str(tmp_path / "off.json"),
                 "--no-progress"]) == 0
    assert main(["eval", "--checkpoint", str(ckpt), "--out", str(tmp_path / "ck.json"), "--no-progress"]) == 0
    off = json.loads((tmp_path / "off.json").read_text())
    ck = json.loads((tmp_path / "ck.json").read_text())
    assert off["n_images"] == ck["n_images"] == len(ds)
    assert off["n_valid_pixels"] == ck["n_valid_pixels"] and off["n_labelled_pixels"] == ck["n_labelled_pixels"]
    for k in ("miou", "mean_acc", "pixel_acc"):  # single-image vs batched forward: float noise at most
        assert off[k] == pytest.approx(ck[k], abs=1e-3), k
    for k in ("rel", "rms", "log10"):  # 1 mm quantisation of depths >= 0.5 m
        assert off[k] == pytest.approx(ck[k], abs=2e-3), k
    for k in ("delta1", "delta2", "delta3"):
        assert off[k] == pytest.approx(ck[k], abs=5e-3), k


def test_disparity_model_writes_cityscapes_files(tmp_path, capsys):
    cfg = tiny_config(tmp_path, steps=1, **{"data.preset": "street"})
    fit(cfg, progress=False)
    _png(tmp_path / "in" / "frame.png", 50, 100)
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(tmp_path / "runs" / "tiny"), str(tmp_path / "in"), "--out",
                 str(out), "--no-progress"]) == 0
    for suffix in ("_disparity.png", "_labelTrainIds.png", "_depth_color.png", "_labels_color.png", "_overlay.png"):
        assert (out / f"frame{suffix}").is_file(), suffix
    ref = sosd.load(tmp_path / "runs" / "tiny").predict(tmp_path / "in" / "frame.png")
    got = read_prediction(out, "frame", "cityscapes", shape=(50, 100))
    np.testing.assert_allclose(got.values, np.clip(ref.depth, 0, None), atol=0.5 / 256 + 1e-6)
    np.testing.assert_array_equal(got.labels, ref.labels)
    assert json.loads((out / "predict.json").read_text())["units"] == "px"
