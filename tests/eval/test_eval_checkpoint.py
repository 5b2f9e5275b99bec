"""`sosd eval --checkpoint`: dataset from the run's config, checks, JSON, and --save-predictions.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/eval/test_eval_checkpoint.py
"""
import json

import numpy as np
import pytest

from sosd.cli import main
from sosd.config import DataConfig
from sosd.data import build_dataset
from sosd.eval.depth_metrics import DELTA, MIN_DEPTH
from sosd.eval.offline import evaluate_predictions
from sosd.eval.prediction_files import NYU, read_prediction
from sosd.train.loop import fit
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


def _eval(capsys, *args):
    rc = main(["eval", *map(str, args), "--no-progress"])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_eval_a_run_folder_uses_its_own_config(run, capsys):
    ckpt, cfg = run
    rc, out, _ = _eval(capsys, "--checkpoint", ckpt)
    assert rc == 0
    assert "| Method | Mean IoU |" in out and "tiny/step_0000004" in out and "δ<1.25" in out
    path = ckpt / "eval_synthetic_test.json"  # default --out: in the run folder
    r = json.loads(path.read_text())
    assert r["checkpoint"].endswith("step_0000004") and r["variant"] == "sosd" and r["step"] == 4
    assert (r["dataset"], r["split"], r["height"], r["width"], r["preset"], r["seed"]) == \
        ("synthetic", "test", 48, 64, "indoor", 0)
    assert r["n_images"] == cfg.data.val_size and r["format"] == "nyu" and r["target_kind"] == "depth"
    assert r["tasks"] == ["depth", "semantic"] and r["predictions"] is None
    # the same set and model as the validation at the end of training
    trained = json.loads((ckpt / "metrics.json").read_text())["metrics"]
    for k in ("miou", "pixel_acc", "rel", "rms", "delta1", "n_valid_pixels"):
        assert r[k] == pytest.approx(trained[k], rel=1e-5), k


def test_save_predictions_rescore_offline_to_the_same_metrics(run, tmp_path, capsys):
    ckpt, cfg = run
    preds = tmp_path / "preds"
    rc, _, _ = _eval(capsys, "--checkpoint", ckpt, "--save-predictions", preds, "--batch-size", 3,
                     "--out", tmp_path / "ck.json")
    assert rc == 0
    ck = json.loads((tmp_path / "ck.json").read_text())
    ds = build_dataset(cfg.data, cfg.data.val_split)
    assert sorted(p.name for p in preds.iterdir()) == sorted(
        f"{ds.sample(i).id}_{kind}.png" for i in range(len(ds)) for kind in ("depth", "labels"))
    off = evaluate_predictions(preds, ds, progress=False)
    offline_keys = set(off) | {"dataset", "split", "root", "height", "width", "preset", "seed"}
    assert set(ck) == offline_keys | {"checkpoint", "variant", "step"}
    for k in ("miou", "mean_acc", "pixel_acc", "n_images", "n_valid_pixels", "n_labelled_pixels"):
        assert off[k] == ck[k], k  # segmentation and counts: identical
    # Depth: the files hold depth rounded to 1 mm, so the two sets of metrics may differ by at most what
    # moving each prediction by <= 0.5 mm can change (bounds computed from the files; a fixed tolerance
    # broke when a pixel band of the synthetic walls sat at a δ threshold on another CPU).
    bound = _quantisation_bounds(preds, ds)
    for k, b in bound.items():
        assert abs(off[k] - ck[k]) <= b, (k, off[k], ck[k], b)
    assert bound["rms"] <= 1e-3 and bound["delta3"] < 0.05  # the bounds are tight enough to mean something


def _quantisation_bounds(preds, ds, half_step=0.5e-3 + 1e-6):
    """Largest change of each paper-protocol depth metric when every decoded prediction q (metres) may
    have been any p with |p - q| <= half_step before it was written."""
    n = 0
    rel = log10 = 0.0
    ambiguous = {k: 0 for k in (1, 2, 3)}
    for i in range(len(ds)):
        s = ds.sample(i)
        q = read_prediction(preds, s.id, NYU, shape=s.target.shape, labels=False).values.astype(np.float64)
        region = np.asarray(s.valid, bool) & np.isfinite(s.target) & (s.target > 0)
        q, g = q[region], np.asarray(s.target, np.float64)[region]
        lo, hi = np.maximum(q - half_step, MIN_DEPTH), q + half_step
        n += g.size
        rel += (half_step / g).sum()
        log10 += np.log10(hi / lo).sum()
        for k in ambiguous:  # max(p/g, g/p) < T  <=>  g/T < p < g*T: unsure when a bound lies in [lo, hi]
            t = DELTA ** k
            ambiguous[k] += int((((g / t >= lo) & (g / t <= hi)) | ((g * t >= lo) & (g * t <= hi))).sum())
    out = {"rel": rel / n, "rms": half_step, "log10": log10 / n}  # rms: |rms(a) - rms(b)| <= rms(a - b)
    out.update({f"delta{k}": c / n + 1e-12 for k, c in ambiguous.items()})
    return out


def test_dataset_flags_override_the_checkpoint_config(run, tmp_path, capsys):
    ckpt, _ = run
    rc, out, _ = _eval(capsys, "--checkpoint", ckpt, "--height", 40, "--width", 56, "--n", 2, "--depth-protocol",
                       "eigen", "--out", tmp_path / "e.json")
    assert rc == 0 and "silog" in out
    r = json.loads((tmp_path / "e.json").read_text())
    assert (r["height"], r["width"], r["n_images"]) == (40, 56, 2)
    assert r["depth_protocol"] == "eigen" and "sq_rel" in r and list(r["eigen_crop"]) == ["40x56"]
    # another dataset named explicitly starts from its own defaults (here: synthetic at a given size)
    rc, _, _ = _eval(capsys, "--checkpoint", ckpt / "checkpoints" / "step_0000004", "--dataset", "synthetic",
                     "--n", 1, "--height", 32, "--width", 48, "--out", tmp_path / "f.json")
    assert rc == 0 and json.loads((tmp_path / "f.json").read_text())["height"] == 32


def test_class_count_mismatch_is_a_clear_error(run, capsys):
    ckpt, cfg = run
    rc, _, err = _eval(capsys, "--checkpoint", ckpt, "--preset", "street", "--n", 1)
    street = build_dataset(DataConfig(preset="street", height=48, width=64, val_size=1), "test").num_classes
    assert rc == 2
    assert f"predicts {cfg.model.num_classes} classes" in err and f"has {street}" in err


def test_depth_model_on_a_disparity_set_is_a_clear_error(tmp_path, capsys):
    cfg = tiny_config(tmp_path, variant="depth_only", strategy="single", steps=1)
    fit(cfg, progress=False)
    capsys.readouterr()
    rc, _, err = _eval(capsys, "--checkpoint", tmp_path / "runs" / "tiny", "--preset", "street", "--n", 1)
    assert rc == 2 and "predicts depth" in err and "disparity" in err


def test_missing_checkpoint_and_mixed_sources(tmp_path, capsys):
    rc, _, err = _eval(capsys, "--checkpoint", tmp_path / "nope")
    assert rc == 2 and "does not exist" in err
    rc, _, err = _eval(capsys, "--checkpoint", tmp_path, "--predictions", tmp_path)
    assert rc == 2 and "mutually exclusive" in err


def test_disparity_checkpoint_uses_the_cityscapes_layout_and_format(tmp_path, capsys):
    cfg = tiny_config(tmp_path, steps=1, **{"data.preset": "street", "data.val_size": 2})
    fit(cfg, progress=False)
    capsys.readouterr()
    preds = tmp_path / "preds"
    rc, out, _ = _eval(capsys, "--checkpoint", tmp_path / "runs" / "tiny", "--save-predictions", preds)
    assert rc == 0 and "Disparity error [px]" in out
    ck = json.loads((tmp_path / "runs" / "tiny" / "eval_synthetic_test.json").read_text())
    assert ck["format"] == "cityscapes" and ck["target_kind"] == "disparity" and ck["preset"] == "street"
    ds = build_dataset(cfg.data, "test")
    assert (preds / f"{ds.sample(1).id}_disparity.png").is_file()
    off = evaluate_predictions(preds, ds, progress=False)
    assert off["miou"] == ck["miou"] and off["n_valid_pixels"] == ck["n_valid_pixels"]
    assert off["disparity_mae_px"] == pytest.approx(ck["disparity_mae_px"], abs=1 / 256)
    rc, _, err = _eval(capsys, "--checkpoint", tmp_path / "runs" / "tiny", "--depth-protocol", "eigen")
    assert rc == 2 and "metric depth" in err
