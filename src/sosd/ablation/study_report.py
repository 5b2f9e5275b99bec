"""The claims study's analysis and outputs: verdicts with paired intervals, Δm with intervals, convergence of
every row, the EM comparisons, Markdown, JSON and learning-curve plots."""
from __future__ import annotations

import math
import statistics
from pathlib import Path

from sosd.ablation.harness import delta_m
from sosd.provenance import describe
from sosd.eval.stats import NOT_RESOLVED, combine_verdicts, converged, mean_interval, paired
from sosd.ablation.study import row_metrics
from sosd.ablation.study_plan import SEG_METRICS, StudyConfig, claims, double_key, equal_updates_row
from sosd.ablation.tables import TABLES

DM_COLUMNS = {"street": TABLES["1"].columns, "indoor": TABLES["2"].columns + TABLES["3"].columns}
METRIC_TITLE = {"miou": "mIoU", "disparity_mae_px": "disparity error [px]", "rel": "rel"}


def _runs(results: dict, preset: str, row: str, steps: int) -> dict[int, dict]:
    return {r["seed"]: r for r in results.values() if r["preset"] == preset and r["row"] == row and r["steps"] == steps}


def _paired_rows(results, preset, steps, a, b, key, higher, steps_b=None, seeds=None):
    ra, rb = _runs(results, preset, a, steps), _runs(results, preset, b, steps_b or steps)
    common = sorted(set(ra) & set(rb))
    if not common:
        return None
    return paired([ra[s]["test"].get(key) for s in common], [rb[s]["test"].get(key) for s in common], higher)


def resolved_rows(sc: StudyConfig, results: dict, chosen) -> set[tuple[str, str]]:
    """(preset, row) of every claim resolved (holds or reversed) at the budget over all of the study's seeds:
    the rows the ``double`` part trains again at twice the budget."""
    out = set()
    for c in claims(chosen):
        complete = all(len(_runs(results, c["preset"], k, sc.budget)) >= sc.seeds for k in (c["better"], c["worse"]))
        p = _paired_rows(results, c["preset"], sc.budget, c["better"], c["worse"], c["metric"], c["higher_is_better"])
        if complete and p is not None and p.verdict != NOT_RESOLVED:
            out |= {(c["preset"], c["better"]), (c["preset"], c["worse"])}
    return out


def analyse(sc: StudyConfig, results: dict, chosen, schedule_scores: dict, costs: dict | None = None) -> dict:
    b = sc.budget
    out = {"study_config": {k: getattr(sc, k) for k in sc.__dataclass_fields__}, "chosen_schedule": chosen.key,
           "schedule_val_scores": schedule_scores, "rows": [], "claims": [], "em": [], "delta_m": []}
    # rows: test means, convergence on val
    for (preset, row, steps) in sorted({(r["preset"], r["row"], r["steps"]) for r in results.values()}):
        runs = _runs(results, preset, row, steps)
        any_run = next(iter(runs.values()))
        metrics = row_metrics(preset, row)
        conv = converged([r["val_curve"] for r in runs.values()], metrics, sc.tolerance)
        entry = {"preset": preset, "row": row, "name": any_run["row_name"], "steps": steps, "seeds": sorted(runs),
                 "convergence": conv, "train_seconds": sum(r["train_seconds"] or 0 for r in runs.values()),
                 "test": {}, "val_curves": {s: r["val_curve"] for s, r in runs.items()}}
        for key in sorted({k for r in runs.values() for k, v in r["test"].items()
                           if isinstance(v, (int, float)) and not k.startswith("n_")}):
            vals = [runs[s]["test"].get(key) for s in sorted(runs)]
            entry["test"][key] = {"mean": statistics.fmean(v for v in vals if v is not None), "runs": vals}
        out["rows"].append(entry)
    # claims: paired per seed at the budget, and again at twice the budget
    for c in claims(chosen):
        at_b = _paired_rows(results, c["preset"], b, c["better"], c["worse"], c["metric"], c["higher_is_better"])
        at_2b = _paired_rows(results, c["preset"], 2 * b, double_key(c["preset"], c["better"], chosen),
                             double_key(c["preset"], c["worse"], chosen), c["metric"], c["higher_is_better"])
        if at_b is None:
            continue
        # 2B judges only once all its seeds have finished: a partial 2B (one seed: no interval at all) is shown,
        # but cannot flip a verdict
        judged = at_2b is not None and at_2b.n >= sc.seeds
        verdict = combine_verdicts(at_b.verdict, at_2b.verdict) if judged else at_b.verdict
        out["claims"].append({**c, "at_budget": at_b.to_dict(), "at_double": at_2b.to_dict() if at_2b else None,
                              "verdict": verdict, "flipped": bool(judged and at_2b.verdict != at_b.verdict)})
    # Δm of every multi-task row against the single-task rows of the same seed (test scenes)
    for preset in ("street", "indoor"):
        for steps in (b, 2 * b):
            sem, dep = _runs(results, preset, "semantic_only", steps), _runs(results, preset, "depth_only", steps)
            for row in sorted({r["row"] for r in results.values() if r["preset"] == preset and r["steps"] == steps}
                              - {"semantic_only", "depth_only"}):
                runs = _runs(results, preset, row, steps)
                # the single-task reference of seed s: segmentation metrics of Semantic only, depth of Depth only
                dms = [delta_m(runs[s]["test"], {**dep[s]["test"], **{k: v for k, v in sem[s]["test"].items()
                                                                      if k in SEG_METRICS}}, DM_COLUMNS[preset])
                       for s in sorted(runs) if s in sem and s in dep]
                if dms:
                    m, lo, hi = mean_interval(dms)
                    out["delta_m"].append({"preset": preset, "row": row, "steps": steps, "mean": m, "lo": lo,
                                           "hi": hi, "runs": dms})
    # EM made fair: ESOSD vs SOSD at equal optimiser steps, and at equal updates per task
    for label, key_a, steps_a in (("equal optimiser steps", chosen.key, b),
                                  ("equal updates per task", equal_updates_row(chosen).key, 2 * b)):
        for metric, higher in (("miou", True), ("disparity_mae_px", False)):
            p = _paired_rows(results, "street", steps_a, key_a, "sosd", metric, higher, steps_b=b)
            if p:
                out["em"].append({"comparison": label, "metric": metric, "esosd_steps": steps_a, "sosd_steps": b,
                                  **p.to_dict()})
    out["methods"] = methods(results, b, chosen, costs or {})
    out["counterfactual"] = counterfactual(results, b, chosen)
    out["focal"] = focal(results, b)
    return out


def _per_seed(results, preset, row, steps, key, source="test") -> dict:
    return {s: r[source].get(key) if source == "test" else r["evals"][source].get(key)
            for s, r in _runs(results, preset, row, steps).items()
            if source == "test" or source in r.get("evals", {})}


def cost_label(row) -> str:
    """The row's name in benchmarks/train_step.py's output (``jd:<name>``; a scalarizer that shares an
    aggregator's name: ``jd:<name>-scalarizer``)."""
    from sosd.train.strategies.jd import AGGREGATORS

    if row.strategy != "jd":
        return row.strategy
    kind, _, name = next(o for o in row.overrides if o.startswith("train.jd.")).partition("=")
    return f"jd:{name}" + ("-scalarizer" if kind.endswith("scalarizer") and name in AGGREGATORS else "")


def methods(results: dict, b: int, chosen, costs: dict) -> list[dict]:
    """Table 4 extended: each method's test scores, its paired improvement over MTL and over ESOSD-Net (same
    seeds), and its step time and memory relative to joint."""
    from sosd.ablation.study_plan import MAIN_METRICS, method_rows

    def vs(row, other, key, higher):
        p = _paired_rows(results, "street", b, row.key, other, key, higher)
        return p.to_dict() if p else None

    extended = method_rows()
    out = []
    for row in [r for r in TABLES["4"].rows if r.key != "esosd"]:
        runs = _runs(results, "street", row.key, b)
        if not runs:
            continue
        entry = {"row": row.key, "name": row.name, "seeds": sorted(runs), "cost": costs.get(cost_label(row)),
                 "torchjd": row.strategy == "jd" or row.strategy in ("pcgrad", "aligned_mtl"),
                 "paper_row": row not in extended, "metrics": {}}
        # a method on the sosd variant against the same method on MTL: the paper's units on top of the method
        twin = "mtl" + row.key[len("sosd"):] if row.variant == "sosd" else None
        if twin:
            entry["twin"] = twin
        for key, higher in MAIN_METRICS["street"].items():
            vals = [r["test"].get(key) for r in runs.values()]
            entry["metrics"][key] = {"mean": statistics.fmean(v for v in vals if v is not None),
                                     "vs_mtl": vs(row, "mtl", key, higher), "vs_esosd": vs(row, chosen.key, key, higher),
                                     "vs_twin": vs(row, twin, key, higher) if twin else None}
            if (p2 := _paired_rows(results, "street", 2 * b, row.key, "mtl", key, higher)) is not None:
                entry["metrics"][key]["vs_mtl_2b"] = p2.to_dict()
        out.append(entry)
    return out


def counterfactual(results: dict, b: int, chosen) -> list[dict]:
    """SOSD-Net's (and ESOSD-Net's) gain over MTL on the standard and on the counterfactual street scenes,
    each a paired per-seed difference, and how much the gain shrinks (paired over seeds: standard − cf)."""
    from sosd.ablation.study_plan import MAIN_METRICS

    out = []
    for row in ("sosd", chosen.key):
        for key, higher in MAIN_METRICS["street"].items():
            sign = 1.0 if higher else -1.0
            gains = {}
            for tag, suffix in (("standard", ""), ("counterfactual", "_cf")):
                a = _per_seed(results, "street", row + suffix, b, key)
                m = _per_seed(results, "street", "mtl" + suffix, b, key)
                gains[tag] = {s: sign * (a[s] - m[s]) for s in a if s in m and a[s] is not None and m[s] is not None}
            seeds = sorted(set(gains["standard"]) & set(gains["counterfactual"]))
            if len(seeds) < 2:
                continue
            std, cf = [gains["standard"][s] for s in seeds], [gains["counterfactual"][s] for s in seeds]
            zero = [0.0] * len(seeds)
            out.append({"row": row, "metric": key, "seeds": seeds,
                        "gain_standard": paired(std, zero, True).to_dict(),
                        "gain_counterfactual": paired(cf, zero, True).to_dict(),
                        # "holds" = the gain shrank when size stopped following class
                        "shrink": paired(std, cf, True).to_dict()})
    return out


def focal(results: dict, b: int) -> list[dict]:
    """Focal-aware unit minus the paper's unit (improvement, paired per seed) at each evaluation focal."""
    out = []
    labels = sorted({lab for r in results.values() for lab in r.get("evals", {})})
    for lab in labels:
        for key, higher in (("rel", False), ("delta1", True), ("miou", True)):
            fa, pu = _per_seed(results, "indoor", "sosd_focal", b, key, lab), _per_seed(results, "indoor", "sosd", b, key, lab)
            seeds = sorted(set(fa) & set(pu))
            if len(seeds) >= 2:
                out.append({"eval": lab, "metric": key, "focal_aware": statistics.fmean(fa[s] for s in seeds),
                            "paper_unit": statistics.fmean(pu[s] for s in seeds),
                            **paired([fa[s] for s in seeds], [pu[s] for s in seeds], higher).to_dict()})
    return out


def _ci(p: dict, scale: float, digits: int) -> str:
    if p is None or p["n"] == 0:
        return "-"
    if math.isnan(p["lo"]):
        return f"{p['mean'] * scale:+.{digits}f} (n={p['n']})"
    return (f"{p['mean'] * scale:+.{digits}f} [{p['lo'] * scale:+.{digits}f}, {p['hi'] * scale:+.{digits}f}]"
            f" (n={p['n']})")


def row_name(analysis: dict, key: str) -> str:
    return next((r["name"] for r in analysis["rows"] if r["row"] == key), key)


def to_markdown(analysis: dict, env: dict, command: str, cpu_seconds: float) -> str:
    sc = analysis["study_config"]
    b = sc["budget"]
    partial = analysis.get("runs_finished", 0) < analysis.get("runs_planned", 0)
    lines = ["# What holds of the paper's claims (scene generator)", "",
             *([f"**Partial study: {analysis['runs_finished']} of {analysis['runs_planned']} runs have finished.** "
                "Intervals use the seeds finished so far (n in each cell's count); a claim whose rows have fewer "
                "than the planned seeds is provisional, and one not yet at twice the budget is not checked for "
                "flips. `sosd study` continues where this stopped.", ""] if partial else []),
             f"{sc['seeds']} seeds per row; every run {b} optimiser steps (the rows of every claim resolved at {b} "
             f"again at {2 * b}: the budget check), "
             f"cosine learning rate from {sc['lr']} to 0, street {sc['street_size'][0]}×{sc['street_size'][1]}, "
             f"indoor {sc['indoor_size'][0]}×{sc['indoor_size'][1]}, small backbone. Curves and every choice on "
             f"{sc['eval_size']} **val** scenes; every number below on {sc['eval_size']} **test** scenes.",
             "",
             "Each claim is a **paired difference per seed** (same seed = same initial weights and data order), "
             "as the improvement of the row the paper ranks ahead (positive = the paper's direction), with its "
             "95 % paired t interval (`scipy.stats.ttest_rel`). **holds**: the interval excludes 0 in the paper's "
             "direction; **reversed**: it excludes 0 the other way; **not resolved**: it contains 0, or the verdict "
             f"changes between {b} and {2 * b} steps (a claim not resolved at {b} is not trained again: doubling "
             "can only take a verdict away).", "",
             (f"EM phase schedule chosen on val: **{row_name(analysis, analysis['chosen_schedule'])}** "
              f"(val scores relative to every-step switching: "
              + ", ".join(f"{k} {v * 100:+.2f} %" for k, v in analysis["schedule_val_scores"].items()) + ")."
              if all(not math.isnan(v) for v in analysis["schedule_val_scores"].values()) else
              "EM phase schedule: **not chosen yet** (the sweep's runs have not all finished); Algorithm 1's "
              "every-step switching stands in for ESOSD-Net."), "",
             "| Table | Metric | Paper: better > worse (paper figures) | Improvement at "
             f"{b} steps [95 % CI] | at {2 * b} steps [95 % CI] | Verdict |", "|---|---|---|---|---|---|"]
    for c in analysis["claims"]:
        pb, pw = c["paper"]
        lines.append(f"| {c['table']} | {c['title']} | {row_name(analysis, c['better'])} > "
                     f"{row_name(analysis, c['worse'])} ({pb} vs {pw}) | {_ci(c['at_budget'], c['scale'], c['digits'] + 1)} "
                     f"| {_ci(c['at_double'], c['scale'], c['digits'] + 1)} | **{c['verdict']}**"
                     f"{' (flips with the budget)' if c['flipped'] else ''} |")
    counts = {v: sum(c["verdict"] == v for c in analysis["claims"]) for v in ("holds", "reversed", NOT_RESOLVED)}
    lines += ["", "Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items()), ""]
    if analysis["delta_m"]:
        lines += ["## Δm (multi-task gain over the single-task rows of the same seed, %, test scenes)", "",
                  "| Preset | Row | Steps | Δm [95 % CI] |", "|---|---|---|---|"]
        for d in analysis["delta_m"]:
            ci = f"[{d['lo']:+.2f}, {d['hi']:+.2f}]" if not math.isnan(d["lo"]) else ""
            lines.append(f"| {d['preset']} | {row_name(analysis, d['row'])} | {d['steps']} | {d['mean']:+.2f} {ci} |")
        lines.append("")
    if analysis["em"]:
        lines += ["## EM made fair: ESOSD-Net minus SOSD-Net (improvement, test scenes)", "",
                  "| Comparison | Metric | ESOSD steps | SOSD steps | Improvement [95 % CI] | Verdict |",
                  "|---|---|---|---|---|---|"]
        for e in analysis["em"]:
            scale, dg = (100.0, 2) if e["metric"] == "miou" else (1.0, 3)
            lines.append(f"| {e['comparison']} | {METRIC_TITLE.get(e['metric'], e['metric'])} | {e['esosd_steps']} | "
                         f"{e['sosd_steps']} | {_ci(e, scale, dg)} | {e['verdict']} |")
        lines.append("")
    if analysis.get("methods"):
        lines += ["## Table 4, every method (street, test scenes)", "",
                  "Each method's improvement over MTL and over ESOSD-Net of the same seed (paired, 95 % t interval; "
                  "verdict in brackets: + holds, − reversed, ? not resolved). Step time and memory relative to "
                  "joint training from `benchmarks/train_step.py` (sosd variant, 64×128, batch 8, 1 thread, "
                  "measured side by side).", "",
                  "| Method | torchjd | seeds | mIoU [%] | disparity [px] | mIoU vs MTL | disparity vs MTL | "
                  "mIoU vs ESOSD-Net | disparity vs ESOSD-Net | time × joint | memory × joint |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        mark = {"holds": "+", "reversed": "−", NOT_RESOLVED: "?"}
        scales = {"miou": (100.0, 2), "disparity_mae_px": (1.0, 3)}

        def cell(m, key, k):
            p = m["metrics"][key].get(k)
            return f"{_ci(p, *scales[key])} ({mark[p['verdict']]})" if p else "-"

        for m in analysis["methods"]:
            cells = [cell(m, key, k) for k in ("vs_mtl", "vs_esosd") for key in scales]  # the header's column order
            cost = m["cost"] or (None, None)
            lines.append(f"| {m['name']} | {'yes' if m['torchjd'] else 'ours'} | {len(m['seeds'])} | "
                         f"{m['metrics']['miou']['mean'] * 100:.1f} | {m['metrics']['disparity_mae_px']['mean']:.3f} | "
                         + " | ".join(cells) + " | " + " | ".join(f"{v:.2f}" if v else "-" for v in cost) + " |")
        lines.append("")
        twins = [m for m in analysis["methods"] if m.get("twin")]
        if twins:
            lines += ["The paper's units on top of a method: the method on SOSD-Net minus the same method on MTL (same "
                      "seed, paired; SOSD-Net minus MTL under joint training is Table 1's claim above).", "",
                      "| Method | mIoU [points] | disparity [px] |", "|---|---|---|"]
            for m in twins:
                lines.append(f"| {m['name']} vs {row_name(analysis, m['twin'])} | "
                             + " | ".join(cell(m, key, "vs_twin") for key in scales) + " |")
            lines.append("")
        at_2b = [m for m in analysis["methods"] if any("vs_mtl_2b" in v for v in m["metrics"].values())]
        if at_2b:
            lines += [f"At twice the budget ({2 * b} steps): improvement over MTL of the same seed there, beside the "
                      f"same at {b}, for the rows trained at {2 * b} (the paper's Table 4 rows in the `double` part, "
                      "the `methods_double` rows).", "",
                      f"| Method | mIoU at {b} | mIoU at {2 * b} | disparity at {b} | disparity at {2 * b} |",
                      "|---|---|---|---|---|"]
            for m in at_2b:
                lines.append(f"| {m['name']} | "
                             + " | ".join(cell(m, key, k) for key in scales for k in ("vs_mtl", "vs_mtl_2b")) + " |")
            lines.append("")
    if analysis.get("counterfactual"):
        lines += ["## Counterfactual: object size no longer follows class (street)", "",
                  "Gain over MTL of the same seed (improvement, paired), on the standard scenes and on scenes whose "
                  "object sizes are drawn independently of their class; *shrink* = standard gain − counterfactual "
                  "gain (paired over seeds). If semantic objectness is why SOSD-Net helps, the gain must shrink.", "",
                  "| Row | Metric | Gain, standard [95 % CI] | Gain, counterfactual [95 % CI] | Shrink [95 % CI] | "
                  "Shrink verdict |", "|---|---|---|---|---|---|"]
        for c in analysis["counterfactual"]:
            scale, dg = (100.0, 2) if c["metric"] == "miou" else (1.0, 3)
            lines.append(f"| {row_name(analysis, c['row'])} | {METRIC_TITLE.get(c['metric'], c['metric'])} | "
                         f"{_ci(c['gain_standard'], scale, dg)} | {_ci(c['gain_counterfactual'], scale, dg)} | "
                         f"{_ci(c['shrink'], scale, dg)} | {c['shrink']['verdict']} |")
        lines.append("")
    if analysis.get("focal"):
        lines += ["## Focal length: focal-aware unit vs the paper's BatchNorm-only unit (indoor, test scenes)", "",
                  "Trained at focal ×1, evaluated at each focal multiplier; improvement of the focal-aware unit "
                  "(paired per seed).", "",
                  "| Evaluated at | Metric | paper unit | focal-aware | Improvement [95 % CI] | Verdict |",
                  "|---|---|---|---|---|---|"]
        for f in analysis["focal"]:
            lines.append(f"| {f['eval']} | {f['metric']} | {f['paper_unit']:.3f} | {f['focal_aware']:.3f} | "
                         f"{_ci(f, 1.0, 3)} | {f['verdict']} |")
        lines.append("")
    lines += ["## Rows: test means and convergence on val", "",
              f"Converged: every main metric of the mean-over-seeds val curve gained less than "
              f"{sc['tolerance'] * 100:.0f} % (relative) over the last quarter of the budget. Under a cosine "
              f"schedule that decays to 0 the last quarter runs at small learning rates, so this is a weak "
              f"test: compare a row's scores at B and 2B to see whether it has plateaued.", "",
              "| Preset | Row | Steps | mIoU [%] | disparity [px] / rel | Gain over last quarter | Converged | "
              "CPU s (all seeds) |", "|---|---|---|---|---|---|---|---|"]
    for r in analysis["rows"]:
        t = r["test"]
        dep = "disparity_mae_px" if r["preset"] == "street" else "rel"
        miou = f"{t['miou']['mean'] * 100:.1f}" if "miou" in t and r["row"] != "depth_only" else "-"
        dv = f"{t[dep]['mean']:.3f}" if dep in t and r["row"] != "semantic_only" else "-"
        conv = r["convergence"]
        gain = ", ".join(f"{METRIC_TITLE.get(k, k)} {v * 100:+.1f} %" for k, v in conv["gain"].items())
        mark = {True: "yes", False: "**NO**", None: "-"}[conv["converged"]]
        lines.append(f"| {r['preset']} | {r['name']} | {r['steps']} | {miou} | {dv} | {gain} | {mark} | "
                     f"{r['train_seconds']:.0f} |")
    lines += ["", f"CPU time of the study's training runs (sum over runs): {cpu_seconds / 3600:.2f} h.",
              describe(env), "", f"Command: `{command}`", ""]
    return "\n".join(lines)


def plot_curves(rows: list[dict], metrics: dict, title: str, path: Path) -> bool:
    """One panel per metric (key -> higher is better): each row's mean val curve over seeds, min-max band.
    A row is a dict with "name", "val_curves" (list, or dict seed -> curve) and "convergence". A row keeps
    its colour in every panel (a single-task row has no curve for the other task), one legend serves all,
    and error metrics (lower is better) use a log axis so the late differences stay visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return False
    palette = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20").colors
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    handles = {}
    for ax, (key, higher) in zip(axes[0], metrics.items()):
        for i, r in enumerate(rows):
            curves = r["val_curves"].values() if isinstance(r["val_curves"], dict) else r["val_curves"]
            curves = [c for c in curves if c and key in c[-1] and not math.isnan(c[-1][key])]
            if not curves:
                continue
            xs = sorted({p["step"] for c in curves for p in c})
            per = [[p[key] for c in curves for p in c if p["step"] == x] for x in xs]
            late = r.get("convergence", {}).get("converged") is False
            color = palette[i % len(palette)]
            line, = ax.plot(xs, [statistics.fmean(v) for v in per], marker=".", color=color,
                            linestyle="--" if i >= len(palette) else "-")
            ax.fill_between(xs, [min(v) for v in per], [max(v) for v in per], alpha=0.15, color=color)
            handles.setdefault(r["name"] + (" (not converged)" if late else ""), line)
        if not higher:
            from matplotlib.ticker import FormatStrFormatter

            ax.set_yscale("log")
            for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                axis(FormatStrFormatter("%.2g"))
        ax.set_xlabel("optimiser step")
        ax.set_title(f"{METRIC_TITLE.get(key, key)} on val ({'higher' if higher else 'lower'} is better"
                     f"{', log axis' if not higher else ''})", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(3, len(handles)), fontsize=7,
               frameon=False)
    fig.suptitle(title + " (mean over seeds, band: min-max)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05 + 0.035 * math.ceil(len(handles) / 3), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_methods(methods: list[dict], path: Path, reference: list[dict] = (), budget: int | None = None) -> bool:
    """Table 4 as a forest plot: per method, its paired improvement over MTL (same seeds) with the 95 %
    interval, one panel per main street metric (positive = better), methods sorted by their mIoU gain;
    green = holds, red = reversed, grey = not resolved; the number of pairs follows each name. ``reference``
    rows (the paper's SOSD-Net and ESOSD-Net, same shape) go on top, above a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [m for m in methods if m["metrics"]["miou"]["vs_mtl"]]
    if not rows:
        return False
    rows.sort(key=lambda m: m["metrics"]["miou"]["vs_mtl"]["mean"])
    n_methods = len(rows)
    rows += [m for m in reference if m["metrics"]["miou"]["vs_mtl"]]
    panels = {"miou": ("mIoU [points]", 100.0), "disparity_mae_px": ("disparity error [px]", 1.0)}
    colour = {"holds": "tab:green", "reversed": "tab:red"}
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 1.2 + 0.28 * len(rows)), sharey=True, squeeze=False)
    ys = range(len(rows))
    for ax, (key, (label, scale)) in zip(axes[0], panels.items()):
        for y, m in zip(ys, rows):
            p = m["metrics"][key]["vs_mtl"]
            if not p or p["n"] == 0:
                continue
            lo, hi = (p["lo"], p["hi"]) if not math.isnan(p["lo"]) else (p["mean"], p["mean"])
            c = colour.get(p["verdict"], "tab:gray")
            ax.plot([lo * scale, hi * scale], [y, y], color=c, linewidth=2)
            ax.plot([p["mean"] * scale], [y], "o", color=c, markersize=4)
        ax.axvline(0.0, color="black", linewidth=0.8)
        if n_methods < len(rows):
            ax.axhline(n_methods - 0.5, color="black", linewidth=0.6, linestyle="--")
        ax.set_xlabel(f"improvement over MTL, {label} (positive = better)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(list(ys))
    axes[0][0].set_yticklabels([f"{m['name']} (n={m['metrics']['miou']['vs_mtl']['n']})" for m in rows], fontsize=7)
    at = f" after {budget} steps" if budget else ""
    fig.suptitle(f"street, test scenes{at}: each method minus MTL of the same seed, 95 % paired t interval "
                 f"(green holds, red reversed, grey not resolved)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def reference_rows(analysis: dict, chosen) -> list[dict]:
    """SOSD-Net and ESOSD-Net against MTL on street at the budget, from the claims, in ``plot_methods``'s shape."""
    out = []
    for key, name in (("sosd", "SOSD-Net"), (chosen.key, "ESOSD-Net")):
        found = {c["metric"]: c["at_budget"] for c in analysis.get("claims", [])
                 if c["preset"] == "street" and c["better"] == key and c["worse"] == "mtl"}
        if "miou" in found:
            out.append({"name": f"{name} (paper)",
                        "metrics": {k: {"vs_mtl": found.get(k)} for k in ("miou", "disparity_mae_px")}})
    return out


def curve_groups(analysis: dict, budget: int, chosen) -> dict:
    """The study's learning-curve pictures, one question each: file stem -> (title, rows); ``chosen``: the
    EM schedule's row, which stands for ESOSD-Net among the paper's rows."""
    from sosd.ablation.study_plan import claim_rows, method_rows

    claim = {k for _, k in claim_rows(chosen)}
    methods = {r.key for r in method_rows()}
    out = {}
    for preset in ("street", "indoor"):
        rows = [r for r in analysis["rows"] if r["preset"] == preset and r["steps"] == budget]
        out[f"curves_{preset}"] = (f"{preset}: the paper's rows", [r for r in rows if r["row"] in claim])
        if preset == "street":  # the schedule sweep runs on street
            out["curves_street_em"] = ("street: EM phase schedules (SOSD-Net: joint training)",
                                       [r for r in rows if r["row"] == "sosd" or r["row"].startswith("esosd")
                                        and not r["row"].endswith(("_cf", "_equal"))])
        out[f"curves_{preset}_counterfactual"] = (f"{preset}: sizes independent of class",
                                                  [r for r in rows if r["row"].endswith("_cf")])
        out[f"curves_{preset}_methods"] = (f"{preset}: Table 4, every method", [r for r in rows if r["row"] in methods])
        out[f"curves_{preset}_focal"] = (f"{preset}: focal-aware unit", [r for r in rows if r["row"] in ("sosd", "sosd_focal")])
    return {k: v for k, v in out.items() if v[1] and (not k.endswith("_focal") or len(v[1]) == 2)}
