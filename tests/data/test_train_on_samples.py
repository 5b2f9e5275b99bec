"""The paper's NYU and Cityscapes configs train a few steps on real sample files.

Run: .venv/bin/python -m pytest tests/data/test_train_on_samples.py -q

NYU: the one-image excerpt of the official labelled .mat (tests/data/nyuv2, real pixels of NYU #1) at the
paper's 480x640 with the paper's augmentation. Cityscapes: frames the tests write in the official layout
(the terms forbid shipping the data), read at the paper's 256x512. Only the backbone is made small and the
step count tiny, so the test stays CPU-sized; everything else is the shipped config.
"""
import json
from pathlib import Path

import pytest

from sosd.config import load_config
from sosd.train.loop import fit
from tests.data.test_cityscapes import write_cityscapes

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["model.backbone=xception_small", "model.pretrained=", "model.aspp_channels=16", "model.decoder_channels=16",
         "model.refined_channels=8", "train.steps=2", "train.batch_size=2", "data.num_workers=0",
         "train.val_every=0", "train.ckpt_every=0", "train.threads=1"]


@pytest.mark.parametrize("row", ["esosd", "mtl"])
def test_nyu_paper_config_trains_on_the_real_excerpt(tmp_path, row):
    mat = ROOT / "tests/data/nyuv2/nyu_depth_v2_labeled_excerpt_0001.mat"
    cfg = load_config(ROOT / f"configs/nyuv2/{row}.yaml", SMALL + [
        f"data.root={mat}", "data.train_split=all", "data.val_split=all", "train.batch_size=1",
        f"train.out_dir={tmp_path}", "train.name=nyu"])
    assert cfg.data.augment and cfg.data.height == 480 and cfg.model.num_classes == 40
    fit(cfg, progress=False)
    m = json.loads((tmp_path / "nyu" / "metrics.json").read_text())
    assert m["steps"] == 2 and m["metrics"]["n_valid_pixels"] == 480 * 640  # #1's inpainted depth: no holes
    assert 0.1 < m["metrics"]["rel"] < 10


def test_cityscapes_paper_config_trains_on_official_layout_frames(tmp_path):
    write_cityscapes(tmp_path / "cs")
    cfg = load_config(ROOT / "configs/cityscapes/esosd.yaml", SMALL + [
        f"data.root={tmp_path / 'cs'}", f"train.out_dir={tmp_path}", "train.name=cs"])
    assert (cfg.data.height, cfg.data.width, cfg.model.num_classes) == (256, 512, 19)
    fit(cfg, progress=False)
    m = json.loads((tmp_path / "cs" / "metrics.json").read_text())
    assert m["steps"] == 2 and m["metrics"]["disparity_mae_px"] >= 0 and m["metrics"]["n_images"] >= 1
