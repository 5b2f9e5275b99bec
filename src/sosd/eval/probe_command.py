"""Probe the semantic-to-depth unit of trained SOSD-Nets against the scene generator's ground truth (eq. 3).

  sosd probe --checkpoint runs/study/sosd-b1000-seed{0..4} --untrained --control runs/study/mtl-b1000-seed{0..4}
  sosd probe --checkpoint RUN --figure 3 --out results/probe

For every unoccluded object of at least --min-px pixels in the run's test scenes: Spearman ρ of the unit's
``area_3d`` with the object's physical area ΔXΔY, of ``area_2d`` with 1/(ΔuΔv), of the cue with its depth d
(overall and per class), a cross-validated linear probe of the depth-path features for log ΔXΔY,
log 1/(ΔuΔv) and log d, and the depth error with the cue replaced by its mean. Several checkpoints (seeds)
give a mean and a 95 % t interval. Controls: ``--untrained`` (each checkpoint's network at its initial
weights) and ``--control`` (other runs, e.g. MTL: linear probe only, it has no unit). ``--figure N`` draws
Fig. 8 of the paper for N scenes of the first checkpoint. Writes probe.json / probe.md (and probe_fig8.png).
"""
from __future__ import annotations

import argparse
import math

from sosd.eval.probe import MAPS
from sosd.provenance import describe


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sosd.eval.probe import ProbeConfig

    d = ProbeConfig()
    p.add_argument("--checkpoint", nargs="+", required=True, help="SOSD-Net run folders (one per seed)")
    p.add_argument("--control", nargs="*", default=[], help="runs without the unit (e.g. MTL) for the linear probe")
    p.add_argument("--untrained", action="store_true", help="also probe each checkpoint's network untrained")
    p.add_argument("--scenes", type=int, default=d.scenes, help=f"test scenes probed (default {d.scenes})")
    p.add_argument("--min-px", type=int, default=d.min_px, help=f"smallest object in pixels (default {d.min_px})")
    p.add_argument("--figure", type=int, default=0, metavar="N", help="draw Fig. 8 for N scenes (default none)")
    p.add_argument("--out", default="results/probe", help="output folder (default results/probe)")


def probe_one(model, cfg, pc, scenes) -> dict:
    from sosd.data import build_dataset
    from sosd.eval.probe import correlations, cue_contribution, object_table

    res = correlations(object_table(model, scenes, pc.min_px), pc)
    res["cue_contribution"] = cue_contribution(model, build_dataset(cfg.data, "test"))
    return res


def summarise(group: list[dict]) -> dict:
    """Mean and 95 % interval over the checkpoints (seeds) of one group, per reported quantity."""
    from sosd.eval.stats import mean_interval as interval  # skips missing and non-finite values

    out = {}
    for key in ("area_3d", "area_2d", "cue"):
        vals = [g["overall"].get(key) for g in group if key in g["overall"]]
        if vals:
            out[f"rho_{key}"] = interval(vals)
    for key in ("log_area_3d", "log_inv_area_2d", "log_depth"):
        vals = [g["linear_probe"][key]["r2"] for g in group if key in g["linear_probe"]]
        if vals:
            out[f"r2_{key}"] = interval(vals)
    cc = [g["cue_contribution"] for g in group if g.get("cue_contribution")]
    if cc:
        out["error_model"] = interval([c["model"] for c in cc])
        out["error_cue_mean"] = interval([c["cue replaced by its mean"] for c in cc])
        out["error_increase"] = interval([c["cue replaced by its mean"] - c["model"] for c in cc])
    return out


def class_summary(group: list[dict]) -> dict:
    """Per class: objects, and the mean ρ of each map over the checkpoints with its 95 % interval."""
    from sosd.eval.stats import mean_interval as interval

    out = {}
    for cls in sorted({c for g in group for c in g["per_class"]}):
        entries = [g["per_class"][cls] for g in group if cls in g["per_class"]]
        out[cls] = {"n": entries[0]["n"], **{k: interval([e.get(k) for e in entries]) for k in MAPS}}
    return out


def comparisons(groups: dict) -> list[dict]:
    """Paired differences over seeds (checkpoints passed in the same seed order): the trained unit against
    its own initial weights (ρ), and SOSD-Net's depth-path features against each control's (linear probe)."""
    from sosd.eval.stats import paired

    trained, rows = groups["SOSD-Net (trained)"], []

    def add(label, other, get):
        a, b = [get(g) for g in trained], [get(g) for g in other]
        if len(a) == len(b) and all(v is not None for v in a + b):
            rows.append({"comparison": label, **paired(a, b, higher_is_better=True).to_dict()})

    for key, title in (("area_3d", "ρ(area_3d, ΔXΔY)"), ("area_2d", "ρ(area_2d, 1/ΔuΔv)"), ("cue", "ρ(cue, d)")):
        if "SOSD-Net (untrained)" in groups:
            add(f"{title}: trained − untrained", groups["SOSD-Net (untrained)"], lambda g: g["overall"].get(key))
    for name, other in groups.items():
        if name.endswith("(control)"):
            for key, title in (("log_area_3d", "log ΔXΔY"), ("log_inv_area_2d", "log 1/ΔuΔv"), ("log_depth", "log d")):
                add(f"linear probe R² {title}: SOSD-Net − {name.removesuffix(' (control)')}", other,
                    lambda g: g["linear_probe"].get(key, {}).get("r2"))
    return rows


def _fmt(t) -> str:
    m, lo, hi = t
    if math.isnan(m):
        return "-"
    return f"{m:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else "")


def to_markdown(groups: dict, summaries: dict, meta: dict) -> str:
    cols = [("rho_area_3d", "ρ(area_3d, ΔXΔY)"), ("rho_area_2d", "ρ(area_2d, 1/ΔuΔv)"), ("rho_cue", "ρ(cue, d)"),
            ("r2_log_area_3d", "linear probe R² log ΔXΔY"), ("r2_log_inv_area_2d", "R² log 1/ΔuΔv"),
            ("r2_log_depth", "R² log d"), ("error_model", "depth error"),
            ("error_cue_mean", "… cue → its mean"), ("error_increase", "increase")]
    lines = ["# Semantic objectness probe (eq. 3)", "",
             f"{meta['objects']} objects (unoccluded, inside the image, ≥ {meta['min_px']} px) in {meta['scenes']} "
             f"test scenes of `{meta['preset']}` at {meta['size'][0]}×{meta['size'][1]}; Spearman ρ over objects; "
             "mean over checkpoints (seeds) [95 % t interval]. Depth error: "
             f"{meta['error_metric']} on the run's test scenes.", "",
             "| Group | n | " + " | ".join(t for _, t in cols) + " |", "|---|---|" + "---|" * len(cols)]
    for name, s in summaries.items():
        lines.append(f"| {name} | {len(groups[name])} | " + " | ".join(_fmt(s[k]) if k in s else "-" for k, _ in cols)
                     + " |")
    if meta.get("comparisons"):
        lines += ["", "Paired differences over seeds (same seed on both sides), mean [95 % paired t interval]; "
                  "*holds* when the interval excludes 0:", "", "| Comparison | n | difference | verdict |",
                  "|---|---|---|---|"]
        for c in meta["comparisons"]:
            lines.append(f"| {c['comparison']} | {c['n']} | {_fmt((c['mean'], c['lo'], c['hi']))} | {c['verdict']} |")
    name = next(iter(groups))
    per_class = class_summary(groups[name])
    if per_class:
        lines += ["", f"Per class (`{name}`, mean over its {len(groups[name])} checkpoint(s) [95 % t interval]): "
                  "ρ within each class, where semantics no longer tells size", "",
                  "| Class | objects | ρ(area_3d, ΔXΔY) | ρ(area_2d, 1/ΔuΔv) | ρ(cue, d) |", "|---|---|---|---|---|"]
        for cls, v in per_class.items():
            lines.append(f"| {cls} | {v['n']} | " + " | ".join(_fmt(v[k]) for k in MAPS) + " |")
    lines += ["", "The unit's two branches enter the cue only as their product, so each branch's sign is defined only "
              "jointly: ρ(area_3d, ΔXΔY) and ρ(area_2d, 1/ΔuΔv) both negative is eq. (3) as much as both positive; "
              "ρ(cue, d) is the test of the whole unit.", "", f"Command: `{meta['command']}`", "",
              *([describe(meta["env"]), ""] if meta.get("env") else [])]
    return "\n".join(lines)


def run(args) -> int:
    import json
    import shlex
    import sys
    from pathlib import Path

    import torch

    from sosd.errors import SOSDError
    from sosd.eval.probe import ProbeConfig, probe_scenes
    from sosd.provenance import env_info
    from sosd.models import build_model
    from sosd.checkpoint import load_model

    pc = ProbeConfig(scenes=args.scenes, min_px=args.min_px)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SOSDError(f"cannot write the probe's output folder {out}: {e}") from e
    groups: dict[str, list] = {"SOSD-Net (trained)": []}
    scenes, cfg0 = None, None
    for path in args.checkpoint:
        model, cfg = load_model(path)
        if cfg.model.variant != "sosd":
            raise SOSDError(f"{path} is a '{cfg.model.variant}' model: the probe needs SOSD-Net's semantic-to-depth "
                            "unit (pass MTL runs with --control)")
        if scenes is None:
            cfg0 = cfg
            scenes = probe_scenes(cfg, pc.scenes)
        groups["SOSD-Net (trained)"].append(probe_one(model, cfg, pc, scenes))
        if args.untrained:
            torch.manual_seed(cfg.train.seed)  # the initial weights of that run (Trainer seeds the same way)
            groups.setdefault("SOSD-Net (untrained)", []).append(probe_one(build_model(cfg.model), cfg, pc, scenes))
    for path in args.control:
        model, cfg = load_model(path)
        groups.setdefault(f"{cfg.model.variant} (control)", []).append(probe_one(model, cfg, pc, scenes))
    summaries = {name: summarise(g) for name, g in groups.items()}
    argv = sys.argv[sys.argv.index("probe") + 1:] if "probe" in sys.argv else []
    meta = {"objects": groups["SOSD-Net (trained)"][0]["n_objects"], "min_px": pc.min_px, "scenes": pc.scenes,
            "preset": cfg0.data.preset, "size": (cfg0.data.height, cfg0.data.width),
            "error_metric": groups["SOSD-Net (trained)"][0]["cue_contribution"].get("metric", "-"),
            "command": "sosd probe " + " ".join(shlex.quote(a) for a in argv)}
    meta["comparisons"] = comparisons(groups)
    meta["env"] = env_info()
    md = to_markdown(groups, summaries, meta)
    (out / "probe.md").write_text(md)
    (out / "probe.json").write_text(json.dumps({"meta": meta, "summaries": summaries, "runs": groups,
                                                "per_class": {n: class_summary(g) for n, g in groups.items()}}, indent=1,
                                               default=float))
    if args.figure:
        from sosd.eval.probe_figure import fig8

        model, cfg = load_model(args.checkpoint[0])
        fig8(model, scenes[:args.figure], out / "probe_fig8.png")
    print(md)
    print(f"wrote {out}/probe.md, probe.json" + (", probe_fig8.png" if args.figure else ""))
    return 0
