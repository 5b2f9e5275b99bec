"""Time and peak memory of one training step for every strategy in sosd.train.strategies.STRATEGIES.

Run (from the repository root, on a quiet machine):

    .venv/bin/python benchmarks/train_step.py               # xception_small, 128x256, batch 8
    .venv/bin/python benchmarks/train_step.py --full        # Xception-65, 256x512, batch 8 (the paper's)
    .venv/bin/python benchmarks/train_step.py --quick       # smoke test: 2 steps each
    .venv/bin/python benchmarks/train_step.py --threads 2 --strategies joint em pcgrad
    .venv/bin/python benchmarks/train_step.py --compare --threads 1   # c46c54a vs this checkout, study sizes

``--compare [REF]``: the main before issue 15 (c46c54a) or any git ref against this checkout, at the study
sizes (``--compare-sizes``, default 64x128 and 72x96; xception_small with the study configs' head widths).
Two persistent processes (REF's ``src/`` from a detached ``git worktree`` at ``$TMPDIR/sosd_base_<commit>``,
reused by later runs; ``git worktree remove`` it when done, and this checkout's ``src/``) build the same
Trainer and take steps in turn (who goes first alternates), so the load of a shared machine hits both
alike. Reported: median wall time per step, steps/s, their ratio, the median of paired per-round ratios,
the ratio of process CPU time (less sensitive to other processes), the largest relative loss difference,
and the load average. Writes ``results/train_step_compare_<backbone>_b<batch>.json`` and ``.md``.

Rows: joint, EM (Algorithm 1) and every other registered method, found by iterating the STRATEGIES dict, so
methods added later appear without editing this file; the ``jd`` entry is expanded into one row per
torchjd aggregator and scalarizer (``jd:UPGrad``, ``jd:FAMO``...; ``--strategies jd:NashMTL`` picks one). A name that maps to a class already measured (e.g.
``single`` = Joint) is listed as an alias, not re-run; a strategy that fails (e.g. one that needs another
variant) is reported with its error and skipped. Times and memory are also given as ratios to joint's.

How a step is measured: each strategy runs in its own fresh Python process (same settings) which builds
the real :class:`sosd.train.loop.Trainer` (model, Adam, strategy; synthetic street scenes, the
Cityscapes-like preset) and calls ``trainer.train_steps(until=k)`` one step at a time, so the step is
exactly the training loop's (strategy.prepare, forward, strategy.backward, optimizer step, after_step,
scheduler), on one pre-rendered batch held in memory (scene rendering is not timed; collating the batch
is, a few ms). ``--warmup`` steps first (the first allocates Adam's state), then the median of ``--steps``
timed steps (EM alternates phases every step: both phases are timed, their medians are listed).

Memory on the CPU: ``tracemalloc`` does not see torch's allocations, and ``resource.getrusage``'s
``ru_maxrss`` is a high-water mark that cannot be reset within a process. So each strategy gets a fresh
process, and we report (a) its ``ru_maxrss``: the exact peak resident memory of the whole training process
(model, optimiser state, activations, gradients, libraries: what must fit in RAM), and (b) the step's own
peak above the memory held before the first step, from a thread sampling the process RSS
(``/proc/self/statm``, what psutil reads) every 2 ms; a step lasts far longer than that, and the kernel's
peak (a) bounds the sampled one. torch.profiler's memory profile would see only tensor allocations (not
allocator slack or oneDNN workspaces) at a large slowdown. On CUDA: ``torch.cuda.max_memory_allocated``.

Writes ``results/train_step_<backbone>_<H>x<W>_b<batch>.json`` (every step time, machine info) and a
``.png`` beside it; prints a Markdown table.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GIB = 2 ** 30
SMALL_WIDTHS = ["model.aspp_channels=64", "model.decoder_channels=64", "model.refined_channels=24"]


def _bench_common():
    """machine_info / loadavg from benchmarks/inference.py (one definition for both benchmarks)."""
    spec = importlib.util.spec_from_file_location("_sosd_bench_inference", Path(__file__).with_name("inference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------------------ the worker

def rss_bytes() -> int | None:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class RSSSampler(threading.Thread):
    """Max of the process RSS, sampled every ``interval`` s until ``stop()``."""

    def __init__(self, interval: float = 0.002):
        super().__init__(daemon=True)
        self.interval, self.peak, self._halt = interval, rss_bytes() or 0, threading.Event()

    def run(self):
        while not self._halt.is_set():
            r = rss_bytes()
            if r is not None and r > self.peak:
                self.peak = r
            time.sleep(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def bench_config(spec: dict):
    """The Config of one benchmark run: synthetic street scenes, one batch of training data, no logging."""
    from sosd.config import load_config
    from sosd.data import build_dataset

    h, w = spec["size"]
    overrides = {
        "model.variant": spec["variant"], "model.backbone": spec["backbone"],
        "data.dataset": "synthetic", "data.preset": spec.get("preset", "street"), "data.height": h,
        "data.width": w, "data.train_size": spec["batch"], "data.val_size": 1, "data.num_workers": 0,
        "train.strategy": spec["strategy"], "train.batch_size": spec["batch"], "train.steps": 10 ** 6,
        "train.threads": spec["threads"] or 0, "train.device": spec["device"], "train.log_every": 10 ** 6,
        "train.val_every": 0, "train.ckpt_every": 0,
    }
    if spec["strategy"].startswith("jd:"):  # one torchjd method: jd:<aggregator or scalarizer>
        from sosd.train.strategies.jd import AGGREGATORS

        method = spec["strategy"][3:]
        overrides["train.strategy"] = "jd"
        if method.endswith("-scalarizer") or method not in AGGREGATORS:
            overrides["train.jd.scalarizer"] = method.removesuffix("-scalarizer")
        else:
            overrides["train.jd.aggregator"] = method
    cfg = load_config(None, [f"{k}={v}" for k, v in overrides.items()] + list(spec.get("overrides", [])))
    cfg.model.num_classes = build_dataset(cfg.data, "train").num_classes
    return cfg


def bench_trainer(spec: dict, run_dir: Path):
    """A real :class:`sosd.train.loop.Trainer` whose training set is one pre-rendered batch held in memory
    (scene rendering is not timed; collating the batch is)."""
    import torch

    from sosd.train.loop import Trainer

    trainer = Trainer(bench_config(spec), run_dir, progress=False)
    items = [trainer.train_set[i] for i in range(len(trainer.train_set))]  # rendered once, not timed

    class Cached(torch.utils.data.Dataset):
        transform = None
        num_classes, class_names = trainer.train_set.num_classes, trainer.train_set.class_names
        target_kind = trainer.train_set.target_kind

        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            return items[i]

    trainer.train_set = Cached()
    return trainer


def interleaved(specs: list[dict], rounds: int, warmup: int) -> dict:
    """Every strategy's Trainer in this one process, one step each in turn for ``rounds`` rounds: a busy
    machine's load drifts over minutes, and round-robin spreads the drift over all strategies alike, so
    the ratios to joint are fair where sequential fresh processes are not. Times only (no memory)."""
    import torch

    out, trainers = {}, {}
    tmp = tempfile.TemporaryDirectory()
    for spec in specs:
        try:
            trainers[spec["strategy"]] = bench_trainer(spec, Path(tmp.name))
        except Exception as e:  # noqa: BLE001 - reported as this strategy's failure
            out[spec["strategy"]] = {"error": f"{type(e).__name__}: {e}"[:400]}
    times = {k: [] for k in trainers}
    for r in range(warmup + rounds):
        for k, t in trainers.items():
            t0 = time.perf_counter()
            t.train_steps(until=r + 1)
            if r >= warmup:
                times[k].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{warmup + rounds}", file=sys.stderr, flush=True)
    for k, ts in times.items():
        out[k] = {"step_s": ts, "median_step_s": statistics.median(ts), "torch_threads": torch.get_num_threads()}
    tmp.cleanup()
    return out


def worker(spec: dict) -> dict:
    """One strategy, in this (fresh) process: build the Trainer, time ``spec['steps']`` steps."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        trainer = bench_trainer(spec, Path(tmp))
        cuda = trainer.device.type == "cuda"
        rss_setup = rss_bytes()
        sampler = RSSSampler()
        sampler.start()
        if cuda:
            torch.cuda.reset_peak_memory_stats(trainer.device)
        times, phases = [], []
        for k in range(spec["warmup"] + spec["steps"]):
            if cuda:
                torch.cuda.synchronize(trainer.device)
            t = time.perf_counter()
            status = trainer.train_steps(until=k + 1)
            if cuda:
                torch.cuda.synchronize(trainer.device)
            dt = time.perf_counter() - t
            if status != "done":
                raise RuntimeError(f"train_steps returned {status}")
            if k >= spec["warmup"]:
                times.append(dt)
                phases.append(getattr(trainer.strategy, "phase", None))
        peak_sampled = sampler.stop()
    res = {
        "step_s": times,
        "median_step_s": statistics.median(times),
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
        "rss_setup_bytes": rss_setup,
        "step_peak_over_setup_bytes": (peak_sampled - rss_setup) if rss_setup else None,
        "torch_threads": torch.get_num_threads(),
        "params_m": sum(p.numel() for p in trainer.model.parameters()) / 1e6,
    }
    if any(p is not None for p in phases):
        by = {}
        for p, t in zip(phases, times):
            by.setdefault(str(p), []).append(t)
        res["median_step_s_by_phase"] = {p: statistics.median(ts) for p, ts in by.items()}
    if cuda:
        res["cuda_max_allocated_bytes"] = torch.cuda.max_memory_allocated(trainer.device)
    return res


# ------------------------------------------------------------------------------------------ the parent

def run_child(spec: dict, timeout: float) -> dict:
    env = dict(os.environ)
    if spec["threads"]:
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        p = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                           text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = [ln for ln in (p.stderr or "").strip().splitlines() if ln.strip()]
    return {"error": (tail[-1] if tail else f"exit status {p.returncode}")[:400], "returncode": p.returncode}


def markdown(res: dict) -> str:
    a, m = res["args"], res["machine"]
    L = [f"## One training step: {a['variant']} on {a['backbone']}, {a['size'][0]}x{a['size'][1]}, batch {a['batch']}",
         f"{m['cpu_model']}, {m['logical_cores']} logical cores, torch {m['torch']}, threads "
         f"{res['rows'][0].get('torch_threads', '?') if res['rows'] else '?'}, device {a['device']}, load average "
         f"{m['loadavg_start']} -> {m.get('loadavg_end')}; median of {a['steps']} steps after {a['warmup']} "
         f"warm-up, each strategy in a fresh process",
         "",
         "| strategy | step (s, median) | x joint | peak RSS of the process (GiB) | step peak over setup (GiB) "
         "| x joint | notes |",
         "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        if "median_step_s" not in r:
            L.append(f"| {r['strategy']} | | | | | | {r.get('note') or 'failed: ' + r.get('error', '')} |")
            continue
        step_mem = r.get("step_peak_over_setup_bytes")
        note = ""
        if "median_step_s_by_phase" in r:
            note = "phases: " + ", ".join(f"{p} {t:.2f} s" for p, t in r["median_step_s_by_phase"].items())
        if "cuda_max_allocated_bytes" in r:
            note += f" CUDA max allocated {r['cuda_max_allocated_bytes'] / GIB:.2f} GiB"
        ratio = lambda k: f"{r[k]:.2f}" if k in r else "-"  # noqa: E731
        L.append(f"| {r['strategy']} | {r['median_step_s']:.3f} | {ratio('time_vs_joint')} | "
                 f"{r['ru_maxrss_bytes'] / GIB:.2f} | {'-' if step_mem is None else f'{step_mem / GIB:.2f}'} | "
                 f"{ratio('memory_vs_joint')} | {note.strip()} |")
    joint = next((r for r in res["rows"] if r["strategy"] == "joint" and "ru_maxrss_bytes" in r), None)
    if joint:
        peak = max(r["ru_maxrss_bytes"] for r in res["rows"] if "ru_maxrss_bytes" in r)
        L.append("")
        L.append(f"Peak memory of a training process: joint {joint['ru_maxrss_bytes'] / GIB:.2f} GiB, largest "
                 f"{peak / GIB:.2f} GiB: {'fits' if peak < 24 * GIB else 'does NOT fit'} in 24 GiB "
                 f"at batch {a['batch']}, {a['size'][0]}x{a['size'][1]}, {a['backbone']}.")
    return "\n".join(L)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in res["rows"] if "time_vs_joint" in r]
    if not rows:
        return
    names = [r["strategy"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 1.8))
    for ax, key, label in ((axes[0], "time_vs_joint", "step time / joint's"),
                           (axes[1], "memory_vs_joint", "step peak memory over setup / joint's")):
        vals = [r.get(key) or 0.0 for r in rows]
        ax.barh(names, vals)
        ax.axvline(1.0, color="k", lw=0.8)
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:.2f}x", va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(label)
        ax.set_xlim(0, max(vals + [1.0]) * 1.25)
    a = res["args"]
    fig.suptitle(f"training step, {a['variant']} {a['backbone']} {a['size'][0]}x{a['size'][1]} batch {a['batch']} "
                 f"({res['machine']['cpu_model']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------ comparison: base vs this

def stepper(spec: dict) -> None:
    """Comparison child: build the Trainer, then run one training step per ``step`` line on stdin and answer
    ``STEP <wall s> <process CPU s> <loss>`` (the parent alternates two such children, so their steps never
    overlap and a change of machine load hits both alike)."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = bench_trainer(spec, Path(tmp))
        print("READY", flush=True)
        k = 0
        for line in sys.stdin:
            if line.strip() != "step":
                break
            k += 1
            t, c = time.perf_counter(), time.process_time()
            status = trainer.train_steps(until=k)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            if status != "done":
                raise RuntimeError(f"train_steps returned {status}")
            print(f"STEP {wall} {cpu} {trainer.state.history[-1]['loss']}", flush=True)


class Child:
    def __init__(self, spec: dict, src: Path, threads: int | None):
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        env["PYTHONPATH"] = str(src)  # this side's sosd only (not the editable install's)
        self.p = subprocess.Popen([sys.executable, __file__, "--stepper", json.dumps(spec)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.p.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"{src}: the worker did not start: {self.p.stderr.read()[-1500:]}")

    def step(self) -> tuple[float, float, float]:
        self.p.stdin.write("step\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line.startswith("STEP"):
            raise RuntimeError(f"worker failed: {self.p.stderr.read()[-1500:]}")
        wall, cpu, loss = (float(x) for x in line.split()[1:])
        return wall, cpu, loss

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=60)
        except Exception:  # noqa: BLE001
            self.p.kill()


def base_checkout(ref: str) -> Path:
    """A detached git worktree of ``ref`` (reused if present) whose src/ the base side runs."""
    root = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", ref], capture_output=True, text=True,
                            check=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"sosd_base_{commit}"
    if not (path / "src" / "sosd").is_dir():
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(path), commit], check=True,
                       capture_output=True)
    return path


def compare(args, sizes, common) -> dict:
    """Base (``args.compare``) vs this checkout, interleaved step by step at each size."""
    base_src = base_checkout(args.compare) / "src"
    this_src = Path(__file__).resolve().parents[1] / "src"
    rows = []
    for (h, w) in sizes:
        spec = {"strategy": args.strategies[0] if args.strategies else "joint", "variant": args.variant,
                "backbone": args.backbone, "size": [h, w], "batch": args.batch, "threads": args.threads,
                "device": args.device, "overrides": list(args.override)}
        print(f"{h}x{w}: starting both ...", file=sys.stderr, flush=True)
        # the study configs' head widths (configs/synthetic/*_small.yaml) for the small backbone
        widths = SMALL_WIDTHS if args.backbone == "xception_small" else []
        sides = {"base": Child({**spec, "overrides": widths + list(args.base_override)}, base_src, args.threads),
                 "this": Child({**spec, "overrides": widths + list(args.override)}, this_src, args.threads)}
        rec = {k: {"wall_s": [], "cpu_s": [], "loss": []} for k in sides}
        try:
            for i in range(args.warmup + args.steps):
                order = list(sides) if i % 2 == 0 else list(sides)[::-1]  # alternate who goes first
                for k in order:
                    wall, cpu, loss = sides[k].step()
                    if i >= args.warmup:
                        rec[k]["wall_s"].append(wall)
                        rec[k]["cpu_s"].append(cpu)
                    rec[k]["loss"].append(loss)
        finally:
            for c in sides.values():
                c.close()
        row = {"size": [h, w], "loadavg": common.loadavg()}
        for k, r in rec.items():
            r["median_wall_s"] = statistics.median(r["wall_s"])
            r["median_cpu_s"] = statistics.median(r["cpu_s"])
            r["steps_per_s"] = 1 / r["median_wall_s"]
            row[k] = r
        row["speedup_wall"] = rec["base"]["median_wall_s"] / rec["this"]["median_wall_s"]
        row["speedup_cpu"] = rec["base"]["median_cpu_s"] / rec["this"]["median_cpu_s"]
        # paired: each round's base step over the this step that ran next to it
        row["speedup_wall_paired_median"] = statistics.median(
            b / t for b, t in zip(rec["base"]["wall_s"], rec["this"]["wall_s"]))
        row["max_loss_rel_diff"] = max(abs(a - b) / max(abs(a), 1e-12)
                                       for a, b in zip(rec["base"]["loss"], rec["this"]["loss"]))
        rows.append(row)
        print(f"  base {row['base']['median_wall_s']:.3f} s, this {row['this']['median_wall_s']:.3f} s: "
              f"x{row['speedup_wall']:.2f} (paired x{row['speedup_wall_paired_median']:.2f}, CPU time "
              f"x{row['speedup_cpu']:.2f})", file=sys.stderr, flush=True)
    return {"base": args.compare, "base_src": str(base_src), "rows": rows}


def compare_markdown(res: dict) -> str:
    a, m = res["args"], res["machine"]
    L = [f"## Training step, {res['compare']['base']} (base) vs this branch, interleaved step by step",
         f"{a['variant']} on {a['backbone']}, strategy {(a['strategies'] or ['joint'])[0]}, batch {a['batch']}, "
         f"{a['threads'] or 'default'} threads, {m['cpu_model']} ({m['logical_cores']} logical cores), torch "
         f"{m['torch']}; load average {m['loadavg_start']} -> {m.get('loadavg_end')}; median of {a['steps']} "
         f"steps each after {a['warmup']} warm-up; this side's overrides: {a['override'] or 'none (defaults)'}",
         "",
         "| size | base step (s) | this step (s) | base steps/s | this steps/s | speed-up (wall) | paired | "
         "speed-up (CPU time) | max loss rel. diff | load avg |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["compare"]["rows"]:
        L.append(f"| {r['size'][0]}x{r['size'][1]} | {r['base']['median_wall_s']:.3f} | {r['this']['median_wall_s']:.3f} "
                 f"| {r['base']['steps_per_s']:.2f} | {r['this']['steps_per_s']:.2f} | {r['speedup_wall']:.2f} | "
                 f"{r['speedup_wall_paired_median']:.2f} | {r['speedup_cpu']:.2f} | {r['max_loss_rel_diff']:.1e} | "
                 f"{r['loadavg']} |")
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="Xception-65 at 256x512, batch 8 (the paper's setting)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 warm-up and 2 timed steps")
    ap.add_argument("--backbone", default=None, choices=("xception65", "xception_small"))
    ap.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="default 128 256")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--variant", default="sosd", help="model variant every strategy trains (default sosd)")
    ap.add_argument("--strategies", nargs="+", default=None, help="default: every entry of STRATEGIES")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per strategy (default 6; quick 2)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2; quick 1)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra config overrides for every run, e.g. train.amp=bf16")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per strategy (default 3600)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--interleaved", action="store_true",
                    help="time every strategy in ONE process, one step each in turn (round-robin: fair ratios "
                         "on a busy machine); adds the columns to the JSON of a previous per-process run at "
                         "the same --out, whose memory columns it keeps")
    ap.add_argument("--worker-interleaved", help=argparse.SUPPRESS)
    ap.add_argument("--compare", nargs="?", const="c46c54a", default=None, metavar="GIT_REF",
                    help="compare a base commit (default c46c54a, the main before issue 15) with this checkout: "
                         "two processes stepping in turn, at each --compare-sizes, medians and ratios")
    ap.add_argument("--compare-sizes", type=int, nargs="+", default=[64, 128, 72, 96], metavar="H W",
                    help="H W pairs of the comparison (default: the study sizes 64 128 72 96)")
    ap.add_argument("--base-override", nargs="*", default=[], metavar="KEY=VALUE",
                    help="overrides of the base side (--override applies to this side only)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--stepper", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.stepper:  # comparison child
        stepper(json.loads(args.stepper))
        return 0
    if args.worker_interleaved:  # child process: every strategy, round-robin
        job = json.loads(args.worker_interleaved)
        print("RESULT " + json.dumps(interleaved(job["specs"], job["rounds"], job["warmup"])), flush=True)
        return 0
    if args.worker:  # child process: one strategy
        try:
            res = worker(json.loads(args.worker))
        except Exception as e:  # noqa: BLE001 - reported by the parent as this strategy's failure
            print(f"{type(e).__name__}: {e}", file=sys.stderr)
            return 1
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    from sosd.train.strategies import STRATEGIES
    from sosd.train.strategies.jd import AGGREGATORS, SCALARIZERS

    STRATEGIES = dict(STRATEGIES)
    jd = STRATEGIES.pop("jd", None)
    if jd is not None:  # one row per torchjd method (the same class, different methods)
        for m in list(AGGREGATORS) + [m for m in SCALARIZERS if m not in AGGREGATORS]:
            STRATEGIES[f"jd:{m}"] = m
        for m in SCALARIZERS:
            if m in AGGREGATORS:  # Sum, Mean, Random, Constant: both kinds exist
                STRATEGIES[f"jd:{m}-scalarizer"] = m + "-s"

    args.backbone = args.backbone or ("xception65" if args.full else "xception_small")
    args.size = tuple(args.size or ((256, 512) if args.full else (128, 256)))
    args.steps = args.steps or (2 if args.quick else 6)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if args.compare:
        sizes = list(zip(args.compare_sizes[::2], args.compare_sizes[1::2]))
        common = _bench_common()
        machine = common.machine_info()
        res = {"machine": machine, "args": {k: v for k, v in vars(args).items() if k not in ("worker", "stepper")}}
        res["compare"] = compare(args, sizes, common)
        machine["loadavg_end"] = common.loadavg()
        out = Path(args.out or f"results/train_step_compare_{args.backbone}_b{args.batch}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1, default=str))
        text = compare_markdown(res)
        out.with_suffix(".md").write_text(text + "\n")
        print(text)
        print(f"\nwrote {out} and {out.with_suffix('.md')}")
        return 0
    names = args.strategies or list(STRATEGIES)
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        ap.error(f"unknown strategies {unknown}; registered: {', '.join(STRATEGIES)}")
    if "joint" in STRATEGIES and "joint" not in names:
        names = ["joint"] + names  # the reference of the ratios
    h, w = args.size
    out = Path(args.out or f"results/train_step_{args.backbone}_{h}x{w}_b{args.batch}.json")
    out.parent.mkdir(parents=True, exist_ok=True)

    common = _bench_common()
    machine = common.machine_info()
    if args.threads:
        machine["torch_threads"] = args.threads
    rows, measured = [], {}
    if args.interleaved:
        specs = [{"strategy": n, "variant": args.variant, "backbone": args.backbone, "size": list(args.size),
                  "batch": args.batch, "threads": args.threads, "device": args.device, "overrides": args.override}
                 for n in names if n != "single"]
        env = dict(os.environ)
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        p = subprocess.run([sys.executable, __file__, "--worker-interleaved",
                            json.dumps({"specs": specs, "rounds": args.steps, "warmup": args.warmup})],
                           stdout=subprocess.PIPE, text=True, env=env)
        got = next(json.loads(ln[7:]) for ln in p.stdout.splitlines() if ln.startswith("RESULT "))
        res = json.loads(out.read_text()) if out.is_file() else {"machine": machine, "rows": []}
        by = {r["strategy"]: r for r in res["rows"]}
        j = got.get("joint", {}).get("median_step_s")
        for n, g in got.items():
            r = by.setdefault(n, {"strategy": n})
            if "median_step_s" in g:
                r["interleaved_step_s"], r["interleaved_median_step_s"] = g["step_s"], g["median_step_s"]
                if j:
                    r["interleaved_vs_joint"] = g["median_step_s"] / j
            else:
                r["interleaved_error"] = g.get("error")
        res["rows"] = list(by.values())
        res["interleaved"] = {"args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
                                       if not k.startswith("worker")},
                              "machine": {**machine, "loadavg_end": common.loadavg()}}
        out.write_text(json.dumps(res, indent=1))
        print("| strategy | step (s, median, interleaved) | x joint |\n|---|---|---|")
        for r in res["rows"]:
            if "interleaved_median_step_s" in r:
                print(f"| {r['strategy']} | {r['interleaved_median_step_s']:.3f} | {r.get('interleaved_vs_joint', 0):.2f} |")
        print(f"\nwrote {out}")
        return 0
    for name in names:
        cls = STRATEGIES[name]
        if cls in measured:
            rows.append({"strategy": name, "note": f"alias of {measured[cls]} (same class {getattr(cls, '__name__', cls)})"})
            continue
        spec = {"strategy": name, "variant": args.variant, "backbone": args.backbone, "size": list(args.size),
                "batch": args.batch, "steps": args.steps, "warmup": args.warmup, "threads": args.threads,
                "device": args.device, "overrides": args.override}
        print(f"{name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        r = run_child(spec, args.timeout)
        r = {"strategy": name, "class": getattr(cls, "__name__", str(cls)), "wall_s": time.perf_counter() - t, **r}
        if "error" in r:
            print(f"  {name} skipped: {r['error']}", file=sys.stderr, flush=True)
        else:
            measured[cls] = name
        rows.append(r)
    joint = next((r for r in rows if r["strategy"] == "joint" and "median_step_s" in r), None)
    for r in rows:
        if joint and "median_step_s" in r:
            r["time_vs_joint"] = r["median_step_s"] / joint["median_step_s"]
            if r.get("step_peak_over_setup_bytes") and joint.get("step_peak_over_setup_bytes"):
                r["memory_vs_joint"] = r["step_peak_over_setup_bytes"] / joint["step_peak_over_setup_bytes"]
    machine["loadavg_end"] = common.loadavg()
    res = {"machine": machine, "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
                                        if k != "worker"}, "rows": rows}
    print(markdown(res))
    out.write_text(json.dumps(res, indent=1))
    print(f"\nwrote {out}", end="")
    if not args.no_png:
        plot(res, out.with_suffix(".png"))
        print(f" and {out.with_suffix('.png')}", end="")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
