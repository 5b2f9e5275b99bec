"""The claims study: paired intervals by hand, verdicts, convergence, schedule choice, and the quick study end
to end (every part, resumed without retraining).

Run: .venv/bin/python -m pytest tests/ablation/test_study.py -q
"""
import dataclasses
import json

import pytest

from sosd.eval.stats import HOLDS, NOT_RESOLVED, REVERSED, combine_verdicts, converged, mean_interval, paired
from sosd.ablation.study import choose_schedule
from sosd.ablation.study_command import method_costs
from sosd.ablation.study_plan import (ALL_PARTS, METHODS_SKIPPED, RunSpec, StudyConfig, claim_rows, claims, doubled,
                                      method_rows, phase_one, phase_two, run_config, schedule_row)
from sosd.ablation.study_report import cost_label, resolved_rows
from sosd.cli import main


def test_paired_t_interval_by_hand():
    a = [1.0, 2.0, 3.0, 4.0, 5.5]
    b = [0.5, 1.2, 2.1, 3.6, 4.4]
    # differences 0.5 0.8 0.9 0.4 1.1: mean 0.74, sd sqrt(0.332 / 4), se sd / sqrt(5), t(0.975, 4) = 2.776445
    half = 2.776445 * (0.332 / 4) ** 0.5 / 5 ** 0.5
    p = paired(a, b, higher_is_better=True)
    assert p.mean == pytest.approx(0.74)
    assert (p.lo, p.hi) == (pytest.approx(0.74 - half, abs=1e-6), pytest.approx(0.74 + half, abs=1e-6))
    assert p.verdict == HOLDS
    # lower is better (an error metric): A's larger values are worse, the same interval mirrored
    q = paired(a, b, higher_is_better=False)
    assert (q.mean, q.verdict) == (pytest.approx(-0.74), REVERSED)
    assert q.hi == pytest.approx(-p.lo)
    # an interval that contains 0
    assert paired([1.0, 2.0, 3.0], [1.5, 1.5, 2.9], True).verdict == NOT_RESOLVED
    # the pairing matters: the same values unpaired would not resolve this
    assert paired([10.0, 20.0, 30.0, 40.0], [9.9, 19.8, 29.9, 39.8], True).verdict == HOLDS
    boot = paired(a, b, True, method="bootstrap")
    assert boot.lo > 0 and boot.mean == pytest.approx(0.74)
    with pytest.raises(ValueError):
        paired([1.0], [1.0, 2.0], True)


def test_verdict_helpers():
    assert combine_verdicts(HOLDS, HOLDS) == HOLDS
    assert combine_verdicts(HOLDS, NOT_RESOLVED) == NOT_RESOLVED
    assert combine_verdicts(REVERSED, HOLDS) == NOT_RESOLVED
    m, lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo == pytest.approx(2 - 4.302653 / 3 ** 0.5, abs=1e-5) and hi > 4


def test_convergence_criterion():
    rising = [[{"step": s, "miou": 0.1 * s / 100} for s in (100, 200, 300, 400)]]
    flat = [[{"step": s, "miou": 0.5 + 0.001 * s / 100} for s in (100, 200, 300, 400)]]
    assert converged(rising, {"miou": True}, 0.02)["converged"] is False  # +33 % over the last quarter
    res = converged(flat, {"miou": True}, 0.02)
    assert res["converged"] is True and res["from_step"] == 300 and res["gain"]["miou"] == pytest.approx(0.001 / 0.503)
    # an error metric that still falls is not converged; one that rises (gets worse) is
    falling = [[{"step": s, "rel": 1.0 / s} for s in (100, 200, 300, 400)]]
    assert converged(falling, {"rel": False}, 0.02)["converged"] is False
    assert converged([[{"step": s, "rel": s} for s in (100, 200, 300, 400)]], {"rel": False}, 0.02)["converged"]


def test_claims_cover_every_ordering_of_the_paper():
    cs = claims(schedule_row("step:1"))
    by_table = {t: [c for c in cs if c["table"] == t] for t in "1234"}
    assert len(by_table["1"]) == 12   # 6 pairs on mIoU, 6 on disparity
    assert len(by_table["2"]) == 18   # 6 pairs x 3 metrics
    assert all("esosd" in (c["better"], c["worse"]) for c in by_table["4"]) and len(by_table["4"]) == 6
    c = next(c for c in by_table["1"] if c["metric"] == "disparity_mae_px" and {c["better"], c["worse"]} ==
             {"esosd", "sosd"})
    assert c["better"] == "esosd" and c["paper"] == (2.41, 2.58)
    # the schedule chosen on val stands in for the paper's ESOSD-Net
    cs10 = claims(schedule_row("step:10"))
    assert any(c["better"] == "esosd_step10" for c in cs10) and not any("esosd" in (c["better"], c["worse"]) for c in cs10)


def test_schedule_chosen_on_val_only():
    sc = StudyConfig(budget=10, em_schedules=("step:1", "step:10"))

    def run(row, miou, disp, test_miou):
        return {"row": row, "preset": "street", "steps": 10, "val": {"miou": miou, "disparity_mae_px": disp},
                "test": {"miou": test_miou}}
    results = {"a": run("esosd", 0.50, 1.0, 0.9), "b": run("esosd_step10", 0.55, 1.0, 0.1)}
    best, scores = choose_schedule(sc, results)
    assert best == "step:10" and scores["step:10"] == pytest.approx(0.05)  # the test numbers play no part


def test_only_resolved_claims_are_trained_again():
    # a claim not resolved at the budget stays so whatever twice the budget says: only resolved claims'
    # rows get the second run, and only once every seed has finished
    sc = StudyConfig(budget=10, seeds=5)

    def run(row, seed, miou):
        return {"row": row, "preset": "street", "steps": 10, "seed": seed, "test": {"miou": miou}}
    results = {}
    for s in range(5):
        results.update({f"so{s}": run("semantic_only", s, 0.50), f"m{s}": run("mtl", s, 0.55 + 0.01 * s),
                        f"s{s}": run("sosd", s, 0.55 + 0.01 * (-1) ** s)})
    chosen = schedule_row("step:1")
    assert resolved_rows(sc, results, chosen) == {("street", "semantic_only"), ("street", "mtl"), ("street", "sosd")}
    del results["m4"], results["s4"]  # MTL vs Semantic only and SOSD vs Semantic only: seeds missing
    assert resolved_rows(sc, results, chosen) == set()


def test_estimate_calibrated_on_finished_runs():
    from sosd.ablation.study import calibrated_step_seconds, estimate_seconds

    sc = StudyConfig()
    specs = phase_one(sc)
    mtl0, mgda0 = (next(s for s in specs if s.name == f"street-{k}-b1000-seed0") for k in ("mtl", "mtl_mgda"))
    done = {mtl0.name: {"preset": "street", "steps": 1000, "train_seconds": 300.0},
            mgda0.name: {"preset": "street", "steps": 1000, "train_seconds": 480.0}}  # a gradient method: 1.6x
    assert calibrated_step_seconds(specs, done) == {"street": pytest.approx(0.3)}
    # two parallel jobs halve the wall time of the same steps
    assert estimate_seconds(sc, [mtl0, mgda0], 2, {"street": 0.3}, overhead=1.0) == pytest.approx((300 + 480) / 2)


def test_plan_counts():
    sc = StudyConfig()
    first = phase_one(sc)
    # Table 1 rows without ESOSD (4) + Kendall, GradNorm, MGDA-UB + 4 EM schedules, 5 seeds
    assert len(first) == (4 + 3 + 4) * 5
    later = phase_two(sc, schedule_row("step:10"))
    indoor = [s for s in later if s.preset == "indoor" and s.steps == sc.budget]
    assert {s.row.key for s in indoor} == {"semantic_only", "depth_only", "mtl", "sosd", "esosd_step10", "sosd_focal"}
    assert {s.steps for s in later if s.row.key == "esosd_step10_equal"} == {2 * sc.budget}
    # a run asked for by two parts (indoor SOSD-Net: Tables 2/3 and the focal table) trains once
    names = [s.name for s in later]
    assert len(names) == len(set(names))
    sosd = next(s for s in later if s.name == "indoor-sosd-b1000-seed0")
    assert [label for label, _ in sosd.evals] == ["f×0.7", "f×1.0", "f×1.4"]
    cf = [s for s in later if s.row.key.endswith("_cf")]
    assert {s.row.key for s in cf} == {"mtl_cf", "sosd_cf", "esosd_step10_cf"}
    assert all("data.size_scale=[0.5,2.0]" in s.row.overrides for s in cf)
    # seed-major within a part (an interrupted part holds complete pairs); the doubled budgets come apart
    assert [s.seed for s in cf] == sorted(s.seed for s in cf)
    assert {s.steps for s in later if not s.row.key.endswith("_equal")} == {sc.budget}
    chosen = schedule_row("step:10")
    assert len(claim_rows(chosen)) == 8 + 5  # street: Tables 1 and 4 rows; indoor: Tables 2 and 3 rows
    dbl = doubled(sc, chosen, {("indoor", "esosd_step10"), ("street", "mtl"), ("street", "sosd")})
    assert [(s.preset, s.row.key, s.seed) for s in dbl] == (
        [("street", k, s) for s in range(5) for k in ("mtl", "sosd")] + [("indoor", "esosd_step10", s) for s in range(5)])
    assert {s.steps for s in dbl} == {2 * sc.budget}
    # street ESOSD-Net at 2B is the em part's equal-updates run (the same config but for its name): one run
    esosd2 = doubled(sc, chosen, {("street", "esosd_step10")})
    equal = [s for s in later if s.row.key == "esosd_step10_equal"]
    assert [s.name for s in esosd2] == [s.name for s in equal] and len(equal) == 5
    same_name = [dataclasses.replace(s, row=dataclasses.replace(s.row, key="x"))
                 for s in (RunSpec("street", chosen, 2 * sc.budget, 0), equal[0])]
    assert run_config(sc, same_name[0], "runs") == run_config(sc, same_name[1], "runs")
    # the methods part (Table 4 with every method) is off by default; each of its rows has a measured cost
    assert not any(s.row.key.startswith("mtl_jd") for s in later)
    every = phase_two(dataclasses.replace(sc, parts=ALL_PARTS), schedule_row("step:10"))
    rows = method_rows()
    assert len(rows) == 31 and not METHODS_SKIPPED & {r.key for r in rows}
    assert {r.key for r in rows} <= {s.row.key for s in every if s.steps == sc.budget}
    costs = method_costs()
    assert costs and all(cost_label(r) in costs for r in rows), [cost_label(r) for r in rows if cost_label(r) not in costs]


def test_quick_study_end_to_end(tmp_path, capsys):
    args = ["study", "--quick", "--out", str(tmp_path / "res"), "--runs", str(tmp_path / "runs"), "--jobs", "2",
            "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "estimated" in out and "EM schedule chosen on val scenes" in out
    res = json.loads((tmp_path / "res" / "study.json").read_text())
    assert res["env"]["cpu_capability"] and res["env"]["torch"]
    assert {c["verdict"] for c in res["claims"]} <= {HOLDS, REVERSED, NOT_RESOLVED}
    assert len(res["claims"]) == 12 + 18 + 36 + 2  # Tables 1-3 in full, Table 4: Kendall vs ESOSD-Net (quick)
    assert all(c["at_budget"]["n"] == 2 for c in res["claims"])
    runs = [d for d in (tmp_path / "runs").iterdir() if d.is_dir()]
    assert runs and all((d / "study.log").is_file() for d in runs)  # each run keeps its log
    assert not list((tmp_path / "runs").glob(".*.study.log"))

    def doubled_rows():  # (preset, row) trained at twice the budget, less the em part's equal-updates row
        return {tuple(p.name.split("-")[:2]) for p in (tmp_path / "runs").glob("*-b8-*") if "_equal" not in p.name}
    assert not any(c["at_budget"]["verdict"] != NOT_RESOLVED for c in res["claims"]) and doubled_rows() == set()
    row = next(r for r in res["rows"] if r["row"] == "mtl" and r["preset"] == "street" and r["steps"] == 4)
    assert row["convergence"]["converged"] is not None
    assert [p["step"] for p in row["val_curves"]["0"]] == [2, 4]  # scored on val every budget / val_points
    for stem in ("street", "street_em", "street_counterfactual", "indoor", "indoor_focal"):  # a picture a question
        assert (tmp_path / "res" / f"curves_{stem}.png").stat().st_size > 0, stem
    assert {c["metric"] for c in res["counterfactual"]} == {"miou", "disparity_mae_px"}
    assert {f["eval"] for f in res["focal"]} == {"f×0.7", "f×1.0", "f×1.4"}
    kendall, = res["methods"]  # Table 4's rows: the quick plan has Kendall only
    assert (tmp_path / "res" / "methods_street.png").stat().st_size > 0  # Table 4 as a forest plot
    assert kendall["row"] == "mtl_kendall" and kendall["metrics"]["miou"]["vs_esosd"]["n"] == 2
    md = (tmp_path / "res" / "claims.md").read_text()
    assert "| Table | Metric |" in md and "Converged" in md
    # resumed: nothing retrained, the same numbers
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/metrics.json")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((tmp_path / "res" / "study.json").read_text())["claims"] == res["claims"]
    # --report: tables from the runs finished so far, nothing trained; a partial study says so
    for run in (tmp_path / "runs").glob("street-mtl-b4-seed1"):
        (run / "test_metrics.json").unlink()
    assert main(args + ["--report"]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    md = (tmp_path / "res" / "claims.md").read_text()
    assert "Partial study: 33 of 34 runs have finished" in md and "(n=1)" in md
    # a claim resolved at the budget (MTL > Semantic only on mIoU in both seeds): the rows of resolved claims,
    # and only they, train again at twice the budget
    assert main(args) == 0  # the run whose test scores were deleted is scored again, nothing trained
    for row, vals in (("semantic_only", (0.0, 0.0)), ("mtl", (0.5, 0.501))):
        for seed, v in enumerate(vals):
            f = tmp_path / "runs" / f"street-{row}-b4-seed{seed}" / "test_metrics.json"
            f.write_text(json.dumps({**json.loads(f.read_text()), "miou": v}))
    assert main(args) == 0
    res = json.loads((tmp_path / "res" / "study.json").read_text())
    resolved = [c for c in res["claims"] if c["at_budget"]["verdict"] != NOT_RESOLVED]
    # (street ESOSD-Net at twice the budget is the em part's equal-updates run: judged, not trained again)
    assert {("street", "semantic_only"), ("street", "mtl")} <= {(c["preset"], k) for c in resolved
                                                                for k in (c["better"], c["worse"])} - \
        {("street", res["chosen_schedule"])} == doubled_rows()
    assert all(c["at_double"]["n"] == 2 for c in resolved)
    # a finished run trained again from its own config.yaml: the same test scores to the bit (one machine)
    import subprocess
    import sys
    from pathlib import Path

    repro = tmp_path / "repro"
    r = subprocess.run([sys.executable, "benchmarks/reproduce_study_runs.py", "--out", str(repro), "--committed",
                        str(tmp_path / "runs"), "street-sosd-b4-seed1"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((repro / "reproduce.json").read_text()) == {"street-sosd-b4-seed1": 0.0}
    assert (repro / "street-sosd-b4-seed1" / "checkpoints").is_dir()


def test_prioritise_puts_named_rows_first_row_by_row():
    from sosd.ablation.study_plan import StudyConfig, claim_rows, doubled, prioritise, schedule_row

    sc = StudyConfig()
    chosen = schedule_row("step:1")
    twice = doubled(sc, chosen, claim_rows(chosen))
    got = prioritise(twice, ["street:sosd", "indoor:mtl"])
    assert sorted(s.name for s in got) == sorted(s.name for s in twice)  # the same runs
    head = [(s.preset, s.row.key, s.seed) for s in got[:2 * sc.seeds]]
    assert head == [("street", "sosd", k) for k in range(sc.seeds)] + [("indoor", "mtl", k) for k in range(sc.seeds)]
    rest = got[2 * sc.seeds:]
    assert rest == [s for s in twice if (s.preset, s.row.key) not in {("street", "sosd"), ("indoor", "mtl")}]


def test_first_names_an_unknown_row(tmp_path, capsys):
    rc = main(["study", "--quick", "--out", str(tmp_path), "--runs", str(tmp_path / "runs"), "--estimate",
               "--first", "street:no_such_row"])
    err = capsys.readouterr().err
    assert rc == 2 and "street:no_such_row is not a row" in err and "street:sosd" in err


def test_partial_double_budget_cannot_flip_a_verdict():
    # a claim that holds at B keeps its verdict while its 2B row has fewer than all seeds (one seed has no
    # interval); once every seed has finished at 2B, a reversal there makes the claim "not resolved"
    from sosd.ablation.study_report import analyse

    sc = StudyConfig(budget=10, seeds=5)
    chosen = schedule_row("step:1")

    def run(row, seed, steps, miou):
        return {"row": row, "row_name": row, "preset": "street", "steps": steps, "seed": seed,
                "train_seconds": 1.0, "val_curve": [], "test": {"miou": miou}}
    results = {}
    for s in range(5):
        jitter = 0.002 * s
        results.update({f"m{s}": run("mtl", s, 10, 0.50 + jitter), f"s{s}": run("sosd", s, 10, 0.55 + jitter)})

    def verdict():
        a = analyse(sc, results, chosen, {})
        c = next(c for c in a["claims"] if c["preset"] == "street" and c["metric"] == "miou"
                 and c["better"] == "sosd" and c["worse"] == "mtl")
        return c["verdict"], c["flipped"], c["at_double"]
    assert verdict() == (HOLDS, False, None)
    # 2B reversed, but seeds 0-3 only: shown, not judged
    for s in range(4):
        results.update({f"m2b{s}": run("mtl", s, 20, 0.60 + 0.002 * s), f"s2b{s}": run("sosd", s, 20, 0.52 + 0.001 * s)})
    v, flipped, at_double = verdict()
    assert (v, flipped) == (HOLDS, False) and at_double["n"] == 4
    results.update({"m2b4": run("mtl", 4, 20, 0.61), "s2b4": run("sosd", 4, 20, 0.53)})
    assert verdict()[:2] == (NOT_RESOLVED, True)


def test_a_finished_run_with_another_config_is_never_overwritten(tmp_path, capsys):
    # a changed default (or setting) makes a finished run's config differ from the plan: training must refuse
    # rather than start it afresh over the finished run; --report leaves it out and says why
    from sosd.ablation.study_plan import phase_one, run_config
    from sosd.config import apply_overrides, dump_config

    sc, runs = StudyConfig.quick(), tmp_path / "runs"
    spec = phase_one(sc)[0]
    run_dir = runs / spec.name
    run_dir.mkdir(parents=True)
    dump_config(apply_overrides(run_config(sc, spec, str(runs)), ["train.channels_last=true"]),
                run_dir / "config.yaml")
    (run_dir / "metrics.json").write_text("{}")
    args = ["study", "--quick", "--out", str(tmp_path / "res"), "--runs", str(runs), "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "1 finished run(s)" in err and spec.name in err and "train.channels_last: True vs False" in err
    assert (run_dir / "metrics.json").read_text() == "{}"  # untouched
    assert main(args + ["--estimate", "--report"]) == 0
    assert "they are not counted" in capsys.readouterr().err


def test_a_method_on_sosd_is_paired_with_the_same_method_on_mtl():
    # the methods table's second part: SOSD-Net + method minus MTL + method, seed by seed; the third: the
    # methods_double rows against MTL at twice the budget
    from sosd.ablation.study_report import methods

    def run(row, seed, miou, disp, steps=10):
        return {"preset": "street", "row": row, "steps": steps, "seed": seed,
                "test": {"miou": miou, "disparity_mae_px": disp}}

    results = {}
    for s in range(5):
        jitter = 0.01 * s
        results.update({f"m{s}": run("mtl", s, 0.50 + jitter, 0.40),
                        f"n{s}": run("mtl_jd_nashmtl", s, 0.55 + jitter, 0.35 + 0.001 * s),
                        f"sn{s}": run("sosd_jd_nashmtl", s, 0.58 + jitter + 0.001 * s, 0.36),
                        # at twice the budget MTL catches up on segmentation
                        f"m2{s}": run("mtl", s, 0.60 + jitter, 0.30, 20),
                        f"n2{s}": run("mtl_jd_nashmtl", s, 0.60 + jitter + 0.001 * (s % 2), 0.29, 20)})
    rows = {m["row"]: m for m in methods(results, 10, schedule_row("step:1"), {})}
    later = rows["mtl_jd_nashmtl"]["metrics"]
    assert later["miou"]["vs_mtl_2b"]["verdict"] == NOT_RESOLVED and later["miou"]["vs_mtl"]["verdict"] == HOLDS
    assert later["disparity_mae_px"]["vs_mtl_2b"]["mean"] == pytest.approx(0.01)
    assert "vs_mtl_2b" not in rows["sosd_jd_nashmtl"]["metrics"]["miou"]
    sc = dataclasses.replace(StudyConfig(), parts=ALL_PARTS)
    twice = doubled(sc, schedule_row("step:1"), set())
    assert [(s.row.key, s.steps, s.seed) for s in twice] == [
        (k, 2000, s) for s in range(5) for k in ("mtl_jd_nashmtl", "mtl_jd_fairgrad")]
    top = rows["sosd_jd_nashmtl"]
    assert top["twin"] == "mtl_jd_nashmtl" and "twin" not in rows["mtl_jd_nashmtl"]
    miou, disp = top["metrics"]["miou"]["vs_twin"], top["metrics"]["disparity_mae_px"]["vs_twin"]
    assert miou["n"] == 5 and miou["mean"] == pytest.approx(0.032) and miou["verdict"] == HOLDS
    assert disp["mean"] == pytest.approx(-0.008) and disp["verdict"] == REVERSED  # lower error is better
    assert top["metrics"]["miou"]["vs_mtl"]["mean"] == pytest.approx(0.082)
