"""The documented folder layout for users' own data (sosd.data.folder).

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/data/test_folder.py -q
"""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sosd.data.folder import FolderDataset
from sosd.errors import DataError

H, W = 30, 40


def arrays(k):
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([xx * 6, yy * 8, np.full_like(xx, 50 * k)], -1).astype(np.uint8)
    mm = (1000 + 10 * xx + 100 * k).astype(np.uint16)
    mm[:, :3] = 0
    lab = ((xx // 10) % 3).astype(np.uint8)
    lab[0] = 255
    return rgb, mm, lab


def write_folder(root: Path, names=("a", "b"), split="train", classes=("wall", "floor", "table"),
                 intrinsics=None):
    for sub in ("images", "depth", "labels"):
        (root / split / sub).mkdir(parents=True, exist_ok=True)
    for k, n in enumerate(names):
        rgb, mm, lab = arrays(k)
        Image.fromarray(rgb).save(root / split / "images" / f"{n}.png")
        Image.fromarray(mm).save(root / split / "depth" / f"{n}.png")
        Image.fromarray(lab).save(root / split / "labels" / f"{n}.png")
    if classes:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    if intrinsics:
        (root / "intrinsics.json").write_text(json.dumps(intrinsics))
    return root


def test_values(tmp_path):
    root = write_folder(tmp_path, intrinsics={"fx": 50.0, "fy": 51.0, "cx": 19.5, "cy": 14.5})
    ds = FolderDataset(root, "train")
    assert len(ds) == 2 and ds.num_classes == 3 and ds.class_names == ["wall", "floor", "table"]
    s = ds.sample(1)
    rgb, mm, lab = arrays(1)
    assert s.id == "b" and np.array_equal(s.image, rgb)
    assert np.allclose(s.target, mm / 1000.0) and np.array_equal(s.valid, mm > 0)
    assert np.array_equal(s.labels, lab.astype(np.int64))
    assert np.allclose(s.intrinsics, [50, 51, 19.5, 14.5]) and s.extras["intrinsics_source"] == "file"
    # per-image intrinsics win; resizing scales them
    (root / "train" / "intrinsics").mkdir()
    k = {"fx": 80, "fy": 80, "cx": 20, "cy": 15}
    (root / "train" / "intrinsics" / "b.json").write_text(json.dumps(k))
    r = FolderDataset(root, "train", height=15, width=20).sample(1)
    assert r.image.shape == (15, 20, 3) and r.intrinsics[0] == pytest.approx(40.0)
    assert set(np.unique(r.target)) <= set(np.unique(s.target))


def test_no_classes_txt_no_intrinsics_and_palette_labels(tmp_path):
    root = write_folder(tmp_path, classes=None)
    rgb, mm, lab = arrays(0)
    pal = Image.fromarray(lab, mode="L").convert("P")  # palette PNG: pixel indices are the ids
    pal.putpalette([(i * 37) % 256 for i in range(768)])
    pal.save(root / "train" / "labels" / "a.png")
    assert Image.open(root / "train" / "labels" / "a.png").mode == "P"
    ds = FolderDataset(root, "train")
    assert ds.num_classes == 3 and ds.class_names == ["class_0", "class_1", "class_2"]
    s = ds.sample(0)
    assert np.array_equal(s.labels, lab.astype(np.int64))
    assert s.extras["intrinsics_source"] == "guess" and s.intrinsics[0] == W
    assert FolderDataset(root, "train", num_classes=5).num_classes == 5


def test_depth_only_folder(tmp_path):
    root = write_folder(tmp_path)
    for p in (root / "train" / "labels").iterdir():
        p.unlink()
    (root / "train" / "labels").rmdir()
    s = FolderDataset(root, "train").sample(0)
    assert np.all(s.labels == 255) and s.valid.any()


def test_errors_name_the_path(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "nope")):
        FolderDataset(tmp_path / "nope")
    root = write_folder(tmp_path / "r")
    with pytest.raises(DataError, match=r"r/val: folder not found"):
        FolderDataset(root, "val")
    (root / "train" / "depth" / "b.png").unlink()
    with pytest.raises(DataError, match=r"depth/b.png: file not found"):
        FolderDataset(root)
    root = write_folder(tmp_path / "s")
    rgb, mm, lab = arrays(0)
    Image.fromarray((mm // 10).astype(np.uint8)).save(root / "train" / "depth" / "a.png")  # 8-bit depth
    with pytest.raises(DataError, match=r"depth/a.png: image mode L \(expected a 16-bit"):
        FolderDataset(root).sample(0)
    Image.fromarray(mm[:, :-1]).save(root / "train" / "depth" / "a.png")
    with pytest.raises(DataError, match=r"depth/a.png: depth is 30x39 \(HxW\) but its image is 30x40"):
        FolderDataset(root).sample(0)
    lab[5, 5] = 7
    Image.fromarray(lab).save(root / "train" / "labels" / "b.png")
    with pytest.raises(DataError, match=r"labels/b.png: label ids \[7\] outside the class table 0..2"):
        FolderDataset(root).sample(1)
    Image.fromarray(rgb).save(root / "train" / "labels" / "b.png")  # RGB label image
    with pytest.raises(DataError, match=r"labels/b.png: image mode RGB"):
        FolderDataset(root).sample(1)
    (root / "train" / "images" / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"images/a.png: cannot read as an image"):
        FolderDataset(root).sample(0)
    (root / "intrinsics.json").write_text('{"fx": 1}')
    with pytest.raises(DataError, match=r"intrinsics.json: cannot read intrinsics"):
        FolderDataset(root)
