"""Reproduce a table of the paper: train every row with identical data, budget and seeds, evaluate, and
write a Markdown table in the paper's layout (mean ± std over seeds, the multi-task gain Δm over the
single-task rows, the paper's figures beside ours), its JSON and a bar plot with error bars.

  sosd ablate --table 1 --dataset synthetic-street --seeds 3 --budget 300
  sosd ablate --table 2 ... ; --table 3 (shares the MTL/SOSD/ESOSD runs of table 2) ; --table 4
  sosd ablate --table focal   (focal-length-aware semantic-to-depth vs the paper's unit, our own table)

Runs go to <out>/<dataset>/runs/<row>-seed<k>/; an interrupted ablation resumes row by row (finished
rows are not retrained, an interrupted row resumes from its checkpoint).
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sosd.ablation.tables import DATASETS, TABLES

    p.add_argument("--table", required=True, choices=list(TABLES), help="which table to reproduce")
    p.add_argument("--dataset", choices=list(DATASETS),
                   help="data: synthetic presets (default: the table's, street for 1/4, indoor for 2/3/focal), "
                        "or nyuv2 / cityscapes (with --root)")
    p.add_argument("--root", help="dataset root for nyuv2 / cityscapes")
    p.add_argument("--config", help="base config to use instead of the dataset's default (rows override "
                                    "variant, strategy, steps, seed)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    p.add_argument("--budget", type=int, default=300, help="optimiser steps per run (default 300)")
    p.add_argument("--size", nargs=2, type=int, metavar=("H", "W"),
                   help="train/evaluate at this size instead of the base config's (e.g. 64 128 for a quick CPU run)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per run (default: the base config's); 1 lets two ablations share 2 cores")
    p.add_argument("--curves", type=int, default=0, metavar="K",
                   help="learning-curve mode: score every run K times on the val scenes (synthetic datasets), "
                        "report test-scene figures, mark rows that did not converge, plot the curves")
    p.add_argument("--out", default="results/ablation", help="output folder (default results/ablation)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    import json
    import shlex
    import sys
    from pathlib import Path

    from sosd.ablation.harness import plot, run_table, to_markdown
    from sosd.ablation.tables import DATASETS, TABLES
    from sosd.errors import SOSDError

    table = TABLES[args.table]
    dataset = args.dataset or table.default_dataset
    if args.curves and not dataset.startswith("synthetic"):
        raise SOSDError("--curves needs a validation split apart from the reported one: synthetic datasets only "
                        "(for NYU / Cityscapes validate on a held-out part of the training split)")
    if args.curves < 0 or args.curves > args.budget:
        raise SOSDError(f"--curves must be between 1 and --budget ({args.budget})")
    base = args.config
    extra = ([f"data.root={args.root}"] if args.root else []) + \
        ([f"data.height={args.size[0]}", f"data.width={args.size[1]}"] if args.size else []) + \
        ([f"train.threads={args.threads}"] if args.threads else [])
    if extra:  # a base config with the options applied, kept beside the results
        from sosd.config import dump_config, load_config

        out_cfg = Path(args.out) / dataset / f"base_config_table{table.number}.yaml"
        out_cfg.parent.mkdir(parents=True, exist_ok=True)
        dump_config(load_config(base or DATASETS[dataset], extra), out_cfg)
        base = str(out_cfg)
    if args.seeds < 1 or args.budget < 1:
        raise SOSDError("--seeds and --budget must be >= 1")
    out = Path(args.out) / dataset
    result = run_table(table, dataset, args.seeds, args.budget, out, base, progress=not args.no_progress,
                       curves=args.curves)
    argv = sys.argv[sys.argv.index("ablate") + 1:] if "ablate" in sys.argv else []
    md = to_markdown(table, result, "sosd ablate " + " ".join(shlex.quote(a) for a in argv))
    stem = out / f"table{table.number}"
    stem.with_suffix(".md").write_text(md)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot(table, result, stem.with_suffix(".png"))
    if args.curves:
        from sosd.ablation.study_report import plot_curves

        plot_curves(result["rows"], {c.key: c.higher_is_better for c in table.columns},
                    f"Table {table.number} on {dataset}: val learning curves, {args.budget} steps",
                    Path(f"{stem}_curves.png"))
    print(md)
    print(f"wrote {stem}.md, .json, .png")
    return 0
