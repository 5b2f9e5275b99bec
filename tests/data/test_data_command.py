"""`sosd data show` and `sosd data check` (sosd.data.command) on the real NYU excerpt and written fixtures.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/data/test_data_command.py -q
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("h5py")
pytest.importorskip("scipy")

sys.path.insert(0, str(Path(__file__).parent))
from test_cityscapes import label_ids, write_cityscapes  # noqa: E402
from test_folder import arrays, write_folder  # noqa: E402

from sosd.cli import main  # noqa: E402

MAT = Path(__file__).parent / "nyuv2" / "nyu_depth_v2_labeled_excerpt_0001.mat"


@pytest.fixture(scope="module")
def cs_root(tmp_path_factory):
    return write_cityscapes(tmp_path_factory.mktemp("cs"), splits=("train",))


def _png(path):
    im = Image.open(path)
    im.load()
    return np.asarray(im.convert("RGB"))


def test_show_nyu_excerpt(tmp_path, capsys):
    out = tmp_path / "nyu.png"
    rc = main(["data", "show", "--dataset", "nyuv2", "--root", str(MAT), "--split", "all", "-n", "6",
               "--out", str(out)])
    assert rc == 0 and out.is_file()
    a = _png(out)
    assert a.shape[1] > a.shape[0] > 100  # one row of three panels
    assert a.std() > 10  # not blank
    assert "1 samples" in capsys.readouterr().out


def test_show_cityscapes_fixture(tmp_path, cs_root):
    out = tmp_path / "cs.png"
    rc = main(["data", "show", "--dataset", "cityscapes", "--root", str(cs_root), "--split", "train",
               "-n", "2", "--out", str(out)])
    assert rc == 0
    a = _png(out)
    assert a.shape[0] > 200 and a.shape[1] > 600 and a.std() > 10


def test_check_clean_datasets(capsys, cs_root):
    assert main(["data", "check", "--dataset", "nyuv2", "--root", str(MAT), "--split", "all"]) == 0
    out = capsys.readouterr().out
    assert "1 samples checked, 1 without problems" in out and "480x640 (1)" in out
    assert "depth: 1.799 .. 3.616 m" in out and "invalid depth pixels: 0.00 %" in out
    assert "wall" in out and "no problems found" in out
    assert main(["data", "check", "--dataset", "nyuv2", "--root", str(MAT), "--split", "all",
                 "--depth", "rawDepths", "--classes", "13"]) == 0
    assert "invalid depth pixels: 23.91 %" in capsys.readouterr().out
    assert main(["data", "check", "--dataset", "cityscapes", "--root", str(cs_root), "--split", "train"]) == 0
    out = capsys.readouterr().out
    assert "1024x2048 (3)" in out and "disparity: 0.000 .. 40.000 px" in out and "road" in out


def test_check_finds_planted_problems(tmp_path, capsys):
    root = write_folder(tmp_path / "f", names=("a", "b", "c"))
    rgb, mm, lab = arrays(0)
    lab[3, 3] = 9  # a label id outside the 3-class table
    Image.fromarray(lab).save(root / "train" / "labels" / "b.png")
    Image.fromarray(mm[:-2]).save(root / "train" / "depth" / "c.png")  # wrong size
    rc = main(["data", "check", "--dataset", "folder", "--root", str(root)])
    cap = capsys.readouterr()
    assert rc == 1
    assert "2 problem(s)" in cap.err
    assert str(root / "train" / "labels" / "b.png") in cap.err and "label ids [9]" in cap.err
    assert str(root / "train" / "depth" / "c.png") in cap.err and "28x40" in cap.err
    assert "3 samples checked, 1 without problems" in cap.out


def test_check_cityscapes_bad_label(tmp_path, capsys):
    root = write_cityscapes(tmp_path / "cs", splits=("val",))
    lab = label_ids()
    lab[0, 0] = 77
    p = root / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"
    Image.fromarray(lab).save(p)
    assert main(["data", "check", "--dataset", "cityscapes", "--root", str(root), "--split", "val"]) == 1
    err = capsys.readouterr().err
    assert str(p) in err and "[77]" in err


def test_missing_root_is_an_error_naming_it(tmp_path, capsys):
    rc = main(["data", "check", "--dataset", "folder", "--root", str(tmp_path / "missing")])
    assert rc == 2 and str(tmp_path / "missing") in capsys.readouterr().err
    rc = main(["data", "show", "--dataset", "nyuv2", "--root", str(MAT), "--split", "test", "--out",
               str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "image #2" in err and not (tmp_path / "x.png").exists()
