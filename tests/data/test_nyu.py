"""NYU Depth v2 from the official .mat layout (sosd.data.nyu), on the real image #1 and written fixtures.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/data/test_nyu.py -q
Data: tests/data/nyuv2/ (real files, see PROVENANCE.md there).
"""
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

h5py = pytest.importorskip("h5py")
pytest.importorskip("scipy")

from sosd.data.nyu import NYU_INTRINSICS, NYUDepthV2, load_class_mapping, load_splits  # noqa: E402
from sosd.errors import DataError  # noqa: E402

DATA = Path(__file__).parent / "nyuv2"
MAT = DATA / "nyu_depth_v2_labeled_excerpt_0001.mat"
REF = DATA / "labeled_0001"


@pytest.fixture(scope="module")
def s40():
    return NYUDepthV2(MAT, split="all").sample(0)


def test_image_matches_rgb_jpg_not_transposed(s40):
    rgb = np.array(Image.open(REF / "rgb.jpg"))
    assert s40.image.shape == (480, 640, 3) and s40.image.dtype == np.uint8
    assert np.abs(s40.image.astype(np.int16) - rgb).mean() < 3.0  # JPEG error at most
    assert s40.id == "0001" and s40.index == 0 and s40.target_kind == "depth"


def test_depth_equals_depth_npy(s40):
    ref = np.load(REF / "depth.npy")
    assert np.array_equal(s40.target, ref)
    assert s40.valid.all()  # the inpainted depth has no holes
    assert 1.79 < s40.target.min() < 1.81 and 3.61 < s40.target.max() < 3.63


def test_raw_depth_equals_png_with_holes():
    s = NYUDepthV2(MAT, split="all", depth="rawDepths").sample(0)
    raw = np.array(Image.open(REF / "rawdepth_0.1mm.png"))
    assert raw.dtype == np.uint16
    assert np.allclose(s.target, raw / 10000.0, atol=1e-6)
    assert np.array_equal(s.valid, raw > 0)
    assert 0.23 < 1 - s.valid.mean() < 0.25
    assert np.all(s.target[~s.valid] == 0)


def test_labels_40_and_13(s40):
    l40 = np.array(Image.open(REF / "label40.png"))
    assert set(np.unique(l40).tolist()) == {0, 1, 2, 3, 5, 7, 12, 22, 24, 26, 38, 39, 40}
    assert s40.labels.dtype == np.int64
    assert np.array_equal(s40.labels, np.where(l40 == 0, 255, l40.astype(np.int64) - 1))
    s13 = NYUDepthV2(MAT, split="all", classes=13).sample(0)
    l13 = np.array(Image.open(REF / "label13.png"))
    assert np.array_equal(s13.labels, np.where(l13 == 0, 255, l13.astype(np.int64) - 1))
    # and the 13-class table applied to label40 directly reproduces label13
    m = load_class_mapping()
    assert np.array_equal(m["map13"][l40], l13)


def test_class_tables():
    ds = NYUDepthV2(MAT, split="all")
    assert ds.num_classes == 40 and len(ds.class_names) == 40
    assert ds.class_names[:3] == ["wall", "floor", "cabinet"] and ds.class_names[-1] == "otherprop"
    assert "refridgerator" in ds.class_names
    d13 = NYUDepthV2(MAT, split="all", classes=13)
    assert d13.num_classes == 13 and d13.class_names[0] == "bed" and d13.class_names[-1] == "window"


def test_intrinsics_and_resize(s40):
    assert np.allclose(s40.intrinsics, NYU_INTRINSICS)
    r = NYUDepthV2(MAT, split="all", height=240, width=320).sample(0)
    assert r.image.shape == (240, 320, 3) and r.labels.shape == (240, 320)
    assert r.intrinsics[0] == pytest.approx(518.8579 / 2, rel=1e-6)
    assert r.intrinsics[2] == pytest.approx((325.5824 + 0.5) / 2 - 0.5, rel=1e-6)
    assert set(np.unique(r.labels)) <= set(np.unique(s40.labels))  # nearest: no new ids
    assert np.all(np.isin(r.target, s40.target))  # nearest: no blended depths


def test_official_splits():
    sp = load_splits()
    tr, te = sp["train"], sp["test"]
    assert tr.size == 795 and te.size == 654
    assert not set(tr.tolist()) & set(te.tolist())
    assert sorted(tr.tolist() + te.tolist()) == list(range(1, 1450))  # 1-based, covering 1..1449
    assert 1 in te.tolist()


def test_split_beyond_file_is_a_clear_error():
    with pytest.raises(DataError) as e:
        NYUDepthV2(MAT, split="test")
    msg = str(e.value)
    assert str(MAT) in msg and "image #2" in msg and "holds only 1 image" in msg
    with pytest.raises(DataError, match=r"image #5 .*holds only 1"):
        NYUDepthV2(MAT, indices=[1, 5])
    assert len(NYUDepthV2(MAT, indices=[1])) == 1
    with pytest.raises(DataError, match="split"):
        NYUDepthV2(MAT, split="val")


def test_root_folder_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="nyu_depth_v2_labeled.mat"):
        NYUDepthV2(tmp_path, split="all")
    with pytest.raises(DataError, match=str(tmp_path / "nope.mat")):
        NYUDepthV2(tmp_path / "nope.mat", split="all")
    bad = tmp_path / "nyu_depth_v2_labeled.mat"
    bad.write_text("not a mat file")
    with pytest.raises(DataError, match="HDF5"):
        NYUDepthV2(tmp_path, split="all")
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((1, 3, 4, 3), np.uint8)
    with pytest.raises(DataError, match="'labels' missing"):
        NYUDepthV2(bad, split="all")
    with pytest.raises(DataError, match="splits.mat"):
        NYUDepthV2(MAT, split="train", splits_path=tmp_path / "splits.mat")
    with pytest.raises(DataError, match="classMapping40.mat"):
        NYUDepthV2(MAT, split="all", mapping_dir=tmp_path)


def _write_official(path, images, depths, raw, labels):
    """Write (N, H, W, ...) arrays the way MATLAB v7.3 stores H x W x 3 x N (h5py sees them reversed)."""
    with h5py.File(path, "w") as f:
        f["images"] = np.ascontiguousarray(images.transpose(0, 3, 2, 1))  # N x 3 x W x H
        f["depths"] = np.ascontiguousarray(depths.transpose(0, 2, 1)).astype(np.float32)
        f["rawDepths"] = np.ascontiguousarray(raw.transpose(0, 2, 1)).astype(np.float32)
        f["labels"] = np.ascontiguousarray(labels.transpose(0, 2, 1)).astype(np.uint16)


def test_non_square_fixture_catches_transpose(tmp_path):
    n, h, w = 3, 6, 10
    yy, xx = np.mgrid[0:h, 0:w]
    images = np.stack([np.stack([yy * 20 + k, xx * 10 + k, (yy * w + xx) % 256], -1) for k in range(n)])
    images = images.astype(np.uint8)
    depths = np.stack([1.0 + yy * 0.1 + xx * 0.01 + k for k in range(n)]).astype(np.float32)
    raw = depths.copy()
    raw[:, 0, :] = 0  # first row: holes
    m = load_class_mapping()
    wall_raw = int(np.flatnonzero(m["map40"] == 1)[-1])  # a raw id that maps to class 1 (wall)
    floor_raw = int(np.flatnonzero(m["map40"] == 2)[0])  # ... and to class 2 (floor)
    labels = np.zeros((n, h, w), np.int64)
    labels[:, :, : w // 2] = wall_raw
    labels[:, h - 1, :] = floor_raw  # last row: floor
    labels[:, 0, 0] = 0
    p = tmp_path / "nyu_depth_v2_labeled.mat"
    _write_official(p, images, depths, raw, labels)
    ds = NYUDepthV2(tmp_path, split="all", height=None, width=None)
    assert len(ds) == 3
    for k in range(n):
        s = ds.sample(k)
        assert s.id == f"{k + 1:04d}"
        assert s.image.shape == (h, w, 3) and np.array_equal(s.image, images[k])
        assert np.array_equal(s.target, depths[k])
        assert s.labels[0, 0] == 255 and s.labels[1, 0] == 0 and s.labels[1, w - 1] == 255
        assert np.all(s.labels[h - 1, 1:] == 1)
    r = NYUDepthV2(tmp_path, split="all", depth="rawDepths", height=0, width=0).sample(2)
    assert not r.valid[0].any() and r.valid[1:].all()
    # intrinsics of a file at another size: NYU's scaled
    assert s.intrinsics[0] == pytest.approx(518.8579 * w / 640, rel=1e-6)
    # explicit indices, splits override
    import scipy.io
    scipy.io.savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[3], [1]], np.uint16),
                                               "testNdxs": np.array([[2]], np.uint16)})
    tr = NYUDepthV2(p, split="train", splits_path=tmp_path / "splits.mat", height=None, width=None)
    assert [tr.sample(i).id for i in range(len(tr))] == ["0001", "0003"]
    # NaN depth is a malformed file, named with the image index
    depths[1, 2, 3] = np.nan
    p2 = tmp_path / "nan.mat"
    _write_official(p2, images, depths, raw, labels)
    with pytest.raises(DataError, match=r"nan.mat image #2.*NaN"):
        NYUDepthV2(p2, split="all", height=None, width=None).sample(1)


def test_lazy_handle_not_pickled_and_worker_safe():
    ds = NYUDepthV2(MAT, split="all")
    assert ds._h5 is None  # construction reads the header and closes the file
    a = ds.sample(0)
    assert ds._h5 is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._h5 is None
    assert np.array_equal(clone.sample(0).image, a.image)
    import torch

    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=1,
                                         multiprocessing_context="fork")
    batch = next(iter(loader))
    assert batch["image"].shape == (1, 3, 480, 640)
    assert torch.allclose(batch["target"][0, 0], torch.from_numpy(a.target))
    ds.close()
