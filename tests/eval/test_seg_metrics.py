"""Segmentation metrics (one confusion matrix over the set), SceneMetrics, format_table, DDP reduction.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/eval/test_seg_metrics.py
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sosd.eval.metrics import SceneMetrics, format_table, result_keys
from sosd.eval.seg_metrics import SegmentationMetrics

L = lambda a: torch.tensor(a, dtype=torch.long)  # noqa: E731


def test_three_class_golden_with_absent_class_and_ignore():
    # K = 3; class 2 is absent from GT and (after dropping ignore pixels) from the prediction.
    #   GT   : 0 0 0 0 1 1 255 255
    #   pred : 0 0 0 1 1 0  2   0     (the 2 and 0 under 255 are ignored)
    # class 0: GT 4, TP 3, predicted 4 -> IoU 3/(4+4-3) = 0.6 ; acc 3/4
    # class 1: GT 2, TP 1, predicted 2 -> IoU 1/(2+2-1) = 1/3 ; acc 1/2
    # class 2: absent from both -> left out (counting it as 0 would give miou 0.311)
    # miou = (0.6 + 1/3)/2 = 0.46667 ; mean_acc = (0.75 + 0.5)/2 = 0.625 ; pixel_acc = 4/6
    m = SegmentationMetrics(3)
    m.update(L([[0, 0, 0, 1, 1, 0, 2, 0]]), L([[0, 0, 0, 0, 1, 1, 255, 255]]))
    r = m.compute()
    assert float(r["miou"]) == pytest.approx((0.6 + 1 / 3) / 2)
    assert float(r["mean_acc"]) == pytest.approx(0.625)
    assert float(r["pixel_acc"]) == pytest.approx(4 / 6)
    assert int(r["n_labelled_pixels"]) == 6
    iou = r["iou_per_class"].tolist()
    assert iou[:2] == pytest.approx([0.6, 1 / 3]) and math.isnan(iou[2])


def test_class_predicted_but_not_in_gt_counts_in_miou_not_in_mean_acc():
    # GT 0 0 1 1, pred 0 2 1 1: IoU0 = 1/2, IoU1 = 1, IoU2 = 0/(0+1-0) = 0 -> miou 0.5
    # acc0 = 1/2, acc1 = 1 (class 2 has no GT pixel: no accuracy) -> mean_acc 0.75 ; pixel_acc 3/4
    m = SegmentationMetrics(3)
    m.update(L([[0, 2, 1, 1]]), L([[0, 0, 1, 1]]))
    r = m.compute()
    assert float(r["miou"]) == pytest.approx(0.5)
    assert float(r["mean_acc"]) == pytest.approx(0.75)
    assert float(r["pixel_acc"]) == pytest.approx(0.75)


def test_no_prediction_counts_as_wrong():
    # GT 0 1, pred 255(none) 1: class 0 IoU 0/(1+0-0) = 0, class 1 IoU 1 -> miou 0.5; pixel_acc 1/2
    m = SegmentationMetrics(2)
    m.update(L([[255, 1]]), L([[0, 1]]))
    r = m.compute()
    assert float(r["miou"]) == pytest.approx(0.5) and float(r["pixel_acc"]) == pytest.approx(0.5)
    assert float(r["mean_acc"]) == pytest.approx(0.5) and int(r["missing_pixels"]) == 1


def test_scores_are_argmaxed_and_bad_labels_raise():
    scores = torch.zeros(1, 3, 1, 2)
    scores[0, 2, 0, 0] = 1.0
    scores[0, 1, 0, 1] = 1.0
    m = SegmentationMetrics(3)
    m.update(scores, L([[[2, 1]]]))
    assert float(m.compute()["miou"]) == 1.0
    with pytest.raises(ValueError, match="ground-truth"):
        SegmentationMetrics(3).update(L([[0]]), L([[3]]))
    with pytest.raises(ValueError, match="predicted"):
        SegmentationMetrics(3).update(L([[7]]), L([[0]]))
    with pytest.raises(ValueError, match="shape"):
        SegmentationMetrics(3).update(L([[0, 1]]), L([[0]]))


def _labels(seed, n, h, w, k):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, k, (n, h, w))
    gt[rng.random((n, h, w)) < 0.2] = 255
    pred = rng.integers(0, k, (n, h, w))
    return torch.from_numpy(pred), torch.from_numpy(gt)


def _seg(m):
    r = m.compute()
    return np.array([float(r[k]) for k in ("miou", "mean_acc", "pixel_acc")])


dims = dict(seed=st.integers(0, 2**31), n=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6),
            k=st.integers(1, 6))


@settings(max_examples=25, deadline=None)
@given(**dims)
def test_perfect_prediction_iou_one(seed, n, h, w, k):
    _, gt = _labels(seed, n, h, w, k)
    gt[0, 0, 0] = 0  # at least one labelled pixel
    m = SegmentationMetrics(k)
    m.update(torch.where(gt == 255, torch.zeros_like(gt), gt), gt)
    np.testing.assert_array_equal(_seg(m), [1.0, 1.0, 1.0])
    assert all(v == 1.0 or math.isnan(v) for v in m.compute()["iou_per_class"].reshape(-1).tolist())


@settings(max_examples=25, deadline=None)
@given(**dims, cuts=st.lists(st.integers(0, 4), max_size=3))
def test_streaming_and_permutation(seed, n, h, w, k, cuts):
    pred, gt = _labels(seed, n, h, w, k)
    one = SegmentationMetrics(k)
    one.update(pred, gt)
    many = SegmentationMetrics(k)
    bounds = sorted({0, n, *[min(c, n) for c in cuts]})
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi > lo:
            many.update(pred[lo:hi], gt[lo:hi])
    perm = torch.from_numpy(np.random.default_rng(seed + 1).permutation(n * h * w))
    shuf = SegmentationMetrics(k)
    shuf.update(pred.reshape(-1)[perm].reshape(pred.shape), gt.reshape(-1)[perm].reshape(gt.shape))
    a = _seg(one)
    np.testing.assert_array_equal(_seg(many), a)
    np.testing.assert_array_equal(_seg(shuf), a)


# ------------------------------------------------------------------------------------------ SceneMetrics

def _batch(n=2, h=3, w=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    gt = torch.from_numpy(rng.uniform(0.5, 5, (n, 1, h, w)))
    valid = torch.ones(n, 1, h, w, dtype=torch.bool)
    labels = torch.from_numpy(rng.integers(0, k, (n, h, w)))
    return gt, valid, labels


@pytest.mark.parametrize("kind,protocol", [("depth", "paper"), ("depth", "eigen"), ("disparity", "paper")])
def test_scene_metrics_keys_and_perfect_values(kind, protocol):
    gt, valid, labels = _batch()
    m = SceneMetrics(3, target_kind=kind, depth_protocol=protocol)
    m.update(gt.clone(), labels.clone(), gt, valid, labels)
    r = m.compute()
    assert tuple(r) == result_keys(kind, protocol)
    assert set(r) >= {"miou", "mean_acc", "pixel_acc", "n_images", "n_valid_pixels", "n_labelled_pixels",
                      "depth_protocol"}
    assert r["miou"] == 1.0 and r["pixel_acc"] == 1.0 and r["n_images"] == 2 and r["n_labelled_pixels"] == 24
    assert all(type(v) is float for k, v in r.items() if not k.startswith("n_") and k != "depth_protocol")
    if kind == "disparity":
        assert r["disparity_mae_px"] == 0.0
    else:
        assert r["rel"] == 0.0 and r["delta1"] == 1.0
    m.reset()
    assert m.compute()["n_images"] == 0


def test_scene_metrics_without_depth_prediction_reports_nan_not_error():
    gt, valid, labels = _batch()
    m = SceneMetrics(3)
    m.update(None, labels, gt, valid, labels)
    r = m.compute()
    assert math.isnan(r["rel"]) and r["n_valid_pixels"] == 0 and r["miou"] == 1.0


def test_format_table_layouts():
    r = {"miou": 0.45, "mean_acc": 0.647, "pixel_acc": 0.733, "rel": 0.145, "rms": 0.514, "log10": 0.062,
         "delta1": 0.805, "delta2": 0.962, "delta3": 0.992, "n_images": 654, "n_valid_pixels": 10,
         "n_labelled_pixels": 9, "depth_protocol": "paper"}
    t = format_table(r, "nyu", method="ESOSD-Net")
    lines = t.splitlines()
    assert lines[0] == ("| Method | Mean IoU | Mean Accuracy | Pixel Accuracy | rel | rms | log10 | δ<1.25 | "
                        "δ<1.25² | δ<1.25³ |")
    assert lines[2] == "| ESOSD-Net | 0.450 | 0.647 | 0.733 | 0.145 | 0.514 | 0.062 | 0.805 | 0.962 | 0.992 |"
    assert "'paper'" in t and "654 images" in t
    c = format_table({"miou": 0.682, "disparity_mae_px": 2.4123, "depth_protocol": "paper"}, "cityscapes")
    assert c.splitlines()[0] == "| Segmentation mIoU [%] | Disparity error [px] |"
    assert c.splitlines()[2] == "| 68.2 | 2.41 |" and "disparity" in c.splitlines()[4]
    e = format_table({**r, "depth_protocol": "eigen", "silog": 12.3, "rel": float("nan")}, "nyu")
    assert "silog" in e.splitlines()[0] and "'eigen'" in e
    assert e.splitlines()[2].split("|")[4].strip() == "-"  # NaN rel prints as "-"
    assert e.splitlines()[2].split("|")[-2].strip() == "12.300"  # silog
    with pytest.raises(ValueError):
        format_table(r, "kitti")


# ------------------------------------------------------------------------------------------ DDP

def _ddp_worker(rank, world, init_file, out_file):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        gt, valid, labels = _batch(n=4, seed=7)
        pred = gt * 1.1
        pred[:, :, 0, 0] = gt[:, :, 0, 0] * 2  # some pixels fail delta1
        pl = labels.roll(1, dims=-1)
        out = {}
        for protocol in ("paper", "eigen"):
            m = SceneMetrics(3, depth_protocol=protocol)
            # unequal shards: rank 0 gets 3 images, rank 1 gets 1
            sl = slice(0, 3) if rank == 0 else slice(3, 4)
            m.update(pred[sl], pl[sl], gt[sl], valid[sl], labels[sl])
            out[protocol] = m.compute()
        if rank == 0:
            torch.save(out, out_file)
    finally:
        dist.destroy_process_group()


def test_ddp_reduction_sums_raw_sums(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "out.pt")), nprocs=2, join=True)
    got = torch.load(tmp_path / "out.pt")
    gt, valid, labels = _batch(n=4, seed=7)
    pred = gt * 1.1
    pred[:, :, 0, 0] = gt[:, :, 0, 0] * 2
    for protocol in ("paper", "eigen"):
        m = SceneMetrics(3, depth_protocol=protocol)
        m.update(pred, labels.roll(1, dims=-1), gt, valid, labels)
        want = m.compute()
        assert got[protocol]["n_images"] == 4 and got[protocol]["n_valid_pixels"] == want["n_valid_pixels"]
        for k, v in want.items():
            if isinstance(v, float):
                assert got[protocol][k] == pytest.approx(v, rel=1e-12), (protocol, k)
