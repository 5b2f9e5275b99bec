"""``sosd.load(ckpt).predict(image)``: sizes, input types, disparity scaling with the width.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_inference.py
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import sosd
from sosd.data import build_dataset
from sosd.errors import SOSDError
from sosd.inference import read_image
from sosd.train.loop import fit
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def indoor_run(tiny_run):
    return tiny_run


@pytest.fixture(scope="module")
def street_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("street")
    cfg = tiny_config(tmp, **{"data.preset": "street"})
    fit(cfg, progress=False)
    return tmp / "runs" / "tiny", cfg


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("hw", [(37, 91), (200, 300)])
def test_predict_returns_maps_at_the_input_size(indoor_run, hw):
    run, cfg = indoor_run
    p = sosd.load(run)
    assert (p.cfg.data.height, p.cfg.data.width) == (48, 64) != hw  # resized to the training size and back
    out = p.predict(_image(*hw))
    assert out.depth.shape == hw and out.depth.dtype == np.float32
    assert np.isfinite(out.depth).all() and (out.depth > 0).all()
    assert out.labels.shape == hw and out.labels.dtype.kind in "iu"
    assert out.labels.min() >= 0 and out.labels.max() < cfg.model.num_classes
    assert out.target_kind == "depth"
    assert out.class_names == build_dataset(cfg.data, "test").class_names


def test_native_size_runs_at_the_input_size(indoor_run):
    run, _ = indoor_run
    img = _image(64, 96)
    a = sosd.load(run, native_size=True).predict(img)
    b = sosd.load(run).predict(img)
    assert a.depth.shape == b.depth.shape == (64, 96)
    assert not np.allclose(a.depth, b.depth)  # a different forward pass (no resize)


def test_path_pil_and_array_inputs_give_the_same_prediction(indoor_run, tmp_path):
    run, _ = indoor_run
    p = sosd.load(run)
    img = _image(50, 70, seed=3)
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    outs = [p.predict(img), p.predict(path), p.predict(str(path)), p.predict(Image.open(path)),
            p.predict(img.astype(np.float32) / 255.0)]
    for o in outs[1:]:
        np.testing.assert_array_equal(o.depth, outs[0].depth)
        np.testing.assert_array_equal(o.labels, outs[0].labels)
    batch = p.predict_batch([img, _image(37, 91), path])  # img and path run as one batch of 2
    # batching changes the order of float sums inside the convolutions: equal to float32 rounding
    np.testing.assert_allclose(batch[0].depth, outs[0].depth, rtol=1e-5)
    np.testing.assert_allclose(batch[2].depth, outs[0].depth, rtol=1e-5)
    assert (batch[2].labels == outs[0].labels).mean() > 0.999
    assert batch[1].depth.shape == (37, 91)


def test_bad_inputs_are_clear_errors(indoor_run, tmp_path):
    run, _ = indoor_run
    p = sosd.load(run)
    bad = tmp_path / "broken.png"
    good = tmp_path / "good.png"
    Image.fromarray(_image(20, 30)).save(good)
    bad.write_bytes(good.read_bytes()[:60])  # a truncated PNG
    with pytest.raises(SOSDError, match="broken.png"):
        p.predict(bad)
    with pytest.raises(SOSDError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(SOSDError, match=r"\(H, W, 3\)"):
        p.predict(np.zeros((20, 30, 2)))  # grey (H, W) and RGBA are accepted (tests/test_bad_input.py)


def _manual(predictor, img, disparity):
    """The documented path written out: resize to the training size, run, resize back (x width ratio)."""
    h, w = img.shape[:2]
    th, tw = predictor.size
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        d = predictor.model(x)["depth"]
    d = F.interpolate(d, size=(h, w), mode="bilinear", align_corners=False)
    return (d * (w / tw) if disparity else d)[0, 0].numpy()


def test_disparity_scales_with_the_width(street_run):
    run, cfg = street_run
    p = sosd.load(run)
    assert p.target_kind == "disparity"
    s = build_dataset(cfg.data, "test").sample(0)
    img = s.image  # at the training size (48x64)
    big = np.asarray(Image.fromarray(img).resize((2 * img.shape[1], 2 * img.shape[0]), Image.BILINEAR))
    small_pred, big_pred = p.predict(img).depth, p.predict(big).depth
    assert big_pred.shape == (96, 128)
    np.testing.assert_allclose(big_pred, _manual(p, big, disparity=True), rtol=1e-4, atol=1e-4)
    # the same scene twice as wide: disparities (px) about double
    ratio = big_pred.mean() / small_pred.mean()
    assert 1.8 < ratio < 2.2, ratio


def test_depth_does_not_scale_with_the_width(indoor_run):
    run, cfg = indoor_run
    p = sosd.load(run)
    img = build_dataset(cfg.data, "test").sample(0).image
    big = np.asarray(Image.fromarray(img).resize((2 * img.shape[1], 2 * img.shape[0]), Image.BILINEAR))
    big_pred = p.predict(big).depth
    np.testing.assert_allclose(big_pred, _manual(p, big, disparity=False), rtol=1e-4, atol=1e-4)
    assert 0.9 < big_pred.mean() / p.predict(img).depth.mean() < 1.1
