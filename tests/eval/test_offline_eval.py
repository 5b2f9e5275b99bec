"""Offline evaluation of prediction files (sosd.eval.offline) and the `sosd eval` command.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/eval/test_offline_eval.py
"""
import importlib.util
import json

import numpy as np
import pytest

from sosd.cli import main
from sosd.data.sample import Sample, SceneDataset
from sosd.errors import SOSDError
from sosd.eval.offline import evaluate_predictions
from sosd.eval.prediction_files import write_prediction


class HandScenes(SceneDataset):
    """A few hand-made samples (synthetic-like ids) with depth or disparity targets."""

    def __init__(self, kind="depth", n=3, h=12, w=16, k=5, seed=0):
        super().__init__()
        self.target_kind, self.num_classes = kind, k
        rng = np.random.default_rng(seed)
        self._samples = []
        for i in range(n):
            lo, hi = (0.5, 9.0) if kind == "depth" else (0.0, 80.0)
            target = rng.uniform(lo, hi, (h, w)).astype(np.float32)
            valid = rng.random((h, w)) < 0.8
            labels = rng.integers(0, k, (h, w))
            labels[rng.random((h, w)) < 0.1] = 255
            preset = "indoor" if kind == "depth" else "street"
            self._samples.append(Sample(
                image=np.zeros((h, w, 3), np.uint8), target=target, valid=valid, labels=labels,
                intrinsics=np.array([10, 10, w / 2, h / 2], np.float32), id=f"{preset}-0-{i:06d}", index=i,
                target_kind=kind))

    def __len__(self):
        return len(self._samples)

    def sample(self, i):
        return self._samples[i]


def _write_gt(ds, d, **overrides):
    for i in range(len(ds)):
        s = ds.sample(i)
        write_prediction(d, s.id, overrides.get("values", s.target), np.where(s.labels == 255, 0, s.labels),
                         "nyu" if ds.target_kind == "depth" else "cityscapes")


@pytest.mark.parametrize("protocol", ["paper", "eigen"])
def test_round_trip_depth_ground_truth_scores_perfectly(tmp_path, protocol):
    ds = HandScenes("depth")
    _write_gt(ds, tmp_path)
    assert (tmp_path / "indoor-0-000000_depth.png").is_file()  # flat, NYU format
    r = evaluate_predictions(tmp_path, ds, depth_protocol=protocol, progress=False)
    # 1 mm quantisation on depths >= 0.5 m: rel <= 0.0005 / 0.5 = 1e-3
    assert r["rel"] < 1e-3 and r["rms"] < 6e-4 and r["delta1"] == 1.0
    assert r["miou"] == 1.0 and r["pixel_acc"] == 1.0 and r["mean_acc"] == 1.0
    assert r["depth_protocol"] == protocol and r["format"] == "nyu" and r["n_images"] == 3
    if protocol == "paper":
        assert r["n_valid_pixels"] == sum(int(ds.sample(i).valid.sum()) for i in range(3))
        assert r["missing_depth_pixels"] == 0 and r["depth_coverage"] == 1.0
    else:
        assert "silog" in r and r["eigen_crop"] == {"12x16": [1, 12, 1, 15]}


def test_round_trip_disparity_cityscapes_format(tmp_path):
    ds = HandScenes("disparity", k=19)
    _write_gt(ds, tmp_path)
    r = evaluate_predictions(tmp_path, ds, progress=False)
    assert r["format"] == "cityscapes" and r["disparity_mae_px"] <= 1 / 512 and r["miou"] == 1.0
    assert (tmp_path / "street-0-000001_labelTrainIds.png").is_file()
    with pytest.raises(SOSDError, match="applies to metric depth"):
        evaluate_predictions(tmp_path, ds, depth_protocol="eigen", progress=False)
    with pytest.raises(SOSDError, match="format 'nyu' holds depth"):
        evaluate_predictions(tmp_path, ds, fmt="nyu", progress=False)


def test_missing_pixels_excluded_for_depth_wrong_for_labels(tmp_path):
    ds = HandScenes("depth", n=1)
    s = ds.sample(0)
    values = s.target.copy()
    values[0, :] = np.nan  # written as 0 = no prediction
    labels = np.where(s.labels == 255, 0, s.labels)
    labels[1, :] = 255  # written as 0 = no prediction
    write_prediction(tmp_path, s.id, values, labels, "nyu")
    r = evaluate_predictions(tmp_path, ds, progress=False)
    n_missing = int(s.valid[0].sum())
    assert r["missing_depth_pixels"] == n_missing
    assert r["n_valid_pixels"] == int(s.valid.sum()) - n_missing
    assert r["rel"] < 1e-3  # the missing pixels are excluded, not scored as errors
    n_lab_missing = int((s.labels[1] != 255).sum())
    assert r["missing_label_pixels"] == n_lab_missing
    assert r["pixel_acc"] == pytest.approx(1 - n_lab_missing / int((s.labels != 255).sum()))


def test_missing_and_wrong_size_files_raise_naming_the_file(tmp_path):
    ds = HandScenes("depth")
    _write_gt(ds, tmp_path)
    (tmp_path / "indoor-0-000002_labels.png").unlink()
    with pytest.raises(SOSDError, match=r"indoor-0-000002_labels\.png is missing"):
        evaluate_predictions(tmp_path, ds, progress=False)
    # depth-only scoring does not need the label files
    r = evaluate_predictions(tmp_path, ds, progress=False, tasks=["depth"])
    assert r["rel"] < 1e-3 and np.isnan(r["miou"])
    write_prediction(tmp_path, "indoor-0-000001", np.ones((6, 8)), None, "nyu")
    with pytest.raises(SOSDError, match=r"indoor-0-000001_depth\.png is 6x8 \(HxW\) but the evaluated image is 12x16"):
        evaluate_predictions(tmp_path, ds, progress=False, tasks=["depth"])
    with pytest.raises(SOSDError, match="does not exist"):
        evaluate_predictions(tmp_path / "nope", ds, progress=False)


# ------------------------------------------------------------------------------------------ CLI

@pytest.fixture
def hand_synthetic(monkeypatch):
    """Route `--dataset synthetic` to HandScenes (recording the DataConfig) so the CLI test does not
    depend on the procedural generator."""
    from sosd.data import factory

    seen = {}

    def build(cfg, split, train, seed):
        seen.update(cfg=cfg, split=split)
        kind = "depth" if cfg.preset == "indoor" else "disparity"
        return HandScenes(kind, n=cfg.val_size, h=cfg.height, w=cfg.width)

    monkeypatch.setitem(factory.DATASETS, "synthetic", build)
    return seen


def test_cli_offline_eval_prints_table_and_writes_json(tmp_path, hand_synthetic, capsys):
    ds = HandScenes("depth", n=2, h=10, w=14)
    _write_gt(ds, tmp_path / "preds")
    out = tmp_path / "res" / "r.json"
    rc = main(["eval", "--predictions", str(tmp_path / "preds"), "--dataset", "synthetic", "--preset", "indoor",
               "--n", "2", "--height", "10", "--width", "14", "--out", str(out), "--no-progress"])
    assert rc == 0
    cfg = hand_synthetic["cfg"]
    assert (cfg.val_size, cfg.height, cfg.width, hand_synthetic["split"]) == (2, 10, 14, "test")
    printed = capsys.readouterr().out
    assert "| Mean IoU | Mean Accuracy | Pixel Accuracy | rel |" in printed and "'paper'" in printed
    r = json.loads(out.read_text())
    assert r["miou"] == 1.0 and r["rel"] < 1e-3 and r["depth_protocol"] == "paper"
    assert r["dataset"] == "synthetic" and r["n_images"] == 2 and "protocol" in r

    # eigen on depth works and prints silog; eigen on the street preset (disparity) is an error
    rc = main(["eval", "--predictions", str(tmp_path / "preds"), "--dataset", "synthetic", "--n", "2",
               "--height", "10", "--width", "14", "--depth-protocol", "eigen", "--no-progress"])
    assert rc == 0 and "silog" in capsys.readouterr().out
    rc = main(["eval", "--predictions", str(tmp_path / "preds"), "--dataset", "synthetic", "--preset", "street",
               "--n", "2", "--depth-protocol", "eigen", "--no-progress"])
    assert rc == 2 and "applies to metric depth" in capsys.readouterr().err


def test_cli_errors(tmp_path, hand_synthetic, capsys):
    assert main(["eval", "--predictions", str(tmp_path), "--checkpoint", "x.ckpt", "--dataset", "synthetic"]) == 2
    assert "mutually exclusive" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", "x.ckpt"]) == 2
    assert "x.ckpt does not exist" in capsys.readouterr().err
    assert main(["eval", "--dataset", "synthetic"]) == 2
    assert "--predictions" in capsys.readouterr().err
    rc = main(["eval", "--predictions", str(tmp_path), "--dataset", "synthetic", "--n", "1", "--height", "4",
               "--width", "4", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "indoor-0-000000_depth.png is missing" in err and "Traceback" not in err


@pytest.mark.skipif(importlib.util.find_spec("sosd.data.synthetic") is None,
                    reason="procedural generator sosd.data.synthetic not in this checkout yet")
def test_cli_with_real_synthetic_scenes(tmp_path, capsys):
    from sosd.config import DataConfig
    from sosd.data import build_dataset

    ds = build_dataset(DataConfig(dataset="synthetic", preset="indoor", val_size=2, height=24, width=32), "test")
    preds = tmp_path / "preds"
    for i in range(len(ds)):
        s = ds.sample(i)
        write_prediction(preds, s.id, s.target, np.where(s.labels == 255, 0, s.labels), "nyu")
    out = tmp_path / "r.json"
    rc = main(["eval", "--predictions", str(preds), "--dataset", "synthetic", "--preset", "indoor", "--n", "2",
               "--height", "24", "--width", "32", "--out", str(out), "--no-progress"])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["miou"] == 1.0 and r["rel"] < 1e-2 and r["n_images"] == 2
