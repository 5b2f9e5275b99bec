"""The semantic-objectness probe on a tiny trained model: object pooling, correlations, the linear probe by
hand, the cue ablation, the exact fusion split of the Fig. 8 picture, and the command end to end.

Run: .venv/bin/python -m pytest tests/eval/test_probe.py -q
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sosd.checkpoint import load_model
from sosd.cli import main
from sosd.eval.probe import ProbeConfig, correlations, cue_contribution, linear_probe, object_table, probe_scenes
from sosd.eval.probe_command import class_summary, comparisons
from sosd.eval.probe_figure import fusion_parts


def test_linear_probe_by_hand():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 4.0
    exact = linear_probe(X, y, folds=5, ridge=1e-6)
    assert exact["r2"] > 0.999 and exact["spearman"] > 0.999
    noise = linear_probe(X, rng.normal(size=200), folds=5, ridge=1e-2)
    assert noise["r2"] < 0.1  # held-out: no fit to pure noise


@pytest.fixture(scope="module")
def probed(tiny_run):
    run, _ = tiny_run
    model, cfg = load_model(run)
    scenes = probe_scenes(cfg, 6)
    return model, cfg, scenes


def test_objects_pooled_from_the_units_maps(probed):
    model, cfg, scenes = probed
    rows = object_table(model, scenes, min_px=10)
    assert rows, "the tiny indoor scenes hold probe-able objects"
    # recompute the first probed object's pooled cue by hand from the unit's own maps
    first = [(i, o) for i, (_, objs) in enumerate(scenes) for o in objs
             if o["inside"] and o["unoccluded"] and o["visible_px"] >= 10][0]
    sample, o = scenes[first[0]][0], first[1]
    x = torch.from_numpy(sample.image).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        aux = model.eval()(x, torch.from_numpy(sample.intrinsics)[None], return_aux=True)["aux"]
    cue = F.interpolate(aux["cue"], size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    mask = torch.from_numpy(sample.extras["instances"] == o["instance"])
    assert rows[0]["cue"] == pytest.approx(float(cue[mask].mean()), rel=1e-5)
    assert rows[0]["inv_area_2d_true"] == pytest.approx(1 / (o["du_px"] * o["dv_px"]))
    assert rows[0]["area_3d_true"] == pytest.approx(o["area_m2"])
    res = correlations(rows, ProbeConfig(folds=2))
    assert set(res["overall"]) == {"area_3d", "area_2d", "cue"}
    assert set(res["linear_probe"]) == {"log_area_3d", "log_inv_area_2d", "log_depth"}


def test_cue_ablation_changes_the_depth(probed):
    from sosd.data import build_dataset

    model, cfg, _ = probed
    res = cue_contribution(model, build_dataset(cfg.data, "test"))
    assert res["metric"] == "rel"
    assert res["model"] != res["cue replaced by its mean"]


def test_fusion_splits_exactly(probed):
    """depth = softplus(upsample(pure depth branch + semantic-to-depth part)): the picture shows the real parts."""
    model, _, scenes = probed
    sample = scenes[0][0]
    x = torch.from_numpy(sample.image).permute(2, 0, 1)[None].float() / 255.0
    p = fusion_parts(model, x, torch.from_numpy(sample.intrinsics)[None])
    fused = F.softplus(F.interpolate(p["depth_branch"] + p["cue_part"], size=x.shape[-2:], mode="bilinear",
                                     align_corners=False))
    torch.testing.assert_close(fused, p["depth"], rtol=1e-5, atol=1e-5)
    assert p["cue_part"].abs().sum() > 0


def test_probe_command(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    assert main(["probe", "--checkpoint", str(run), "--untrained", "--scenes", "4", "--min-px", "10",
                 "--figure", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ρ(cue, d)" in out and "SOSD-Net (untrained)" in out
    res = json.loads((tmp_path / "probe.json").read_text())
    assert set(res["summaries"]) == {"SOSD-Net (trained)", "SOSD-Net (untrained)"}
    # one checkpoint: the paired rows are there, and one seed resolves nothing
    comps = res["meta"]["comparisons"]
    assert len(comps) == 3 and {c["verdict"] for c in comps} == {"not resolved"} and "trained − untrained" in out
    assert (tmp_path / "probe_fig8.png").stat().st_size > 0


def _fake(rho, r2, classes):
    return {"overall": {"area_3d": rho, "area_2d": rho, "cue": rho},
            "linear_probe": {k: {"r2": r2} for k in ("log_area_3d", "log_inv_area_2d", "log_depth")},
            "per_class": {c: {"n": 7, "area_3d": rho + i, "area_2d": rho, "cue": rho} for i, c in enumerate(classes)}}


def test_seed_intervals_and_paired_comparisons():
    # five seeds: the trained unit beats its initial weights every time (holds); SOSD-Net's features against
    # MTL's go either way (not resolved); a class seen by every seed gets an interval over the seeds
    trained = [_fake(0.5 + 0.01 * k, 0.6 + (0.05 if k % 2 else -0.05), ["car", "person"]) for k in range(5)]
    untrained = [_fake(0.02 * k, 0.0, ["car", "person"]) for k in range(5)]
    mtl = [_fake(0.0, 0.6, []) for _ in range(5)]
    rows = {r["comparison"]: r for r in comparisons({"SOSD-Net (trained)": trained, "SOSD-Net (untrained)": untrained,
                                                      "mtl (control)": mtl})}
    cue = rows["ρ(cue, d): trained − untrained"]
    assert cue["n"] == 5 and cue["verdict"] == "holds" and cue["mean"] == pytest.approx(0.5 - 0.02)
    r2 = rows["linear probe R² log d: SOSD-Net − mtl"]
    assert r2["verdict"] == "not resolved" and r2["lo"] < 0 < r2["hi"]
    per = class_summary(trained)
    assert set(per) == {"car", "person"} and per["person"]["n"] == 7
    m, lo, hi = per["person"]["area_3d"]
    assert m == pytest.approx(1.52) and lo < m < hi
    # a control with another number of seeds cannot be paired: no row rather than a wrong one
    assert not any("mtl" in r["comparison"] for r in comparisons({"SOSD-Net (trained)": trained,
                                                                    "mtl (control)": mtl[:3]}))


@pytest.mark.parametrize("size_scale", [(1.0, 1.0), (0.5, 2.0)])
def test_probe_scenes_are_the_runs_test_scenes(tiny_run, size_scale):
    # the counterfactual preset too: the probe must see the scenes the run is scored on
    import dataclasses

    from sosd.data import build_dataset

    _, cfg = tiny_run
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, size_scale=list(size_scale)))
    (sample, objects), = probe_scenes(cfg, 1)
    ref = build_dataset(cfg.data, "test").sample(0)
    assert np.array_equal(sample.image, ref.image) and np.array_equal(sample.target, ref.target)
