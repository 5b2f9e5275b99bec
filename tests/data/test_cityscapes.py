"""Cityscapes in the official layout (sosd.data.cityscapes), on fixtures this file writes at 2048x1024.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/data/test_cityscapes.py -q
(The Cityscapes terms forbid redistributing the data, so the fixtures are synthetic files in the exact
release layout: leftImg8bit/, gtFine/*_labelIds.png, disparity/ uint16, camera/ json.)
"""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sosd.data.cityscapes import LABEL_TO_TRAIN, Cityscapes, label_lut
from sosd.errors import DataError

CAM = {"extrinsic": {"baseline": 0.209313, "pitch": 0.038, "roll": 0.0, "x": 1.7, "y": 0.1, "yaw": -0.0195,
                     "z": 1.18}, "intrinsic": {"fx": 2262.52, "fy": 2265.30, "u0": 1096.98, "v0": 513.137}}
FRAMES = {"train": [("aachen", "000000", "000019"), ("aachen", "000001", "000019"),
                    ("bochum", "000000", "001097")],
          "val": [("frankfurt", "000000", "000294")]}
H, W = 1024, 2048


def label_ids():
    """Blocks 48 px wide cycling through label ids 0..33 (so every id is present, 12 px wide at 512)."""
    return np.broadcast_to(((np.arange(W) // 48) % 34).astype(np.uint8)[None, :], (H, W)).copy()


def disparity_png():
    """rows 0..255 p=0 (invalid), 256..511 p=1 (disparity 0), 512..767 d=40 px, 768.. d=12.5 px."""
    p = np.zeros((H, W), np.uint16)
    p[256:512] = 1
    p[512:768] = 1 + 256 * 40
    p[768:] = 1 + int(256 * 12.5)
    return p


def write_cityscapes(root: Path, splits=("train", "val"), skip=()):
    root = Path(root)
    yy, xx = np.mgrid[0:H, 0:W]
    for split in splits:
        for k, (city, seq, frame) in enumerate(FRAMES[split]):
            stem = f"{city}_{seq}_{frame}"
            img = np.stack([(xx // 8) % 256, (yy // 4) % 256, np.full_like(xx, 40 * k)], -1).astype(np.uint8)
            def png(a):
                return lambda p: Image.fromarray(a).save(p, compress_level=1)

            files = {
                ("leftImg8bit", "_leftImg8bit.png"): png(img),
                ("gtFine", "_gtFine_labelIds.png"): png(label_ids()),
                ("disparity", "_disparity.png"): png(disparity_png()),
                ("camera", "_camera.json"): lambda p: p.write_text(json.dumps(CAM)),
            }
            for (folder, suffix), write in files.items():
                if (folder, stem) in skip:
                    continue
                d = root / folder / split / city
                d.mkdir(parents=True, exist_ok=True)
                write(d / f"{stem}{suffix}")
    return root


@pytest.fixture(scope="module")
def cs_root(tmp_path_factory):
    return write_cityscapes(tmp_path_factory.mktemp("cityscapes"))


def test_fixture_is_official_shape(cs_root):
    p = cs_root / "disparity/train/aachen/aachen_000000_000019_disparity.png"
    im = Image.open(p)
    assert im.size == (2048, 1024) and np.array(im).dtype in (np.uint16, np.int32)


def test_ids_splits_and_order(cs_root):
    ds = Cityscapes(cs_root, split="train")
    assert len(ds) == 3 and ds.num_classes == 19 and ds.class_names[0] == "road"
    assert [ds.sample(i).id for i in range(3)] == ["aachen/aachen_000000_000019",
                                                   "aachen/aachen_000001_000019",
                                                   "bochum/bochum_000000_001097"]
    assert Cityscapes(cs_root, split="val").sample(0).id == "frankfurt/frankfurt_000000_000294"


def test_train_ids_and_paper_resize(cs_root):
    s = Cityscapes(cs_root, split="train").sample(0)  # default 256x512, disparity
    assert s.image.shape == (256, 512, 3) and s.labels.shape == (256, 512) and s.target_kind == "disparity"
    ids_512 = (np.arange(512) // 12) % 34  # label blocks are 48 px at 2048 -> 12 px at 512
    expect = np.array([LABEL_TO_TRAIN[i] for i in ids_512])
    assert np.array_equal(s.labels, np.broadcast_to(expect, (256, 512)))
    assert s.labels[0, 7 * 12] == 0 and s.labels[0, 26 * 12] == 13 and s.labels[0, 0] == 255  # road, car
    assert set(np.unique(s.labels)) == set(range(19)) | {255}


def test_disparity_rescaled_with_width(cs_root):
    s = Cityscapes(cs_root, split="train").sample(1)
    # (p - 1) / 256 px at 2048, divided by 4 at 512
    assert not s.valid[:64].any() and np.all(s.target[:64] == 0)  # p = 0
    assert s.valid[64:].all()
    assert np.all(s.target[64:128] == 0)  # p = 1: disparity 0 (valid measurement of "far")
    assert np.allclose(s.target[128:192], 10.0) and np.allclose(s.target[192:], 12.5 / 4)
    full = Cityscapes(cs_root, split="train", height=None, width=None).sample(1)
    assert full.image.shape == (1024, 2048, 3)
    assert np.allclose(full.target[512:768], 40.0) and np.allclose(full.target[768:], 12.5)
    assert np.allclose(full.intrinsics, [2262.52, 2265.30, 1096.98, 513.137])
    assert s.intrinsics[0] == pytest.approx(2262.52 / 4) and s.intrinsics[1] == pytest.approx(2265.30 / 4)
    assert s.intrinsics[2] == pytest.approx((1096.98 + 0.5) / 4 - 0.5)


def test_metric_depth_from_camera(cs_root):
    s = Cityscapes(cs_root, split="val", target="depth").sample(0)
    assert s.target_kind == "depth"
    bf = 0.209313 * 2262.52
    assert not s.valid[:128].any()  # p = 0 and p = 1 have no metric depth
    assert np.allclose(s.target[128:192], bf / 40.0, rtol=1e-6)  # unchanged by the resize
    assert np.allclose(s.target[192:], bf / 12.5, rtol=1e-6)
    assert s.extras["baseline"] == pytest.approx(0.209313)


def test_table_matches_cityscapesscripts():
    labels = pytest.importorskip("cityscapesscripts.helpers.labels")
    ref = {l.id: (l.trainId if 0 <= l.trainId < 19 else 255) for l in labels.labels if l.id >= 0}
    assert ref == LABEL_TO_TRAIN
    lut = label_lut()
    assert lut[34:].tolist() == [255] * (256 - 34)
    train = sorted((l for l in labels.labels if 0 <= l.trainId < 19), key=lambda l: l.trainId)
    names = [l.name for l in train]
    assert names == Cityscapes.class_names


def test_errors_name_the_path(tmp_path, cs_root):
    with pytest.raises(DataError, match=str(tmp_path / "none")):
        Cityscapes(tmp_path / "none")
    with pytest.raises(DataError, match="leftImg8bit/test"):
        Cityscapes(cs_root, split="test")
    with pytest.raises(DataError, match="split"):
        Cityscapes(cs_root, split="training")
    root = write_cityscapes(tmp_path / "cs", splits=("val",),
                            skip={("disparity", "frankfurt_000000_000294")})
    with pytest.raises(DataError, match=r"frankfurt_000000_000294_disparity.png: file not found"):
        Cityscapes(root, split="val")
    # malformed: an 8-bit disparity PNG, a broken camera.json, an out-of-table label id
    root = write_cityscapes(tmp_path / "cs2", splits=("val",))
    stem = root / "{}/val/frankfurt/frankfurt_000000_000294"
    Image.fromarray(np.zeros((H, W), np.uint8)).save(str(stem).format("disparity") + "_disparity.png")
    with pytest.raises(DataError, match=r"_disparity.png: image mode L \(expected a 16-bit"):
        Cityscapes(root, split="val").sample(0)
    Image.fromarray(disparity_png()).save(str(stem).format("disparity") + "_disparity.png")
    Path(str(stem).format("camera") + "_camera.json").write_text("{\"intrinsic\": {}}")
    with pytest.raises(DataError, match=r"_camera.json: cannot read camera"):
        Cityscapes(root, split="val", target="depth").sample(0)
    lab = label_ids()
    lab[5, 5] = 40
    Image.fromarray(lab).save(str(stem).format("gtFine") + "_gtFine_labelIds.png")
    with pytest.raises(DataError, match=r"_labelIds.png: label ids \[40\]"):
        Cityscapes(root, split="val").sample(0)
