"""Can the README main job learn as well in fewer steps? Candidate recipes against the former one, paired by seed.

Run (from the repository root; resumable: finished runs are kept and skipped):

    .venv/bin/python benchmarks/main_recipe.py --seeds 1 2 3 4 5 --jobs 2
    .venv/bin/python benchmarks/main_recipe.py --report          # tables from the finished runs only

Every candidate is the main job's config (``configs/synthetic/esosd_indoor_small.yaml``) with a few
overrides. Each run trains with one thread and the loader in-process (the same batches as the job's
worker: ``tests/train/test_fast_paths.py``), so ``--jobs 2`` runs two at a time on two cores. The
recipe is **chosen on the validation scenes** (the job's own ``data.val_split``, what its table prints);
the **test scenes** (``sosd eval --split test``, never seen in choosing) are reported beside them.

Writes runs under ``runs/main_recipe/`` and ``results/main_recipe.{json,md}``: per candidate the mean of
each metric, and its paired difference against ``base`` (the recipe before: 800 steps at a constant 1e-3) with the 95 % paired-t interval
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
# every candidate names its steps, rate and schedule, so none moves when the shipped config does
_CONST = ["train.schedule=constant", "train.decay_steps=0"]
CANDIDATES = {
    "base": ["train.steps=800", "train.lr=0.001", *_CONST],  # the job before issue 15's recipe change
    "s560_lr2e-3": ["train.steps=560", "train.lr=0.002", *_CONST],
    "s560_lr2e-3_wsd": ["train.steps=560", "train.lr=0.002", "train.schedule=wsd", "train.decay_steps=160"],
    "s560_lr3e-3": ["train.steps=560", "train.lr=0.003", *_CONST],
    "s480_lr3e-3": ["train.steps=480", "train.lr=0.003", *_CONST],
    "s480_lr2e-3_wsd": ["train.steps=480", "train.lr=0.002", "train.schedule=wsd", "train.decay_steps=140"],
    # controls: the shorter budget at the former rate, constant and wsd
    "s560": ["train.steps=560", "train.lr=0.001", *_CONST],
    "s560_wsd": ["train.steps=560", "train.lr=0.001", "train.schedule=wsd", "train.decay_steps=160"],
}
METRICS = {"miou": True, "rel": False, "delta1": True}  # name: higher is better


def run_dir(out: Path, cand: str, seed: int) -> Path:
    return out / f"{cand}_seed{seed}"


def overrides(out: Path, cand: str, seed: int) -> list[str]:
    return CANDIDATES[cand] + [f"train.seed={seed}", "train.threads=1", "data.num_workers=0",
                               f"train.name={run_dir(out, cand, seed).name}", f"train.out_dir={out}",
                               "train.ckpt_every=0"]


def check_finished(out: Path, cand: str, seed: int) -> None:
    """A finished run is reused only if it was trained with the candidate's config as it stands."""
    sys.path.insert(0, str(ROOT / "src"))
    from sosd.config import config_diff, load_config

    d = run_dir(out, cand, seed)
    got = load_config(d / "config.yaml")
    want = load_config(ROOT / CONFIG, overrides(out, cand, seed))
    want.model.num_classes = got.model.num_classes  # filled in from the dataset at training time
    want.train.out_dir = got.train.out_dir  # the folder may have moved
    if diff := config_diff(got, want):
        raise SystemExit(f"{d} was trained with another config ({'; '.join(diff)}); move it away to retrain")


def run_one(out: Path, cand: str, seed: int) -> str:
    d = run_dir(out, cand, seed)
    sosd = str(ROOT / ".venv" / "bin" / "sosd")
    if (d / "metrics.json").exists():
        check_finished(out, cand, seed)
    else:
        over = overrides(out, cand, seed)
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
                  "train.seed against `base` (the former recipe: 800 steps, constant 1e-3); improvement is positive "
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
            L.append(f"| {cand} | {' '.join(CANDIDATES[cand])} | {len(seeds)} | {secs:.0f} | "
                     f"{split} | " + " | ".join(cells + diffs) + " |")
    pick = choose(res)
    L += ["", "Rule: the candidate with the fewest steps whose val improvement "
          "over `base` holds on every metric (5 seeds or more); ties go to the larger val mIoU gain. "
          + (f"**Chosen on val: `{pick}`** ({' '.join(CANDIDATES[pick])})." if pick else "**None qualifies.**"),
          "", "No row converged by design: the job has a fixed budget; `main_recipe.png` shows the val curves."]
    res["chosen_on_val"] = pick
    return res, "\n".join(L) + "\n"


def choose(res: dict) -> str | None:
    ok = [c for c, r in res.items() if c != "base" and len(r["seeds"]) >= 5
          and len(r["val"]["vs_base"]) == len(METRICS)
          and all(v["verdict"] == "holds" for v in r["val"]["vs_base"].values())]
    steps = {c: next(iter(res[c]["runs"].values()))["steps"] for c in ok}
    return min(ok, key=lambda c: (steps[c], -res[c]["val"]["vs_base"]["miou"]["mean"]), default=None)


def plot(rows: dict, path: Path) -> None:
    """Validation curves (mean over seeds) of every candidate: which ones were still improving."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 3.8))
    for cand, by_seed in rows.items():
        curves = [by_seed[s]["val_curve"] for s in sorted(by_seed)]
        steps = [p["step"] for p in curves[0]]
        for ax, k in zip(axes, METRICS):
            ys = [sum(c[i][k] for c in curves) / len(curves) for i in range(len(steps))]
            ax.plot(steps, ys, marker="o", label=f"{cand} ({len(curves)} seeds)")
            ax.set_title(f"val {k} ({'higher' if METRICS[k] else 'lower'} is better)")
            ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    rows = collect(args.out, args.seeds)
    res, md = report(rows)
    plot(rows, ROOT / "results" / "main_recipe.png")
    (ROOT / "results" / "main_recipe.json").write_text(json.dumps(res, indent=1))
    (ROOT / "results" / "main_recipe.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
