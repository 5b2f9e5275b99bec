"""NYU Depth v2 in MTAN's .npy folders and in the NYUD_MT (ASTMT) layout (sosd.data.nyu_folders).

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/data/test_nyu_folders.py -q
No sample of either release is public: the fixtures below are written in their layouts (MTAN: lorenmt/mtan
im2im_pred/create_dataset.py; NYUD_MT: the ASTMT / Multi-Task-Learning-PyTorch loader data/nyud.py).
"""
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("scipy")

from sosd.data.nyu import NYU_INTRINSICS  # noqa: E402
from sosd.data.nyu_folders import NYUDMT, NYUv2MTAN  # noqa: E402
from sosd.errors import DataError  # noqa: E402

MH, MW = 288, 384


def mtan_arrays(k):
    yy, xx = np.mgrid[0:MH, 0:MW]
    image = np.stack([xx / (MW - 1), yy / (MH - 1), np.full(xx.shape, k / 10)], -1).astype(np.float32)
    label = ((xx // 32) % 13).astype(np.float32)
    label[:10] = -1
    depth = (1.0 + yy / 100.0 + k).astype(np.float32)[..., None]
    depth[:, :5] = 0
    return image, label, depth


def write_mtan(root: Path, n_train=2, n_val=1):
    for folder, n in (("train", n_train), ("val", n_val)):
        for sub in ("image", "label", "depth", "normal"):
            (root / folder / sub).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            image, label, depth = mtan_arrays(k)
            np.save(root / folder / "image" / f"{k}.npy", image)
            np.save(root / folder / "label" / f"{k}.npy", label)
            np.save(root / folder / "depth" / f"{k}.npy", depth)
            np.save(root / folder / "normal" / f"{k}.npy", np.zeros((MH, MW, 3), np.float32))
    return root


def test_mtan_values(tmp_path):
    root = write_mtan(tmp_path)
    ds = NYUv2MTAN(root, split="train")
    assert len(ds) == 2 and ds.num_classes == 13 and ds.class_names[0] == "bed"
    s = ds.sample(1)
    image, label, depth = mtan_arrays(1)
    assert s.id == "train/1" and s.image.shape == (MH, MW, 3) and s.image.dtype == np.uint8
    assert np.array_equal(s.image, np.round(image * 255).astype(np.uint8))
    assert np.array_equal(s.labels, np.where(label == -1, 255, label).astype(np.int64))
    assert np.array_equal(s.target, depth[..., 0]) and np.array_equal(s.valid, depth[..., 0] > 0)
    assert not s.valid[:, :5].any()
    assert np.allclose(s.intrinsics[:2], np.array(NYU_INTRINSICS[:2]) * 0.6)
    t = NYUv2MTAN(root, split="test")  # the test split is MTAN's val/ folder
    assert len(t) == 1 and t.sample(0).id == "val/0"
    # 2-D depth files are accepted too
    np.save(root / "val" / "depth" / "0.npy", mtan_arrays(0)[2][..., 0])
    assert np.array_equal(NYUv2MTAN(root, split="val").sample(0).target, mtan_arrays(0)[2][..., 0])


def test_mtan_errors(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "x")):
        NYUv2MTAN(tmp_path / "x")
    root = write_mtan(tmp_path / "m", n_train=3)
    (root / "train" / "image" / "1.npy").unlink()
    with pytest.raises(DataError, match=r"train/image/1.npy: file not found"):
        NYUv2MTAN(root)
    root = write_mtan(tmp_path / "m2")
    (root / "train" / "depth" / "1.npy").unlink()
    with pytest.raises(DataError, match=r"train/depth/1.npy: file not found"):
        NYUv2MTAN(root)
    root = write_mtan(tmp_path / "m3")
    image, label, depth = mtan_arrays(0)
    label[3, 3] = 13
    np.save(root / "train" / "label" / "0.npy", label)
    with pytest.raises(DataError, match=r"label/0.npy: label ids \[13\] outside"):
        NYUv2MTAN(root).sample(0)
    np.save(root / "train" / "image" / "1.npy", image * 255)
    with pytest.raises(DataError, match=r"image/1.npy: values in .*expected a float image in \[0, 1\]"):
        NYUv2MTAN(root).sample(1)
    depth[0, 0] = np.inf
    np.save(root / "val" / "depth" / "0.npy", depth)
    with pytest.raises(DataError, match=r"val/depth/0.npy: 1 NaN/inf"):
        NYUv2MTAN(root, split="test").sample(0)
    (root / "val" / "label" / "0.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"val/label/0.npy: cannot read"):
        NYUv2MTAN(root, split="test").sample(0)


# ---------------------------------------------------------------------------------------------- NYUD_MT

DH, DW = 48, 64


def nyudmt_arrays(k):
    yy, xx = np.mgrid[0:DH, 0:DW]
    rgb = np.stack([xx * 4, yy * 5, np.full_like(xx, 30 * k)], -1).astype(np.uint8)
    seg = (xx % 41).astype(np.uint8)  # 0 (void) .. 40
    depth = (0.5 + xx / 10.0 + k).astype(np.float32)
    depth[0, :] = 0
    return rgb, seg, depth


def write_nyudmt(root: Path, ids=("0001", "0002", "0003"), sets={"train": ["0002", "0003"], "val": ["0001"]}):
    for sub in ("images", "segmentation", "depth", "edge", "normals"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for k, i in enumerate(ids):
        rgb, seg, depth = nyudmt_arrays(k)
        Image.fromarray(rgb).save(root / "images" / f"{i}.jpg", quality=98)
        Image.fromarray(seg).save(root / "segmentation" / f"{i}.png")
        np.save(root / "depth" / f"{i}.npy", depth)
    if sets:
        (root / "gt_sets").mkdir(exist_ok=True)
        for name, lst in sets.items():
            (root / "gt_sets" / f"{name}.txt").write_text("\n".join(lst) + "\n")
    return root


def test_nyudmt_values(tmp_path):
    root = write_nyudmt(tmp_path)
    ds = NYUDMT(root, split="train")
    assert [ds.sample(i).id for i in range(len(ds))] == ["0002", "0003"]
    assert ds.num_classes == 40 and ds.class_names[0] == "wall"
    s = ds.sample(0)
    rgb, seg, depth = nyudmt_arrays(1)
    assert np.abs(s.image.astype(int) - rgb).mean() < 3  # JPEG
    # ASTMT convention: 0 = void -> 255, c -> c - 1
    assert np.array_equal(s.labels, np.where(seg == 0, 255, seg.astype(np.int64) - 1))
    assert set(np.unique(s.labels)) == set(range(40)) | {255}
    assert np.array_equal(s.target, depth) and np.array_equal(s.valid, depth > 0)
    assert np.allclose(s.intrinsics[0], NYU_INTRINSICS[0] * DW / 640)
    t = NYUDMT(root, split="test")  # NYUD_MT's val = the official test images
    assert len(t) == 1 and t.sample(0).id == "0001"
    r = NYUDMT(root, split="train", height=24, width=32).sample(0)
    assert r.image.shape == (24, 32, 3) and set(np.unique(r.labels)) <= set(np.unique(s.labels))


def test_nyudmt_label_zero_class_and_no_gt_sets(tmp_path):
    root = write_nyudmt(tmp_path, sets=None)
    with pytest.warns(UserWarning, match="gt_sets"):
        ds = NYUDMT(root, split="train", label_zero="class")
    assert len(ds) == 3
    with pytest.raises(DataError, match=r"segmentation/0001.png: label ids \[40\] outside"):
        ds.sample(0)  # 'class' mode expects 0..39 and 255
    seg = np.where(nyudmt_arrays(0)[1] == 40, 255, nyudmt_arrays(0)[1]).astype(np.uint8)
    Image.fromarray(seg).save(root / "segmentation" / "0001.png")
    assert np.array_equal(ds.sample(0).labels, seg.astype(np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="label_zero"):
            NYUDMT(root, label_zero="zero")


def test_nyudmt_errors(tmp_path):
    with pytest.raises(DataError, match="segmentation"):
        (tmp_path / "a" / "images").mkdir(parents=True)
        NYUDMT(tmp_path / "a")
    root = write_nyudmt(tmp_path / "b")
    (root / "depth" / "0003.npy").unlink()
    with pytest.raises(DataError, match=r"depth/0003.npy: file not found"):
        NYUDMT(root, split="train")
    with pytest.raises(DataError, match=r"gt_sets/trainval.txt: file not found"):
        NYUDMT(root, split="trainval")
    Image.fromarray(np.zeros((DH, DW + 1), np.uint8)).save(root / "segmentation" / "0001.png")
    with pytest.raises(DataError, match=r"segmentation/0001.png: segmentation is 48x65"):
        NYUDMT(root, split="val").sample(0)
