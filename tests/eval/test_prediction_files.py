"""Prediction file formats (NYU / Cityscapes PNGs) shared by `sosd predict` and the offline evaluator.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/eval/test_prediction_files.py
"""
import numpy as np
import pytest
import torch
from PIL import Image

from sosd.errors import SOSDError
from sosd.eval.prediction_files import CITYSCAPES, NYU, format_for, read_prediction, write_prediction


def test_nyu_round_trip_to_one_millimetre(tmp_path):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.2, 60.0, (6, 9)).astype(np.float32)
    depth[0, 0] = np.nan  # no prediction
    labels = rng.integers(0, 40, (6, 9))
    labels[1, 1] = 255  # no prediction
    paths = write_prediction(tmp_path, "0007", depth, labels, "nyu")
    assert paths == [tmp_path / "0007_depth.png", tmp_path / "0007_labels.png"]
    raw_d, raw_l = np.array(Image.open(paths[0])), np.array(Image.open(paths[1]))
    assert raw_d.dtype == np.uint16 and raw_l.dtype == np.uint8
    assert raw_d[0, 0] == 0 and raw_d[2, 3] == round(depth[2, 3] * 1000)  # millimetres
    assert raw_l[1, 1] == 0 and raw_l[2, 3] == labels[2, 3] + 1          # NYU classes 1..40
    pred = read_prediction(tmp_path, "0007", NYU, shape=(6, 9), num_classes=40)
    assert np.isnan(pred.values[0, 0])
    ok = ~np.isnan(depth)
    assert np.abs(pred.values[ok] - depth[ok]).max() <= 0.0005 + 1e-6
    np.testing.assert_array_equal(pred.labels, labels)


def test_cityscapes_round_trip_to_one_256th_px_in_city_folder(tmp_path):
    rng = np.random.default_rng(1)
    disp = torch.from_numpy(rng.uniform(0.0, 120.0, (1, 5, 8)).astype(np.float32))  # (1,H,W) tensor is fine
    disp[0, 0, 0] = float("nan")
    labels = torch.from_numpy(rng.integers(0, 19, (5, 8)))
    labels[0, 1] = 255
    write_prediction(tmp_path, "aachen/aachen_000000_000019", disp, labels, CITYSCAPES)
    vpath = tmp_path / "aachen" / "aachen_000000_000019_disparity.png"
    lpath = tmp_path / "aachen" / "aachen_000000_000019_labelTrainIds.png"
    raw = np.array(Image.open(vpath))
    assert raw[0, 0] == 0 and raw[1, 1] == round(float(disp[0, 1, 1]) * 256) + 1  # (p - 1) / 256
    assert np.array(Image.open(lpath))[0, 1] == 255
    pred = read_prediction(tmp_path, "aachen/aachen_000000_000019", "cityscapes", shape=(5, 8), num_classes=19)
    d = disp[0].numpy()
    ok = ~np.isnan(d)
    assert np.isnan(pred.values[0, 0]) and np.abs(pred.values[ok] - d[ok]).max() <= 1 / 512 + 1e-6
    np.testing.assert_array_equal(pred.labels, labels.numpy())


def test_out_of_range_values_are_clipped_not_turned_into_none(tmp_path):
    write_prediction(tmp_path, "x", np.array([[-1.0, 0.0, 1e6]]), None, "nyu")
    v = read_prediction(tmp_path, "x", "nyu", labels=False).values
    np.testing.assert_allclose(v, [[0.001, 0.001, 65.535]], rtol=1e-6)  # still predictions
    write_prediction(tmp_path, "y", np.array([[-3.0, 1e6]]), None, "cityscapes")
    v = read_prediction(tmp_path, "y", "cityscapes", labels=False).values
    np.testing.assert_allclose(v, [[0.0, 65534 / 256]])


def test_format_for_target_kind():
    assert format_for("depth") is NYU and format_for("disparity") is CITYSCAPES
    with pytest.raises(SOSDError):
        format_for("normals")


def test_missing_file_names_the_path(tmp_path):
    write_prediction(tmp_path, "0001", np.ones((2, 2)), None, "nyu")  # labels file not written
    with pytest.raises(SOSDError, match=r"0001_labels\.png.*missing"):
        read_prediction(tmp_path, "0001", "nyu", shape=(2, 2))
    with pytest.raises(SOSDError, match=r"0002_depth\.png"):
        read_prediction(tmp_path, "0002", "nyu", shape=(2, 2))


def test_wrong_size_names_file_and_both_shapes(tmp_path):
    write_prediction(tmp_path, "0001", np.ones((4, 5)), np.zeros((4, 5), dtype=np.int64), "nyu")
    with pytest.raises(SOSDError, match=r"0001_depth\.png is 4x5 .* 480x640"):
        read_prediction(tmp_path, "0001", "nyu", shape=(480, 640))


def test_wrong_dtype_unreadable_and_bad_labels(tmp_path):
    Image.fromarray(np.ones((2, 2), dtype=np.uint8)).save(tmp_path / "a_depth.png")  # 8-bit depth
    with pytest.raises(SOSDError, match=r"a_depth\.png has the wrong type.*16-bit"):
        read_prediction(tmp_path, "a", "nyu", shape=(2, 2), labels=False)
    Image.fromarray(np.ones((2, 2, 3), dtype=np.uint8)).save(tmp_path / "b_labels.png")  # RGB labels
    with pytest.raises(SOSDError, match=r"b_labels\.png has the wrong type"):
        read_prediction(tmp_path, "b", "nyu", shape=(2, 2), depth=False)
    (tmp_path / "c_depth.png").write_bytes(b"not a png")
    with pytest.raises(SOSDError, match=r"c_depth\.png cannot be read"):
        read_prediction(tmp_path, "c", "nyu", labels=False)
    Image.fromarray(np.full((2, 2), 41, dtype=np.uint8)).save(tmp_path / "d_labels.png")  # NYU class 41
    with pytest.raises(SOSDError, match=r"d_labels\.png holds values \[41\]"):
        read_prediction(tmp_path, "d", "nyu", shape=(2, 2), num_classes=40, depth=False)
    with pytest.raises(SOSDError, match="cannot be written"):
        write_prediction(tmp_path, "e", None, np.array([[255, 300]]), "nyu")


@pytest.mark.parametrize("bad", ["", "../x", "/abs", "a/../b", "a\\b", "dir/"])
def test_bad_sample_ids_are_rejected(tmp_path, bad):
    with pytest.raises(SOSDError, match="sample id"):
        write_prediction(tmp_path, bad, np.ones((1, 1)), None, "nyu")
