"""Depth / disparity metrics of §4.1 (sosd.eval.depth_metrics).

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/eval/test_depth_metrics.py
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sosd.eval.depth_metrics import (
    DepthMetrics,
    DisparityMAE,
    EigenDepthMetrics,
    describe_protocol,
    eigen_crop,
    make_depth_metric,
)
from sosd.eval.metrics import SceneMetrics

T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731


def _golden_batch():
    # image A (2x2, all valid)          image B (2x2, only the top-left pixel valid)
    #   gt   1   2     pred 1.2  2        gt 5 1    pred 10  nan
    #        4   4          3    7           1 1          0  -1     (garbage at invalid pixels)
    gt = T([[[1, 2], [4, 4]], [[5, 1], [1, 1]]])
    pred = T([[[1.2, 2], [3, 7]], [[10, float("nan")], [0, -1]]])
    valid = torch.tensor([[[1, 1], [1, 1]], [[1, 0], [0, 0]]], dtype=torch.bool)
    return pred, gt, valid


def test_paper_golden_two_images():
    # Hand computation, N = 5 valid pixels over the set:
    #  pixel  pred gt  |e|/gt  e^2  |log10 p - log10 g|     delta=max(p/g,g/p)
    #  A1     1.2  1   0.2     0.04 log10(1.2)  = 0.0791812  1.2   (<1.25)
    #  A2     2    2   0       0    0                        1     (<1.25)
    #  A3     3    4   0.25    1    log10(4/3)  = 0.1249387  1.333 (<1.25^2 = 1.5625)
    #  A4     7    4   0.75    9    log10(1.75) = 0.2430380  1.75  (<1.25^3 = 1.953125)
    #  B1     10   5   1.0     25   log10(2)    = 0.3010300  2     (none)
    # rel = 2.2/5 = 0.44; rms = sqrt(35.04/5) = sqrt(7.008) = 2.6472627; log10 = 0.7481879/5 = 0.1496376
    # delta1 = 2/5, delta2 = 3/5, delta3 = 4/5
    pred, gt, valid = _golden_batch()
    m = DepthMetrics()
    m.update(pred, gt, valid)
    r = m.compute()
    assert float(r["rel"]) == pytest.approx(0.44, abs=1e-12)
    assert float(r["rms"]) == pytest.approx(math.sqrt(7.008), abs=1e-12)
    assert float(r["log10"]) == pytest.approx(0.7481879 / 5, abs=1e-7)
    assert [float(r[k]) for k in ("delta1", "delta2", "delta3")] == pytest.approx([0.4, 0.6, 0.8])
    assert int(r["n_valid_pixels"]) == 5
    assert int(r["clamped_pixels"]) == 0  # the 0 and -1 sit at invalid pixels


def test_paper_is_not_mean_of_image_means():
    # per-image rel would be A: 1.2/4 = 0.3, B: 1.0 -> 0.65 (what the eigen protocol reports here:
    # at 2x2 the scaled Eigen crop is the whole image and all depths are within (1e-3, 10))
    pred, gt, valid = _golden_batch()
    e = EigenDepthMetrics()
    e.update(pred, gt, valid)
    assert float(e.compute()["rel"]) == pytest.approx(0.65)
    assert eigen_crop(2, 2) == (0, 2, 0, 2)


def test_paper_and_eigen_protocols_differ_on_unequal_pixel_counts():
    # image 0: 100 valid pixels, perfect; image 1: 1 valid pixel, rel error 1 (pred 2, gt 1).
    # paper: rel = 1/101 (pixels over the set); eigen: rel = (0 + 1)/2 = 0.5 (mean of image means).
    h, w = 48, 64
    gt = torch.full((2, 1, h, w), 2.0, dtype=torch.float64)
    gt[1] = 1.0
    pred = gt.clone()
    valid = torch.zeros(2, 1, h, w, dtype=torch.bool)
    valid[0, 0, 10:20, 10:20] = True  # inside the scaled crop rows 5:47, cols 4:60
    valid[1, 0, 20, 30] = True
    pred[1, 0, 20, 30] = 2.0
    paper, eigen = SceneMetrics(3, depth_protocol="paper"), SceneMetrics(3, depth_protocol="eigen")
    for m in (paper, eigen):
        m.update(pred, None, gt, valid, torch.zeros(2, h, w, dtype=torch.long))
    rp, re = paper.compute(), eigen.compute()
    assert rp["rel"] == pytest.approx(1 / 101)
    assert re["rel"] == pytest.approx(0.5)
    assert rp["delta1"] == pytest.approx(100 / 101) and re["delta1"] == pytest.approx(0.5)
    assert rp["depth_protocol"] == "paper" and re["depth_protocol"] == "eigen"
    assert {"sq_rel", "log_rms", "silog"} <= set(re) and not {"sq_rel", "log_rms", "silog"} & set(rp)


def test_eigen_crop_bounds():
    assert eigen_crop(480, 640) == (45, 471, 41, 601)
    assert eigen_crop(240, 320) == (23, 236, 21, 301)  # 22.5 -> 23 (half up), 235.5 -> 236, 20.5 -> 21, 300.5 -> 301
    assert eigen_crop(48, 64) == (5, 47, 4, 60)


def test_eigen_cap_crop_and_silog_golden():
    # 480x640: one pixel outside the crop (row 10), one with gt >= 10 m (excluded), two inside:
    #   gt 2, pred 2*e^0.1 ; gt 4, pred 4*e^-0.1   -> d = +0.1, -0.1
    #   silog = 100*sqrt(mean(d^2) - mean(d)^2) = 100*sqrt(0.01 - 0) = 10 ; log_rms = sqrt(0.01) = 0.1
    #   rel = ((e^0.1 - 1) + (1 - e^-0.1))/2 ; sq_rel = (4(e^.1-1)^2/2 + 16(1-e^-.1)^2/4)/2
    h, w = 480, 640
    gt = torch.ones(1, h, w, dtype=torch.float64)
    pred = gt.clone()
    valid = torch.zeros(1, h, w, dtype=torch.bool)
    a, b = math.exp(0.1), math.exp(-0.1)
    for (r, c, g, p) in [(10, 100, 2.0, 50.0), (200, 100, 12.0, 12.0), (200, 200, 2.0, 2 * a), (300, 300, 4.0, 4 * b)]:
        gt[0, r, c], pred[0, r, c], valid[0, r, c] = g, p, True
    m = EigenDepthMetrics()
    m.update(pred, gt, valid)
    r = m.compute()
    assert int(r["n_valid_pixels"]) == 2
    assert float(r["silog"]) == pytest.approx(10.0, rel=1e-9)
    assert float(r["log_rms"]) == pytest.approx(0.1, rel=1e-9)
    assert float(r["rel"]) == pytest.approx(((a - 1) + (1 - b)) / 2)
    assert float(r["sq_rel"]) == pytest.approx((4 * (a - 1) ** 2 / 2 + 16 * (1 - b) ** 2 / 4) / 2)
    # predictions are clamped to 10 m under eigen (not under paper)
    gt2 = torch.full((1, h, w), 5.0, dtype=torch.float64)
    pred2 = torch.full((1, h, w), 40.0, dtype=torch.float64)
    v2 = torch.ones(1, h, w, dtype=torch.bool)
    m2 = EigenDepthMetrics()
    m2.update(pred2, gt2, v2)
    assert float(m2.compute()["rel"]) == pytest.approx(1.0)  # |10 - 5| / 5
    p2 = DepthMetrics()
    p2.update(pred2, gt2, v2)
    assert float(p2.compute()["rel"]) == pytest.approx(7.0)  # |40 - 5| / 5


def test_disparity_mae_golden():
    # valid pixels over the set: |3-1| + |0-0.5| + |2-2| = 2.5 over 3 pixels -> 0.8333 px
    gt = T([[[1.0, 0.5], [9.0, 9.0]], [[2.0, 7.0], [7.0, 7.0]]])
    pred = T([[[3.0, 0.0], [100.0, 100.0]], [[2.0, -5.0], [-5.0, -5.0]]])
    valid = torch.tensor([[[1, 1], [0, 0]], [[1, 0], [0, 0]]], dtype=torch.bool)
    m = DisparityMAE()
    m.update(pred, gt, valid)
    r = m.compute()
    assert float(r["disparity_mae_px"]) == pytest.approx(2.5 / 3)
    s = SceneMetrics(19, target_kind="disparity")
    s.update(pred[:1], None, gt[:1], valid[:1], torch.zeros(1, 2, 2, dtype=torch.long))
    s.update(pred[1:], None, gt[1:], valid[1:], torch.zeros(1, 2, 2, dtype=torch.long))
    out = s.compute()
    assert out["disparity_mae_px"] == pytest.approx(2.5 / 3) and out["n_valid_pixels"] == 3
    assert "rel" not in out


def test_nonpositive_predictions_are_floored_and_counted():
    # pred 0 at gt 1 -> floored to 1e-3: rel = 0.999, log10 = 3
    m = DepthMetrics()
    m.update(T([[[0.0]]]), T([[[1.0]]]), torch.ones(1, 1, 1, dtype=torch.bool))
    r = m.compute()
    assert float(r["rel"]) == pytest.approx(0.999) and float(r["log10"]) == pytest.approx(3.0)
    assert int(r["clamped_pixels"]) == 1 and all(math.isfinite(float(v)) for v in r.values())


def test_nonfinite_prediction_at_valid_pixel_raises():
    m = DepthMetrics()
    with pytest.raises(ValueError, match="non-finite"):
        m.update(T([[[float("nan"), 1.0]]]), T([[[1.0, 1.0]]]), torch.ones(1, 1, 2, dtype=torch.bool))


def test_missing_predictions_are_excluded_and_counted():
    m = DepthMetrics()
    pred, gt = T([[[1.0, 123.0]]]), T([[[1.0, 2.0]]])
    m.update(pred, gt, torch.ones(1, 1, 2, dtype=torch.bool), pred_valid=torch.tensor([[[True, False]]]))
    r = m.compute()
    assert float(r["rel"]) == 0.0 and int(r["n_valid_pixels"]) == 1 and int(r["missing_pixels"]) == 1


def test_empty_set_gives_nan_with_zero_count_and_shape_mismatch_raises():
    m = DepthMetrics()
    m.update(T([[[1.0]]]), T([[[1.0]]]), torch.zeros(1, 1, 1, dtype=torch.bool))
    r = m.compute()
    assert math.isnan(float(r["rel"])) and int(r["n_valid_pixels"]) == 0
    with pytest.raises(ValueError, match="same"):
        DepthMetrics().update(torch.ones(1, 2, 2), torch.ones(1, 2, 3), torch.ones(1, 2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="disparity"):
        make_depth_metric("disparity", "eigen")
    assert "eigen" in describe_protocol("depth", "eigen") and "silog" in describe_protocol("depth", "eigen")


# ------------------------------------------------------------------------------------------ properties

def _random_set(seed, n, h, w, lo=0.5, hi=8.0):
    rng = np.random.default_rng(seed)
    gt = torch.from_numpy(rng.uniform(lo, hi, (n, 1, h, w)))
    pred = torch.from_numpy(rng.uniform(lo, hi, (n, 1, h, w)))
    valid = torch.from_numpy(rng.random((n, 1, h, w)) < 0.7)
    valid[:, 0, 0, 0] = True
    return pred, gt, valid


def _vals(m, keys=("rel", "rms", "log10", "delta1", "delta2", "delta3")):
    r = m.compute()
    return np.array([float(r[k]) for k in keys])


dims = dict(seed=st.integers(0, 2**31), n=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6))


@settings(max_examples=25, deadline=None)
@given(**dims)
def test_perfect_prediction(seed, n, h, w):
    _, gt, valid = _random_set(seed, n, h, w)
    for cls in (DepthMetrics, EigenDepthMetrics):
        m = cls(crop=False) if cls is EigenDepthMetrics else cls()
        m.update(gt.clone(), gt, valid)
        np.testing.assert_allclose(_vals(m), [0, 0, 0, 1, 1, 1], atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(**dims, s=st.floats(0.01, 100.0))
def test_scaling_both_rel_invariant_rms_linear(seed, n, h, w, s):
    pred, gt, valid = _random_set(seed, n, h, w)
    a, b = DepthMetrics(), DepthMetrics()
    a.update(pred, gt, valid)
    b.update(pred * s, gt * s, valid)
    va, vb = _vals(a), _vals(b)
    assert vb[0] == pytest.approx(va[0], rel=1e-9)          # rel
    assert vb[1] == pytest.approx(s * va[1], rel=1e-9)      # rms
    assert vb[2] == pytest.approx(va[2], rel=1e-6, abs=1e-12)  # log10
    np.testing.assert_array_equal(vb[3:], va[3:])  # deltas (ratios are exact up to fp; 1.25^k ties are rare)


@settings(max_examples=25, deadline=None)
@given(**dims)
def test_paper_invariant_to_permuting_pixels_across_images(seed, n, h, w):
    pred, gt, valid = _random_set(seed, n, h, w)
    perm = torch.from_numpy(np.random.default_rng(seed + 1).permutation(n * h * w))
    shuf = lambda x: x.reshape(-1)[perm].reshape(x.shape)  # noqa: E731
    a, b = DepthMetrics(), DepthMetrics()
    a.update(pred, gt, valid)
    b.update(shuf(pred), shuf(gt), shuf(valid))
    np.testing.assert_allclose(_vals(b), _vals(a), rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(**dims, cuts=st.lists(st.integers(0, 4), max_size=3))
def test_streaming_equals_one_shot(seed, n, h, w, cuts):
    pred, gt, valid = _random_set(seed, n, h, w)
    bounds = sorted({0, n, *[min(c, n) for c in cuts]})
    for make, keys in ((DepthMetrics, None), (lambda: EigenDepthMetrics(crop=False), None),
                       (DisparityMAE, ("disparity_mae_px",))):
        one, many = make(), make()
        one.update(pred, gt, valid)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi > lo:
                many.update(pred[lo:hi], gt[lo:hi], valid[lo:hi])
        k = keys or ("rel", "rms", "log10", "delta1", "delta2", "delta3")
        np.testing.assert_allclose(_vals(many, k), _vals(one, k), rtol=1e-12, atol=1e-12)
