"""What holds of the paper's claims: train every row of Tables 1-4 on the scene generator over seeds at a
converging budget, and judge each claim of the paper by a paired per-seed difference with its 95 % interval.

  sosd study --estimate            # print the plan and its estimated CPU time, train nothing
  sosd study                       # the whole study (resumes run by run after an interruption)
  sosd study --parts street        # only Tables 1/4 rows and the EM schedule sweep; add parts later
  sosd study --quick --out /tmp/q  # tiny budget and images: checks the machinery in a minute

Design (``sosd.ablation.study_plan``): cosine learning rate annealing to 0 within the budget; every run
scored every budget/8 steps on the generator's val scenes (learning curves, convergence check, the choice
of the EM phase schedule) and once at the end on its test scenes (every reported number); every row
again at twice the budget, and a claim whose verdict changes is "not resolved". Writes
``<out>/claims.md``, ``study.json`` (every seed's numbers and curves), ``curves_<preset>*.png`` and
``methods_street.png`` (Table 4 as a forest plot of paired intervals); run
folders go to ``--runs`` (default results/study/runs; only their small files are kept in git).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sosd.ablation.study_plan import ALL_PARTS, StudyConfig

    d = StudyConfig()
    p.add_argument("--seeds", type=int, default=d.seeds, help=f"seeds per row (default {d.seeds})")
    p.add_argument("--budget", type=int, default=d.budget,
                   help=f"optimiser steps per run (default {d.budget}; the 'double' part trains 2x)")
    p.add_argument("--parts", nargs="+", default=list(d.parts), choices=list(ALL_PARTS),
                   help="what to train (default: the claims study, every part but methods). street: Tables 1/4 + "
                        "EM schedule sweep (always needed: the schedule is chosen on its val curves); indoor: "
                        "Tables 2/3; em: equal updates per task; double: the rows of every claim resolved at the budget, at "
                        "twice the budget; "
                        "counterfactual: sizes independent of class; focal: the focal-length table; methods: "
                        "Table 4 with every multi-task method (~150 more runs)")
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each (default 2)")
    p.add_argument("--first", nargs="+", default=[], metavar="PRESET:ROW",
                   help="train these rows first, every seed of one before the next (e.g. street:mtl "
                        "street:sosd): a study stopped early then has whole claims; the runs are the same")
    p.add_argument("--quick", action="store_true", help="tiny images, 4 steps, 2 seeds: a smoke test")
    p.add_argument("--estimate", action="store_true", help="print the plan and the estimated time, then stop")
    p.add_argument("--report", action="store_true",
                   help="train nothing: write the tables from the runs finished so far (intervals over the seeds "
                        "that have finished; a partial study says how many)")
    p.add_argument("--out", default="results/study", help="tables, JSON, plots (default results/study)")
    p.add_argument("--runs", default="results/study/runs",
                   help="run folders (default results/study/runs: their config.yaml, metrics.json and "
                        "test_metrics.json are kept in git, so a fresh clone resumes the study where it stopped)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# benchmarks/train_step.py at the study's size, in the repository this package runs from (absent elsewhere)
COST_FILE = Path(__file__).resolve().parents[3] / "results" / "train_step_xception_small_64x128_b8.json"


def method_costs(path: Path = COST_FILE) -> dict:
    """Step time and memory of each method relative to joint (label -> (time, memory)), measured side by side
    by ``benchmarks/train_step.py``; empty when that file is absent."""
    import json

    p = Path(path)
    if not p.is_file():
        return {}
    rows = json.loads(p.read_text()).get("rows", [])
    return {r["strategy"]: (r.get("interleaved_vs_joint", r.get("time_vs_joint")), r.get("memory_vs_joint"))
            for r in rows if "memory_vs_joint" in r}


def run(args) -> int:
    import dataclasses
    import json
    import shlex
    import sys
    import time
    from pathlib import Path

    from sosd.ablation.study import (calibrated_step_seconds, choose_schedule, estimate_seconds, finished,
                                     measure_step, run_specs, stale)
    from sosd.ablation.study_plan import (ALL_PARTS, MAIN_METRICS, StudyConfig, claim_rows, dedupe, doubled,
                                          phase_one, phase_two, prioritise, schedule_row)
    from sosd.ablation.study_report import (analyse, curve_groups, plot_curves, plot_methods, reference_rows,
                                            resolved_rows, to_markdown)
    from sosd.errors import SOSDError
    from sosd.provenance import env_info

    sc = StudyConfig.quick() if args.quick else StudyConfig()
    if not args.quick:
        sc = dataclasses.replace(sc, seeds=args.seeds, budget=args.budget)
    sc = dataclasses.replace(sc, parts=tuple(args.parts) if "street" in args.parts else ("street", *args.parts))
    if sc.seeds < 2 or sc.budget < sc.val_points:
        raise SOSDError(f"--seeds must be >= 2 (paired intervals) and --budget >= {sc.val_points}")
    out, runs = Path(args.out), Path(args.runs)
    try:
        out.mkdir(parents=True, exist_ok=True)
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SOSDError(f"cannot write the study's folders {out} / {runs}: {e}") from e

    first = phase_one(sc)
    # the schedule chosen so far (Algorithm 1's until the sweep has finished): the same number of runs either way
    chosen = schedule_row(choose_schedule(sc, {s.name: r for s in first if (r := finished(sc, s, str(runs)))})[0])
    # at most: the double part trains only the rows of claims resolved at the budget
    plan = dedupe(first + phase_two(sc, chosen) + doubled(sc, chosen, claim_rows(chosen)))
    done = {s.name: r for s in plan if (r := finished(sc, s, str(runs)))}
    unknown = [f for f in args.first if f not in {f"{s.preset}:{s.row.key}" for s in plan}]
    if unknown:
        raise SOSDError(f"--first: {', '.join(unknown)} is not a row of this study's plan; its rows: "
                        + ", ".join(sorted({f"{s.preset}:{s.row.key}" for s in plan})))
    todo = [s for s in plan if s.name not in done]
    if changed := stale(sc, todo, str(runs)):
        name, diff = next(iter(changed.items()))
        msg = (f"{len(changed)} finished run(s) in {runs} were trained with another config than this study "
               f"plans, e.g. {name}: {'; '.join(diff[:3])} (the run's value vs the plan's)")
        if not args.report:
            raise SOSDError(msg + ". Training would overwrite them: restore those settings (did a default "
                            "change?) or give another --runs folder")
        print(f"sosd study: note: {msg}; they are not counted", file=sys.stderr, flush=True)
    counts = (f"sosd study: at most {len(plan)} runs ({sc.seeds} seeds, budget {sc.budget}), "
              f"{sum(s.steps for s in plan)} optimiser steps; {len(done)} finished in {runs} (reused), {len(todo)} "
              f"to train ({sum(s.steps for s in todo)} steps)")
    step_s, est = {}, None
    if args.report:  # trains nothing: no step to time (timing one beside running studies takes minutes)
        print(counts + ".", flush=True)
    else:
        step_s = {p: measure_step(sc, p) for p in ("street", "indoor")}
        calibrated = calibrated_step_seconds(plan, done)
        est = estimate_seconds(sc, todo, args.jobs, step_s)
        print(counts + ". A joint step alone takes "
              + ", ".join(f"{p} {v:.2f} s" for p, v in step_s.items())
              + f" here: estimated {est / 3600:.1f} h wall with {args.jobs} parallel runs "
              f"({est * args.jobs / 3600:.1f} CPU-core hours)", flush=True, end="")
        if calibrated:  # a preset with no finished run yet: the other's ratio of real to measured step time
            ratio = sum(v / step_s[p] for p, v in calibrated.items()) / len(calibrated)
            calibrated = {p: calibrated.get(p, step_s[p] * ratio) for p in step_s}
            cal = estimate_seconds(sc, todo, 1, calibrated, overhead=1.0) / args.jobs
            print(f"; at the pace of the finished runs ({', '.join(f'{p} {v:.2f} s' for p, v in calibrated.items())} "
                  f"a step, parallel runs slowing each other included): {cal / 3600:.1f} h wall", end="")
        print(".", flush=True)
    if args.estimate:
        return 0

    t0 = time.time()
    if args.report:
        results = {s.name: r for s in first if (r := finished(sc, s, str(runs)))}
    else:
        results = run_specs(sc, first, runs, args.jobs, not args.no_progress)
    best, scores = choose_schedule(sc, results)
    chosen = schedule_row(best)
    print(f"EM schedule chosen on val scenes: {chosen.name}", flush=True)
    later = phase_two(sc, chosen)
    if args.report:
        # every finished run of any part is reported (the methods table too); the plan counts the chosen parts
        everything = phase_two(dataclasses.replace(sc, parts=ALL_PARTS), chosen)
        everything += doubled(dataclasses.replace(sc, parts=ALL_PARTS), chosen, claim_rows(chosen))
        results.update({s.name: r for s in everything if (r := finished(sc, s, str(runs)))})
        twice = doubled(sc, chosen, resolved_rows(sc, results, chosen))
    else:
        results.update(run_specs(sc, prioritise(later, args.first), runs, args.jobs, not args.no_progress))
        # twice the budget for the rows of the claims resolved at the budget (seeds all finished)
        twice = doubled(sc, chosen, resolved_rows(sc, results, chosen))
        results.update(run_specs(sc, prioritise(twice, args.first), runs, args.jobs, not args.no_progress))
    planned = {s.name for s in first + later + twice}
    if args.report:
        print(f"report on the {len(planned & set(results))} of {len(planned)} runs finished so far", flush=True)

    analysis = analyse(sc, results, chosen, scores, costs=method_costs())
    analysis["runs_finished"], analysis["runs_planned"] = len(planned & set(results)), len(planned)
    env = env_info()
    cpu_s = sum(r["train_seconds"] or 0 for r in results.values())
    argv = sys.argv[sys.argv.index("study") + 1:] if "study" in sys.argv else []
    command = "sosd study " + " ".join(shlex.quote(a) for a in argv)
    md = to_markdown(analysis, env, command, cpu_s)
    (out / "claims.md").write_text(md)
    (out / "study.json").write_text(json.dumps({"env": env, "command": command, "wall_seconds": time.time() - t0,
                                                "cpu_seconds_training": cpu_s, "estimate_seconds": est,
                                                "step_seconds": step_s, **analysis}, indent=1, default=str))
    pictures = []
    for old in [*out.glob("curves_*.png"), *out.glob("methods_*.png")]:  # an earlier report's, maybe without runs now
        old.unlink()
    if plot_methods(analysis.get("methods") or [], out / "methods_street.png", reference_rows(analysis, chosen),
                    sc.budget):
        pictures.append("methods_street.png")
    for stem, (title, rows) in curve_groups(analysis, sc.budget, chosen).items():
        preset = "street" if "street" in stem else "indoor"
        if plot_curves(rows, MAIN_METRICS[preset], f"{title}: val learning curves, {sc.budget}-step cosine budget",
                       out / f"{stem}.png"):
            pictures.append(f"{stem}.png")
    print(md)
    print(f"wrote {out}/claims.md, study.json, " + ", ".join(pictures))
    return 0
