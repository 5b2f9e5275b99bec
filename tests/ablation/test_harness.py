"""The ablation harness: Δm by hand, a tiny end-to-end table, row-by-row resume.

Run: .venv/bin/python -m pytest tests/ablation -q
"""
import json

import pytest

from sosd.ablation.harness import delta_m, mean_std
from sosd.ablation.tables import TABLES
from sosd.cli import main
from sosd.config import dump_config
from tests.conftest import tiny_config


def test_delta_m_by_hand():
    cols = TABLES["1"].columns  # mIoU (higher better), disparity MAE (lower better)
    single = {"miou": 0.50, "disparity_mae_px": 2.0}
    multi = {"miou": 0.55, "disparity_mae_px": 2.5}
    # semantic task: +10 %; depth task: -(2.5 - 2.0) / 2.0 = -25 %; mean over tasks = -7.5 %
    assert delta_m(multi, single, cols) == pytest.approx(-7.5)
    cols3 = TABLES["3"].columns  # one task (depth), six metrics: the mean of their signed changes
    s3 = dict(rel=0.2, rms=1.0, log10=0.1, delta1=0.5, delta2=0.8, delta3=0.9)
    m3 = dict(rel=0.1, rms=1.0, log10=0.1, delta1=0.5, delta2=0.8, delta3=0.9)
    assert delta_m(m3, s3, cols3) == pytest.approx(50.0 / 6)
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))


def test_tiny_table_end_to_end_and_resume(tmp_path, capsys):
    cfg = tiny_config(tmp_path, steps=2)
    dump_config(cfg, tmp_path / "base.yaml")
    args = ["ablate", "--table", "2", "--config", str(tmp_path / "base.yaml"), "--seeds", "2", "--budget", "2",
            "--out", str(tmp_path / "abl"), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for name in ("Semantic only", "MTL", "SOSD-Net", "ESOSD-Net", "Δm", "paper: Mean IoU", "± "):
        assert name in out, name
    res = json.loads((tmp_path / "abl" / "synthetic-indoor" / "table2.json").read_text())
    assert [r["key"] for r in res["rows"]] == ["semantic_only", "mtl", "sosd", "esosd"]
    assert all(len(r["miou/runs"]) == 2 for r in res["rows"])
    assert (tmp_path / "abl" / "synthetic-indoor" / "table2.png").stat().st_size > 0
    runs = tmp_path / "abl" / "synthetic-indoor" / "runs"
    stamps = {p: p.stat().st_mtime_ns for p in runs.glob("*/metrics.json")}
    assert len(stamps) == 8
    # Table 3 shares MTL/SOSD/ESOSD with Table 2: only depth_only is trained; finished rows are reused
    assert main(args[:2] + ["3"] + args[3:]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert len(list(runs.glob("*/metrics.json"))) == 10


def test_learning_curve_mode(tmp_path, capsys):
    """--curves K: every run scored K times on val, the table's figures from the test scenes, a Converged column
    and a curves plot."""
    cfg = tiny_config(tmp_path, steps=2)
    dump_config(cfg, tmp_path / "base.yaml")
    args = ["ablate", "--table", "2", "--config", str(tmp_path / "base.yaml"), "--seeds", "2", "--budget", "2",
            "--curves", "2", "--out", str(tmp_path / "abl"), "--no-progress"]
    assert main(args) == 0
    assert "Converged on val" in capsys.readouterr().out
    res = json.loads((tmp_path / "abl" / "synthetic-indoor" / "table2.json").read_text())
    mtl = next(r for r in res["rows"] if r["key"] == "mtl")
    assert [p["step"] for p in mtl["val_curves"][0]] == [1, 2] and mtl["convergence"]["converged"] is not None
    run = tmp_path / "abl" / "synthetic-indoor" / "runs" / "mtl-seed0"
    test = json.loads((run / "test_metrics.json").read_text())
    assert mtl["miou/runs"][0] == pytest.approx(test["miou"])  # reported: test scenes, not the val curve's end
    assert test["code_commit"] is not None and test["machine"]["cpu_capability"]  # runs may span machines
    assert (run / "config.yaml").read_text().count("val_split: val") == 1  # the curve was scored on val
    assert (tmp_path / "abl" / "synthetic-indoor" / "table2_curves.png").stat().st_size > 0
    assert main(args[:-5] + ["--dataset", "nyuv2", "--root", str(tmp_path), "--curves", "2", "--out",
                             str(tmp_path / "abl2"), "--no-progress"]) == 2


def test_table4_has_every_torchjd_method_with_cost_ratios(tmp_path):
    import dataclasses

    from sosd.ablation.harness import run_table, to_markdown
    from sosd.ablation.tables import TABLES
    from sosd.train.strategies.jd import AGGREGATORS, SCALARIZERS

    t4 = TABLES["4"]
    keys = [r.key for r in t4.rows]
    assert len(keys) == len(set(keys))
    jd_rows = [r for r in t4.rows if r.strategy == "jd" and r.variant == "mtl"]
    assert len(jd_rows) == len(AGGREGATORS) + len(SCALARIZERS)
    assert {"mtl_jd_upgrad", "mtl_jd_nashmtl", "mtl_jd_loss_famo", "mtl_pcgrad"} <= set(keys)
    # one row of it, tiny: the cost columns come beside the metrics, as ratios to joint
    small = dataclasses.replace(t4, rows=tuple(r for r in t4.rows if r.key == "mtl_jd_upgrad"))
    cfg = tiny_config(tmp_path, steps=2)
    dump_config(cfg, tmp_path / "base.yaml")
    res = run_table(small, "synthetic-indoor", 1, 2, tmp_path / "abl", str(tmp_path / "base.yaml"), progress=False)
    rows = {r["key"]: r for r in res["rows"]}
    c = rows["mtl_jd_upgrad"]["cost"]
    assert c["step_vs_joint"] > 0 and c["memory_vs_joint"] > 0 and c["step_s"] > 0 and c["joint_step_s"] > 0
    assert "cost" not in rows["semantic_only"]  # the single-task references get no ratio
    md = to_markdown(small, res, "test")
    assert "Step time × joint" in md and "Step memory × joint" in md
    assert "| UPGrad (torchjd) |" in md


def test_a_finished_run_with_another_config_is_kept_not_trained_over(tmp_path, capsys):
    from sosd.ablation.harness import run_row

    first = run_row(tiny_config(tmp_path, steps=2))
    assert first["steps"] == 2
    assert run_row(tiny_config(tmp_path, steps=2)) == first  # the same config: reused, not retrained
    second = run_row(tiny_config(tmp_path, steps=3))
    assert second["steps"] == 3
    kept = list((tmp_path / "runs").glob("tiny.replaced-*"))
    assert len(kept) == 1
    assert json.loads((kept[0] / "metrics.json").read_text()) == first
    assert "train.steps: 2 vs 3" in capsys.readouterr().err
