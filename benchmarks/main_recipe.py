"""Can the README main job learn as well in fewer steps? Candidate recipes against today's, paired by seed.

Run (from the repository root; resumable: finished runs are kept and skipped):

    .venv/bin/python benchmarks/main_recipe.py --seeds 1 2 3 4 5 --jobs 2
    .venv/bin/python benchmarks/main_recipe.py --report          # tables from the finished runs only

Every candidate is the main job's config (``configs/synthetic/esosd_indoor_small.yaml``) with a few
overrides. Each run trains with one thread and the loader in-process (the same batches as the job's
worker: ``tests/train/test_fast_paths.py``), so ``--jobs 2`` runs two at a time on two cores. The
recipe is **chosen on the validation scenes** (the job's own ``data.val_split``, what its table prints);
the **test scenes** (``sosd eval --split test``, never seen in choosing) are reported beside them.

Writes runs under ``runs/main_recipe/`` and ``results/main_recipe.{json,md}``: per candidate the mean of
each metric, and its paired difference against ``base`` (today's recipe) with the 95 % paired-t interval
(``sosd.eval.stats.paired``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "configs/synthetic/esosd_indoor_small.yaml"
CANDIDATES = {
    "base": [],  # today's: 800 steps at a constant 1e-3
    "s560_lr2e-3": ["train.steps=560", "train.lr=0.002"],
    "s560_lr2e-3_wsd": ["train.steps=560", "train.lr=0.002", "train.schedule=wsd", "train.decay_steps=160"],
    "s560_lr3e-3": ["train.steps=560", "train.lr=0.003"],
    "s480_lr3e-3": ["train.steps=480", "train.lr=0.003"],
    # controls: the shorter budget at today's rate, constant and wsd
    "s560": ["train.steps=560"],
    "s560_wsd": ["train.steps=560", "train.schedule=wsd", "train.decay_steps=160"],
}
METRICS = {"miou": True, "rel": False, "delta1": True}  # name: higher is better


def run_dir(out: Path, cand: str, seed: int) -> Path:
    return out / f"{cand}_seed{seed}"


def run_one(out: Path, cand: str, seed: int) -> str:
    d = run_dir(out, cand, seed)
    sosd = str(ROOT / ".venv" / "bin" / "sosd")
    if not (d / "metrics.json").exists():
        over = CANDIDATES[cand] + [f"train.seed={seed}", "train.threads=1", "data.num_workers=0",
                                   f"train.name={d.name}", f"train.out_dir={out}", "train.ckpt_every=0"]
        subprocess.run([sosd, "train", "--config", CONFIG, "--overwrite", "--no-progress", *over],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    if not (d / "eval_test.json").exists():
        subprocess.run([sosd, "eval", "--checkpoint", str(d), "--split", "test", "--no-progress",
                        "--out", str(d / "eval_test.json")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return f"{cand} seed {seed}"


def collect(out: Path, seeds: list[int]) -> dict:
    rows = {}
    for cand in CANDIDATES:
        for seed in seeds:
            d = run_dir(out, cand, seed)
            if (d / "metrics.json").exists() and (d / "eval_test.json").exists():
                m = json.loads((d / "metrics.json").read_text())
                t = json.loads((d / "eval_test.json").read_text())
                t = t.get("metrics", t)
                rows.setdefault(cand, {})[seed] = {
                    "steps": m["steps"], "train_seconds": m["train_seconds"],
                    "val": {k: m["metrics"][k] for k in METRICS}, "test": {k: t[k] for k in METRICS},
                    "val_curve": m.get("val_curve", [])}
    return rows


def report(rows: dict) -> tuple[dict, str]:
    sys.path.insert(0, str(ROOT / "src"))
    from sosd.eval.stats import paired

    base = rows.get("base", {})
    res, L = {}, ["# The main job's recipe: fewer steps, as well learned?", "",
                  f"`{CONFIG}` with the overrides below; 1 thread a run, two runs at a time. Paired by "
                  "train.seed against `base` (today's: 800 steps, constant 1e-3); improvement is positive "
                  "when the candidate is better; 95 % paired-t interval. Chosen on **val** scenes; "
                  "**test** scenes shown beside, not used to choose.", "",
                  "| candidate | overrides | seeds | train s (mean, 1 thread) | split | "
                  + " | ".join(f"{k} (mean)" for k in METRICS) + " | "
                  + " | ".join(f"{k} vs base" for k in METRICS) + " |",
                  "|---" * (5 + 2 * len(METRICS)) + "|"]
    for cand, by_seed in rows.items():
        seeds = sorted(by_seed)
        common = [s for s in seeds if s in base]
        res[cand] = {"overrides": CANDIDATES[cand], "seeds": seeds, "runs": by_seed}
        secs = sum(by_seed[s]["train_seconds"] for s in seeds) / len(seeds)
        for split in ("val", "test"):
            means = {k: sum(by_seed[s][split][k] for s in seeds) / len(seeds) for k in METRICS}
            cmp = {}
            if cand != "base" and len(common) >= 2:
                for k, hib in METRICS.items():
                    p = paired([by_seed[s][split][k] for s in common], [base[s][split][k] for s in common], hib)
                    cmp[k] = p.to_dict()
            res[cand][split] = {"mean": means, "vs_base": cmp}
            cells = [f"{means[k]:.4f}" for k in METRICS]
            diffs = [(f"{cmp[k]['mean']:+.4f} [{cmp[k]['lo']:+.4f}, {cmp[k]['hi']:+.4f}] {cmp[k]['verdict']}"
                      if k in cmp else "") for k in METRICS]
            L.append(f"| {cand} | {' '.join(CANDIDATES[cand]) or '(today)'} | {len(seeds)} | {secs:.0f} | "
                     f"{split} | " + " | ".join(cells + diffs) + " |")
    return res, "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--report", action="store_true", help="only the tables, from the finished runs")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "main_recipe")
    args = ap.parse_args(argv)
    if not args.report:
        todo = [(c, s) for s in args.seeds for c in args.candidates]
        with ThreadPoolExecutor(args.jobs) as ex:
            for done in ex.map(lambda cs: run_one(args.out, *cs), todo):
                print("finished", done, flush=True)
    res, md = report(collect(args.out, args.seeds))
    (ROOT / "results" / "main_recipe.json").write_text(json.dumps(res, indent=1))
    (ROOT / "results" / "main_recipe.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
