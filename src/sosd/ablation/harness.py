"""Run every row of a table with identical data, budget and seeds; aggregate; write Markdown, JSON, plot.

Each (row, seed) is an ordinary training run under ``<out>/runs/<row>-seed<k>/`` (so ``sosd eval``
and TensorBoard work on it). A row whose run folder already holds ``metrics.json`` for the same config
is not retrained; an interrupted one resumes from its latest checkpoint. Rows shared between tables (MTL,
SOSD-Net, ESOSD-Net in Tables 2 and 3) are trained once.
"""
from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path

from sosd.ablation.tables import DATASETS, SINGLE_TASK, Row, Table
from sosd.provenance import env_info

SEG_KEYS = {"miou", "mean_acc", "pixel_acc"}


def row_config(table: Table, row: Row, dataset: str, seed: int, budget: int, out: Path, base: str | None,
               curves: int = 0):
    """The run's config. ``curves`` > 0: scored that many times on the val split during training (the
    learning curve), the reported metrics then come from the test split (``test_metrics``)."""
    from sosd.config import load_config

    curve_ov = ["data.val_split=val", f"train.val_every={max(1, budget // curves)}"] if curves else []
    ov = [f"model.variant={row.variant}", f"train.strategy={row.strategy}", f"train.steps={budget}",
          f"train.seed={seed}", f"train.name={row.key}-seed{seed}", f"train.out_dir={out / 'runs'}",
          "train.val_every=0", "train.best_metric=", f"train.ckpt_every={max(1, budget // 4)}",
          *row.overrides, *curve_ov]
    cfg = load_config(base or DATASETS[dataset], ov)
    if not curves:  # tables report the final model (no best.ckpt) on the reported split, whatever the base
        from sosd.data.factory import reported_split  # validates on

        cfg.data.val_split = reported_split(cfg.data)
    return cfg


def run_row(cfg, progress: bool = False) -> dict:
    """Train (or reuse, or resume) one run; returns its metrics.json content."""
    from sosd.config import config_diff, load_config
    from sosd.train.loop import fit

    run_dir = Path(cfg.train.out_dir) / cfg.train.name
    metrics_file = run_dir / "metrics.json"
    old = load_config(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else None
    same = old == cfg
    if metrics_file.is_file() and same:
        return json.loads(metrics_file.read_text())
    if metrics_file.is_file() and old is not None:  # finished with another config: kept, never trained over
        kept = run_dir.with_name(f"{run_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir.rename(kept)
        print(f"{run_dir} was finished with another config ({'; '.join(config_diff(old, cfg))}); "
              f"kept as {kept}, training afresh", file=sys.stderr)
    resume = str(run_dir) if same and (run_dir / "checkpoints" / "latest").is_file() else None
    fit(cfg, resume=resume, overwrite=resume is None, progress=progress)
    return json.loads(metrics_file.read_text())


def test_metrics(cfg, data_overrides: tuple = (), label: str = "") -> dict:
    """The finished run's metrics on the **test** split (its training validated on ``val``), computed once
    and kept in ``test_metrics.json`` beside ``metrics.json``; with ``data_overrides`` (e.g. another focal
    length), in ``test_metrics_<label>.json``."""
    run_dir = Path(cfg.train.out_dir) / cfg.train.name
    path = run_dir / (f"test_metrics_{label}.json" if label else "test_metrics.json")
    if path.is_file():
        return json.loads(path.read_text())
    res = evaluate_on(cfg, data_overrides)
    res = {k: v for k, v in res.items() if isinstance(v, (int, float))}
    # runs of one table may span sessions and machines: each records its code and its machine
    env = env_info()
    res["code_commit"] = env["commit"]
    res["machine"] = {k: env[k] for k in ("cpu_model", "cpu_capability", "torch")}
    path.write_text(json.dumps(res, indent=1))
    return res


def measure_inference(cfg, repeats: int = 5) -> dict:
    """Parameters (M) and median batch-1 latency (ms) of the row's model at its evaluation size."""
    import torch

    from sosd.models import SOSDNet

    m = SOSDNet(cfg.model).eval()
    x = torch.rand(1, 3, cfg.data.height, cfg.data.width)
    k = torch.tensor([[500.0, 500.0, cfg.data.width / 2, cfg.data.height / 2]])
    ts = []
    with torch.inference_mode():
        m(x, k)
        for _ in range(repeats):
            t = time.perf_counter()
            m(x, k)
            ts.append((time.perf_counter() - t) * 1e3)
    return {"ms": statistics.median(ts), "params_m": sum(p.numel() for p in m.parameters()) / 1e6}


def _cached_trainer(cfg, run_dir: Path):
    """The row's Trainer on one pre-rendered batch held in memory (rendering is not timed)."""
    import torch

    from sosd.train.loop import Trainer

    t = Trainer(cfg, run_dir, progress=False)
    items = [t.train_set[i] for i in range(len(t.train_set))]
    t.train_set = type("Cached", (torch.utils.data.Dataset,), {
        "__len__": lambda self: len(items), "__getitem__": lambda self, i: items[i], "transform": None,
        "num_classes": t.train_set.num_classes, "class_names": t.train_set.class_names,
        "target_kind": t.train_set.target_kind})()
    return t


def _cost_child(config_path: str, steps: int) -> None:
    """In a fresh process (see :func:`measure_step`): print the JSON of the row's step cost."""
    import os
    import tempfile
    import threading

    from sosd.config import apply_overrides, load_config

    def rss():
        try:
            return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    cfg = load_config(config_path)
    with tempfile.TemporaryDirectory() as tmp:
        row = _cached_trainer(cfg, Path(tmp) / "row")
        # memory: the peak above what the built trainer holds, over the first steps (Adam's state included)
        # of a fresh process, whose allocator has not yet reused freed memory
        base, peak, halt = rss(), [0], threading.Event()

        def sample():
            while not halt.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.002)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        row.train_steps(until=2)
        halt.set()
        th.join()
        # time: the row and joint one step each in turn (a busy machine's load drift hits both alike)
        joint = _cached_trainer(apply_overrides(cfg, ["train.strategy=joint"]), Path(tmp) / "joint")
        joint.train_steps(until=2)
        ts = {"row": [], "joint": []}
        for k in range(3, steps + 3):
            for name, t in (("row", row), ("joint", joint)):
                t0 = time.perf_counter()
                t.train_steps(until=k)
                ts[name].append(time.perf_counter() - t0)
    print("COST " + json.dumps({"step_s": statistics.median(ts["row"]), "joint_step_s": statistics.median(ts["joint"]),
                                "step_bytes": max(peak[0] - base, 1)}), flush=True)


def measure_step(cfg, steps: int = 5) -> dict:
    """Training-step cost of the row's strategy on one batch held in memory, in a fresh process: the median
    step time, measured round-robin against joint on the same config (``step_vs_joint``), and the peak
    resident memory of its first two steps above what the built trainer holds (``step_bytes``; Table 4
    divides it by joint's, measured the same way). As benchmarks/train_step.py does."""
    import os
    import subprocess
    import sys
    import tempfile

    from sosd.config import apply_overrides, dump_config

    c = apply_overrides(cfg, [f"data.train_size={cfg.train.batch_size}", "data.num_workers=0",
                              f"train.steps={steps + 3}", "train.log_every=1000000", "train.ckpt_every=0"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        dump_config(c, path)
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        p = subprocess.run([sys.executable, "-c", "import sys; from sosd.ablation.harness import _cost_child; "
                            f"_cost_child(sys.argv[1], {steps})", str(path)],
                           capture_output=True, text=True, env=env)
    for line in p.stdout.splitlines():
        if line.startswith("COST "):
            r = json.loads(line[5:])
            return {**r, "step_vs_joint": r["step_s"] / r["joint_step_s"]}
    raise RuntimeError(f"step-cost measurement of {cfg.train.strategy} failed: {p.stderr.strip()[-400:]}")


def evaluate_on(cfg, data_overrides: tuple) -> dict:
    """Metrics of the run's final model on its reported split (``reported_split``: never the one it selected on),
    built with extra data overrides."""
    from sosd.config import apply_overrides
    from sosd.data import build_dataset
    from sosd.eval.evaluate import evaluate_model
    from sosd.checkpoint import load_model

    model, _ = load_model(Path(cfg.train.out_dir) / cfg.train.name)
    c = apply_overrides(cfg, list(data_overrides))
    from sosd.data.factory import reported_split

    ds = build_dataset(c.data, reported_split(c.data))  # the reported split, not the selection one
    return evaluate_model(model, ds, c.eval.depth_protocol, c.eval.batch_size, progress=False)


def mean_std(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def delta_m(multi: dict, single: dict, columns) -> float:
    """Multi-task gain (Maninis et al. 2019; Vandenhende et al. 2021): the mean over tasks of the mean
    signed relative change (%) of each task's metrics against its single-task model."""
    per_task: dict[str, list[float]] = {}
    for c in columns:
        task = "semantic" if c.key in SEG_KEYS else "depth"
        b, m = single.get(c.key), multi.get(c.key)
        if b is None or m is None or not b or math.isnan(b) or math.isnan(m):
            continue
        sign = 1.0 if c.higher_is_better else -1.0
        per_task.setdefault(task, []).append(sign * (m - b) / abs(b) * 100.0)
    return statistics.fmean(statistics.fmean(v) for v in per_task.values()) if per_task else float("nan")


def run_table(table: Table, dataset: str, seeds: int, budget: int, out: Path, base: str | None = None,
              progress: bool = True, curves: int = 0, tolerance: float = 0.02) -> dict:
    """Train/collect every row x seed of ``table``; returns the aggregated results (also written).
    ``curves`` > 0: the learning-curve mode (see ``row_config``), with each row's convergence on val."""
    from tqdm import tqdm

    from sosd.eval.stats import converged

    tasks_needed = {"semantic" if c.key in SEG_KEYS else "depth" for c in table.columns}
    refs = [SINGLE_TASK[t] for t in sorted(tasks_needed)
            if table.number != "focal" and SINGLE_TASK[t].key not in {r.key for r in table.rows}]
    rows = list(table.rows)
    jobs = [(r, s) for r in refs + rows for s in range(seeds)]
    per_run: dict[tuple[str, int], dict] = {}
    joint_cost: dict = {}
    bar = tqdm(jobs, desc=f"table {table.number}", disable=not progress)
    for row, seed in bar:
        bar.set_postfix(row=row.key, seed=seed)
        cfg = row_config(table, row, dataset, seed, budget, out, base, curves)
        res = run_row(cfg)
        entry = {"metrics": test_metrics(cfg) if curves else res["metrics"],
                 "train_seconds": res.get("train_seconds"), "val_curve": res.get("val_curve", [])}
        if table.timing:
            entry.update(measure_inference(cfg))
        if table.cost and seed == 0 and row not in refs:
            # step cost beside the metrics: this row's strategy vs joint on the same variant and config
            if row.variant not in joint_cost:
                joint_cost[row.variant] = measure_step(row_config(table, Row("joint", "joint", row.variant, "joint"),
                                                                  dataset, 0, budget, out, base))
            cost = measure_step(cfg)
            entry["cost"] = {**cost, "memory_vs_joint": cost["step_bytes"] / joint_cost[row.variant]["step_bytes"]}
        for label, ov in table.eval_overrides:
            entry.setdefault("eval_sets", {})[label] = evaluate_on(cfg, ov)
        per_run[(row.key, seed)] = entry

    def metric_of(entry, key, eval_set=None):
        src = entry["eval_sets"][eval_set] if eval_set else entry["metrics"]
        return src.get(key)

    result = {"table": table.number, "title": table.title, "dataset": dataset, "seeds": seeds,
              "budget_steps": budget, "curves": curves, "tolerance": tolerance, "rows": []}
    eval_sets = [label for label, _ in table.eval_overrides] or [None]
    for row in refs + rows:
        r = {"name": row.name, "key": row.key, "reference": row in refs, "paper": table.paper.get(row.key, {})}
        for es in eval_sets:
            prefix = f"{es}/" if es else ""
            for c in table.columns:
                vals = [metric_of(per_run[(row.key, s)], c.key, es) for s in range(seeds)]
                r[prefix + c.key] = mean_std([v * c.scale for v in vals if v is not None])
                r[prefix + c.key + "/runs"] = [v * c.scale if v is not None else None for v in vals]
        if table.timing:
            r["ms"] = mean_std([per_run[(row.key, s)]["ms"] for s in range(seeds)])
            r["params_m"] = per_run[(row.key, 0)]["params_m"]
        if curves:
            r["val_curves"] = [per_run[(row.key, s)]["val_curve"] for s in range(seeds)]
            r["convergence"] = converged(r["val_curves"], {c.key: c.higher_is_better for c in table.columns},
                                         tolerance)
        if table.cost and "cost" in per_run[(row.key, 0)]:
            r["cost"] = per_run[(row.key, 0)]["cost"]
        r["train_seconds"] = mean_std([per_run[(row.key, s)]["train_seconds"] or float("nan") for s in range(seeds)])
        if table.number != "focal" and row.variant not in ("semantic_only", "depth_only"):
            dms = []
            for s in range(seeds):
                single = {}
                for t in tasks_needed:
                    single.update({k: v for k, v in per_run[(SINGLE_TASK[t].key, s)]["metrics"].items()
                                   if (k in SEG_KEYS) == (t == "semantic")})
                dms.append(delta_m(per_run[(row.key, s)]["metrics"], single, table.columns))
            r["delta_m"] = mean_std(dms)
        result["rows"].append(r)
    result["orderings"] = orderings(table, result)
    return result


def orderings(table: Table, result: dict) -> list[dict]:
    """For each metric and each pair of rows the paper ranks, does our ordering agree, and is our gap
    larger than the spread over seeds (sum of the two standard deviations)?"""
    out = []
    rows = {r["key"]: r for r in result["rows"]}
    for c in table.columns:
        keys = [k for k in table.paper if c.key in table.paper[k] and k in rows]
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                pa, pb = table.paper[a][c.key], table.paper[b][c.key]
                if pa == pb:
                    continue
                better, worse = (a, b) if (pa > pb) == c.higher_is_better else (b, a)
                (mb, sb), (mw, sw) = rows[better][c.key], rows[worse][c.key]
                holds = (mb > mw) == c.higher_is_better if not (math.isnan(mb) or math.isnan(mw)) else None
                out.append({"metric": c.key, "paper_better": better, "paper_worse": worse, "holds": holds,
                            "gap": abs(mb - mw), "spread": sb + sw, "beyond_spread": abs(mb - mw) > sb + sw})
    return out


def _fmt(ms: tuple[float, float], digits: int) -> str:
    m, s = ms
    if m is None or math.isnan(m):
        return "-"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def to_markdown(table: Table, result: dict, command: str) -> str:
    cols = table.columns
    eval_sets = [label for label, _ in table.eval_overrides] or [None]
    head = ["Method"]
    for es in eval_sets:
        head += [f"{c.title} ({es})" if es else c.title for c in cols]
    has_dm = any("delta_m" in r for r in result["rows"])
    if has_dm:
        head.append("Δm [%]")
    if table.timing:
        head += ["Inference (ms)", "Parameters (M)"]
    if result.get("curves"):
        head.append("Converged on val")
    if table.cost:
        head += ["Step time × joint", "Step memory × joint"]
    paper_cols = [c for c in cols if any(c.key in p for p in table.paper.values())]
    head += [f"paper: {c.title}" for c in paper_cols]
    if table.timing:
        head += ["paper: ms", "paper: M"]
    lines = [f"## Table {table.number}: {table.title}", "",
             f"Dataset `{result['dataset']}`, {result['budget_steps']} optimiser steps per run, "
             f"mean ± std over {result['seeds']} seeds (0..{result['seeds'] - 1}), identical data for every row."
             + (f" Learning curves scored {result['curves']} times a run on the **val** scenes; the figures are "
                f"on the **test** scenes. Converged: every metric of the mean val curve gained less than "
                f"{result['tolerance'] * 100:.0f} % (relative) over the last quarter of the budget."
                if result.get("curves") else ""),
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        cells = [r["name"] + (" (reference)" if r["reference"] else "")]
        for es in eval_sets:
            prefix = f"{es}/" if es else ""
            cells += [_fmt(tuple(r[prefix + c.key]), c.digits) for c in cols]
        if has_dm:
            cells.append(_fmt(tuple(r["delta_m"]), 2) if "delta_m" in r else "-")
        if table.timing:
            cells += [_fmt(tuple(r["ms"]), 1), f"{r['params_m']:.2f}"]
        if result.get("curves"):
            conv = r["convergence"]
            gains = ", ".join(f"{k} {v * 100:+.1f} %" for k, v in conv["gain"].items())
            cells.append({True: "yes", False: "**NO**", None: "-"}[conv["converged"]] + (f" ({gains})" if gains else ""))
        if table.cost:
            cc = r.get("cost")
            cells += [f"{cc['step_vs_joint']:.2f}", f"{cc['memory_vs_joint']:.2f}"] if cc else ["-", "-"]
        cells += [str(r["paper"].get(c.key, "-")) for c in paper_cols]
        if table.timing:
            cells += [str(r["paper"].get("ms", "-")), str(r["paper"].get("params_m", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    if result["orderings"]:
        lines += ["", "Orderings of the paper, checked on ours (gap vs spread = sum of the two stds):", ""]
        for o in result["orderings"]:
            verdict = {True: "holds", False: "does NOT hold", None: "n/a"}[o["holds"]]
            lines.append(f"- {o['metric']}: {o['paper_better']} better than {o['paper_worse']}: {verdict} "
                         f"(gap {o['gap']:.3g}, spread {o['spread']:.3g}"
                         f"{', beyond the spread' if o['beyond_spread'] else ', within the spread'})")
    if has_dm:
        lines += ["", "Δm: mean over tasks of the mean signed relative change of the task's metrics against "
                  "the single-task model of the same seed (Maninis et al. 2019), in %; higher is better."]
    if table.cost:
        lines += ["Step time / memory × joint: measured after seed 0's run, in a fresh process, on one batch "
                  "of the row's config: the median step time with the row and joint stepping in turn, and the "
                  "peak resident memory of the first two steps above what the built trainer holds, each over "
                  "joint's (benchmarks/train_step.py: the same, for every method)."]
    if table.timing:
        lines += ["Inference: median batch-1 CPU latency at the evaluation size, measured right after each "
                  "run (the paper's figures are a P40 GPU at 256x512 with its own backbone)."]
    lines += ["", f"Command: `{command}`", ""]
    return "\n".join(lines)


def plot(table: Table, result: dict, path: Path) -> None:
    """Bars with error bars (std over seeds), one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eval_sets = [label for label, _ in table.eval_overrides] or [None]
    panels = [(es, c) for es in eval_sets for c in table.columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    names = [r["name"] for r in result["rows"]]
    for ax, (es, c) in zip(axes[0], panels):
        prefix = f"{es}/" if es else ""
        means = [r[prefix + c.key][0] for r in result["rows"]]
        stds = [r[prefix + c.key][1] for r in result["rows"]]
        ax.bar(range(len(names)), means, yerr=stds, capsize=3,
               color=["#bbb" if r["reference"] else "#4a7fb5" for r in result["rows"]])
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=7)
        ax.set_title(f"{c.title}{' ' + es if es else ''}\n({'higher' if c.higher_is_better else 'lower'} is better)",
                     fontsize=8)
        finite = [m for m in means if not math.isnan(m)]
        if finite:
            lo, hi = min(finite), max(finite)
            pad = (hi - lo) * 0.6 + 1e-9 + max(s for s in stds if not math.isnan(s))
            ax.set_ylim(max(0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
    fig.suptitle(f"Table {table.number} on {result['dataset']}: mean ± std over {result['seeds']} seeds, "
                 f"{result['budget_steps']} steps", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
