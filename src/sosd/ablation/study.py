"""Run the claims study (see ``study_plan``): train every run (in parallel processes, resumable run by run),
choose the EM schedule on val, judge every claim on test with paired intervals over seeds.

Each run lives in ``<runs>/<preset>-<row>-b<steps>-seed<k>/`` (an ordinary run folder: ``sosd eval`` and
TensorBoard work on it) with ``test_metrics.json`` beside its ``metrics.json``. A finished run is never
retrained; an interrupted one resumes from its last checkpoint.
"""
from __future__ import annotations

import math
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from sosd.ablation.study_plan import (MAIN_METRICS, SEG_METRICS, RunSpec, StudyConfig, run_config, schedule_row)

# rough cost of a step relative to joint training (measured with benchmarks/train_step.py, small backbone):
# EM back-propagates one task per step; GradNorm/MGDA/PCGrad-style methods need per-task gradients
STEP_COST = {"single": 0.8, "em": 0.85, "joint": 1.0, "kendall": 1.0, "dwa": 1.0, "equal": 1.0}
GRADIENT_METHOD_COST = 1.6


def run_one(sc: StudyConfig, spec: RunSpec, out: str) -> dict:
    """Train (or reuse, or resume) one run and evaluate it once on the test scenes."""
    from sosd.ablation.harness import run_row, test_metrics

    cfg = run_config(sc, spec, out)
    run_dir = Path(out) / spec.name
    # the log grows beside the run folder and joins it at the end: a fresh start sets an old folder aside and
    # deletes it (fit's overwrite), and would take a log opened inside it along
    pending = Path(out) / f".{spec.name}.study.log"
    pending.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(pending, "a") as log, redirect_stdout(log), redirect_stderr(log):
            summary = run_row(cfg)
            test = test_metrics(cfg)
            evals = {label: test_metrics(cfg, ov, label.replace("×", "x")) for label, ov in spec.evals}
    finally:
        _file_log(pending, run_dir / "study.log")
    return _result(spec, summary, test, evals)


def _file_log(pending: Path, log: Path) -> None:
    """Append ``pending`` to the run folder's ``log`` and remove it; kept where it is if the folder is gone."""
    if not log.parent.is_dir():
        return
    with open(log, "a") as f:
        f.write(pending.read_text())
    pending.unlink()


def _result(spec: RunSpec, summary: dict, test: dict, evals: dict) -> dict:
    """What the analysis needs of one run: its val curve and final val scores, and its test scores."""
    return {"name": spec.name, "preset": spec.preset, "row": spec.row.key, "row_name": spec.row.name,
            "steps": spec.steps, "seed": spec.seed, "val": summary["metrics"], "val_curve": summary["val_curve"],
            "test": test, "evals": evals, "train_seconds": summary.get("train_seconds")}


def finished(sc: StudyConfig, spec: RunSpec, out: str) -> dict | None:
    """The result of a run that has finished (trained with this config and evaluated on test), read back
    from its files; never trains (``sosd study --report``)."""
    import json

    from sosd.config import load_config

    run_dir = Path(out) / spec.name
    tests = {"": run_dir / "test_metrics.json",
             **{label: run_dir / f"test_metrics_{label.replace('×', 'x')}.json" for label, _ in spec.evals}}
    files = [run_dir / "metrics.json", run_dir / "config.yaml", *tests.values()]
    if not all(f.is_file() for f in files) or load_config(run_dir / "config.yaml") != run_config(sc, spec, out):
        return None
    return _result(spec, json.loads((run_dir / "metrics.json").read_text()), json.loads(tests[""].read_text()),
                   {label: json.loads(f.read_text()) for label, f in tests.items() if label})


def stale(sc: StudyConfig, specs: list[RunSpec], out: str) -> dict:
    """Run folders of ``specs`` holding a finished run whose config is not the plan's (name -> the differing
    keys, run's value vs plan's): training them again would overwrite a finished run, e.g. after a default
    changed."""
    from sosd.config import config_diff, load_config

    found = {}
    for spec in specs:
        run_dir = Path(out) / spec.name
        if (run_dir / "metrics.json").is_file() and (run_dir / "config.yaml").is_file():
            diff = config_diff(load_config(run_dir / "config.yaml"), run_config(sc, spec, out))
            if diff:
                found[spec.name] = diff
    return found


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _work(args):
    torch_threads = 1  # one thread a run, runs in parallel: small models scale poorly across cores
    import torch

    torch.set_num_threads(torch_threads)
    return run_one(*args)


def run_specs(sc: StudyConfig, specs: list[RunSpec], out: Path, jobs: int, progress: bool) -> dict:
    """Every spec's result (name -> dict), ``jobs`` runs at a time, finished runs read back."""
    from tqdm import tqdm

    results = {}
    bar = tqdm(total=len(specs), desc="study runs", disable=not progress, dynamic_ncols=True)
    if jobs <= 1:
        for spec in specs:
            bar.set_postfix_str(spec.name)
            results[spec.name] = _work((sc, spec, str(out)))
            bar.update(1)
    else:
        import multiprocessing
        import signal

        # a stop of this process (Ctrl-C, or SIGTERM turned into KeyboardInterrupt) must stop the workers too:
        # terminate() sends them SIGTERM, on which each Trainer saves a checkpoint, so nothing is lost and no
        # orphan keeps writing into the run folders
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        pool = multiprocessing.get_context("spawn").Pool(jobs)
        try:
            for res in pool.imap_unordered(_work, [(sc, s, str(out)) for s in specs]):
                results[res["name"]] = res
                bar.set_postfix_str(res["name"])
                bar.update(1)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
            signal.signal(signal.SIGTERM, previous)
    bar.close()
    return results


def estimate_seconds(sc: StudyConfig, specs: list[RunSpec], jobs: int, step_s: dict, overhead: float = 1.1) -> float:
    """Wall-clock estimate: steps x joint step time per preset x the strategy's relative cost (``overhead``:
    validation and checkpoints, already inside a calibrated step time)."""
    total = 0.0
    for s in specs:
        cost = STEP_COST.get(s.row.strategy, GRADIENT_METHOD_COST)
        total += s.steps * step_s[s.preset] * cost * overhead
    return total / max(1, jobs)


def calibrated_step_seconds(specs: list[RunSpec], done: dict) -> dict:
    """Per preset, the median joint-equivalent seconds per step of the runs finished here (their training
    time, with whatever else ran beside them: the parallel runs' contention included), or nothing."""
    import statistics

    by_name = {s.name: s for s in specs}
    out = {}
    for preset in ("street", "indoor"):
        vals = [r["train_seconds"] / (r["steps"] * STEP_COST.get(by_name[n].row.strategy, GRADIENT_METHOD_COST))
                for n, r in done.items() if n in by_name and r["preset"] == preset and r.get("train_seconds")]
        if vals:
            out[preset] = statistics.median(vals)
    return out


def measure_step(sc: StudyConfig, preset: str, repeats: int = 3) -> float:
    """Seconds of one joint training step (forward, backward, Adam) of the study's model at its size."""
    import torch

    from sosd.losses import depth_l1, semantic_ce
    from sosd.models import build_model

    cfg = run_config(sc, RunSpec(preset, schedule_row("step:1"), sc.budget, 0), "/tmp")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    m = build_model(cfg.model).train()
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    h, w = cfg.data.height, cfg.data.width
    x, k = torch.rand(cfg.train.batch_size, 3, h, w), torch.tensor([[500.0, 500.0, w / 2, h / 2]] * cfg.train.batch_size)
    y = torch.randint(0, cfg.model.num_classes, (cfg.train.batch_size, h, w))
    d = torch.rand(cfg.train.batch_size, 1, h, w) + 1
    ts = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        out = m(x, k)
        loss = semantic_ce(out["semantic"], y) + depth_l1(out["depth"], d, d > 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


# ----------------------------------------------------------------------------------------- analysis
def row_metrics(preset: str, row_key: str) -> dict:
    """The main metrics a row is judged on (single-task rows: their own task's)."""
    m = MAIN_METRICS[preset]
    if row_key == "semantic_only":
        return {k: v for k, v in m.items() if k in SEG_METRICS}
    if row_key == "depth_only":
        return {k: v for k, v in m.items() if k not in SEG_METRICS}
    return m


def choose_schedule(sc: StudyConfig, results: dict) -> tuple[str, dict]:
    """The EM phase schedule with the best final **val** scores: mean over seeds of the signed relative change
    of each main metric against the every-step schedule (Algorithm 1 as written), averaged over metrics."""
    def val_of(schedule, key):
        row = schedule_row(schedule).key
        vals = [r["val"][key] for r in results.values()
                if r["row"] == row and r["preset"] == "street" and r["steps"] == sc.budget and key in r["val"]]
        return sum(vals) / len(vals) if vals else float("nan")

    scores = {}
    for s in sc.em_schedules:
        rel = []
        for key, higher in MAIN_METRICS["street"].items():
            a, b = val_of(s, key), val_of("step:1", key)
            rel.append(((a - b) if higher else (b - a)) / max(abs(b), 1e-12))
        scores[s] = sum(rel) / len(rel)
    finite = {s: v for s, v in scores.items() if not math.isnan(v)}
    # only once every schedule of the sweep has val scores; until then Algorithm 1 as written stands in
    best = max(finite, key=lambda s: (finite[s], s == "step:1")) if len(finite) == len(scores) else "step:1"
    return best, scores
