"""Where the time of one training step goes: torch.profiler breakdown and achieved FLOP/s vs the matmul peak.

Run (from the repository root):

    .venv/bin/python benchmarks/profile_train.py                        # the study sizes + Xception-65
    .venv/bin/python benchmarks/profile_train.py --cases small_64x128   # one case
    .venv/bin/python benchmarks/profile_train.py --override train.compile=false train.channels_last=false

Cases (``--cases``; default all): ``small_64x128`` and ``small_72x96`` (xception_small with the
``configs/synthetic/*_small.yaml`` head widths, batch 8: the ablation studies' sizes) and
``x65_256x512`` (Xception-65, the paper's 256x512; batch ``--x65-batch``, default 8).

What one case does, in one process (``--threads``, default 2): build the real
:class:`sosd.train.loop.Trainer` exactly as ``benchmarks/train_step.py`` does (one pre-rendered batch in
memory), run ``--warmup`` steps, time ``--steps`` steps without the profiler (the step time reported), then
profile ``--profile-steps`` steps with ``torch.profiler`` (CPU activity). Every profiled op's *self* time
is put in one bucket, by the first of its ancestors (or itself) that names one:

- ``optimizer``: inside ``Optimizer.step`` / ``zero_grad`` (Adam's per-parameter updates);
- ``convolution``: conv forward and ``ConvolutionBackward`` (oneDNN / im2col kernels);
- ``batchnorm``: ``batch_norm`` forward and ``NativeBatchNormBackward``;
- ``elementwise``: ReLU and its backward, add/mul, softplus, sqrt, cat, copies, resizes, ...;
- ``loss``: cross-entropy / L1 of the loss functions;
- ``other ops``: everything else the profiler saw (allocation, views, autograd bookkeeping);
- ``python / framework``: the profiled step's wall time minus the ops' self time: Python of the loop, the
  strategy and the modules, dispatcher and autograd-engine overhead between ops.

``data``: the step benchmark holds one batch in memory, so collating it is the only data cost in the step;
the real loader (rendering synthetic scenes in the main process, ``data.num_workers=0``) is timed
separately, one batch per call, and reported beside the step (it is what a real run pays on top unless
workers prefetch).

FLOPs: 3x the forward's, counted by ``torch.utils.flop_counter.FlopCounterMode`` on the step's batch
(convolutions and matmuls, 2 FLOPs per multiply-add; the backward's input and weight gradients cost about
one forward each; BatchNorm, element-wise ops and Adam are not counted: they are memory-bound). Achieved GFLOP/s = counted FLOPs / median step time, as a fraction of the fp32 matmul peak
that ``benchmarks/inference.py`` measures (its ``matmul_peak``, same thread count, measured in this run).

Writes ``results/profile_train.json`` (every case, the top ops, machine info, load average) and
``results/profile_train.md``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# the small configs' head widths (configs/synthetic/*_small.yaml)
SMALL = ["model.aspp_channels=64", "model.decoder_channels=64", "model.refined_channels=24"]  # = train_step.SMALL_WIDTHS
CASES = {
    "small_64x128": {"backbone": "xception_small", "size": (64, 128), "batch": 8, "overrides": SMALL},
    "small_72x96": {"backbone": "xception_small", "size": (72, 96), "batch": 8, "overrides": SMALL},
    "x65_256x512": {"backbone": "xception65", "size": (256, 512), "batch": 8, "overrides": []},
    # the README main job (configs/synthetic/esosd_indoor_small.yaml): EM on indoor scenes at 120x160;
    # run it with --threads 2 as the job does
    "main_120x160": {"backbone": "xception_small", "size": (120, 160), "batch": 8, "preset": "indoor",
                     "strategy": "em", "overrides": SMALL},
}
BUCKETS = ("convolution", "batchnorm", "elementwise", "loss", "optimizer", "other ops", "python / framework")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_sosd_bench_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bucket_of(names: list[str]) -> str | None:
    """The bucket named by the first of ``names`` (root first) that names one; None: no name does."""
    for n in names:
        low = n.lower()
        if low.startswith("optimizer.") or "adam" in low:
            return "optimizer"
        if "conv" in low:
            return "convolution"
        if "batch_norm" in low or "batchnorm" in low:
            return "batchnorm"
        if any(k in low for k in ("cross_entropy", "nll_loss", "log_softmax", "l1_loss", "depth_l1",
                                  "semantic_ce")):
            return "loss"
    return None


ELEMENTWISE = ("relu", "threshold", "add", "mul", "div", "sub", "softplus", "sqrt", "cat", "copy", "fill",
               "upsample", "interpolate", "clone", "where", "abs", "sign", "neg", "pow", "exp", "log", "mean",
               "sum", "masked", "index", "zero", "clamp", "max", "min", "lerp", "ne", "eq", "gt", "lt", "to")


def breakdown(prof, n_steps: int, wall_s: float) -> dict:
    """Per-step seconds of each bucket from a profile of ``n_steps`` steps that took ``wall_s`` seconds."""
    tot = dict.fromkeys(BUCKETS, 0.0)
    ops: dict[str, float] = {}
    for ev in prof.events():
        if ev.device_type.name != "CPU":
            continue
        self_s = ev.self_cpu_time_total / 1e6
        if self_s <= 0:
            continue
        chain, e = [], ev
        while e is not None:
            chain.append(e.name)
            e = e.cpu_parent
        b = bucket_of(chain[::-1])
        if b is None:
            leaf = ev.name.lower().removeprefix("aten::").lstrip("_")
            b = "elementwise" if any(leaf.startswith(k) for k in ELEMENTWISE) else "other ops"
        tot[b] += self_s
        ops[ev.name] = ops.get(ev.name, 0.0) + self_s
    op_s = sum(tot.values())
    tot["python / framework"] = max(0.0, wall_s - op_s)
    per_step = {k: v / n_steps for k, v in tot.items()}
    top = sorted(ops.items(), key=lambda kv: -kv[1])[:15]
    return {"per_step_s": per_step, "profiled_step_s": wall_s / n_steps,
            "share": {k: v / max(1e-12, wall_s) for k, v in tot.items()},
            "top_ops_self_s_per_step": {k: v / n_steps for k, v in top}}


def profile_case(name: str, case: dict, args, peak: dict) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    ts = _load("train_step")
    spec = {"strategy": case.get("strategy", args.strategy), "variant": args.variant,
            "backbone": case["backbone"], "preset": case.get("preset", "street"),
            "size": list(case["size"]), "batch": case["batch"], "threads": args.threads, "device": "cpu",
            "overrides": list(case["overrides"]) + list(args.override)}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = ts.bench_trainer(spec, Path(tmp))
        real = ts.bench_config(spec)
        k = 0

        def step():
            nonlocal k
            k += 1
            assert trainer.train_steps(until=k) == "done"

        for _ in range(args.warmup):
            step()
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t = time.perf_counter()
            for _ in range(args.profile_steps):
                step()
            wall = time.perf_counter() - t
        params_m = sum(p.numel() for p in trainer.model.parameters()) / 1e6
        # forward FLOPs of the step's batch, x3 for forward + backward (input and weight gradients each cost
        # about one forward). Not FlopCounterMode over the backward itself: torch 2.13's formula for the
        # backward of grouped (depthwise) convolutions ignores the groups and counts them ~C times over
        # (measured: backward 6.9x the forward on xception_small)
        b = torch.utils.data.default_collate([trainer.train_set[i] for i in range(case["batch"])])
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            trainer.model(b["image"], b["intrinsics"])
        flops = 3 * fc.get_total_flops()
        # the real data path: one batch of the synthetic scenes, rendered and collated in this process
        from sosd.data import build_dataset

        ds = build_dataset(real.data, real.data.train_split, train=True, seed=0)
        loader_times = []
        for i in range(args.data_batches):
            t = time.perf_counter()
            torch.utils.data.default_collate([ds[(i * case["batch"] + j) % len(ds)] for j in range(case["batch"])])
            loader_times.append(time.perf_counter() - t)
    med = statistics.median(times)
    res = {"case": name, "backbone": case["backbone"], "size": list(case["size"]), "batch": case["batch"],
           "strategy": spec["strategy"], "variant": args.variant, "overrides": spec["overrides"],
           "params_m": params_m, "step_s": times, "median_step_s": med, "steps_per_s": 1 / med,
           "gflops_per_step": flops / 1e9, "achieved_gflops_per_s": flops / 1e9 / med,
           "fraction_of_matmul_peak": flops / 1e9 / med / peak["gflops_per_s"],
           "data_batch_s": statistics.median(loader_times),
           **breakdown(prof, args.profile_steps, wall)}
    return res


def markdown(res: dict) -> str:
    m, p = res["machine"], res["matmul_peak"]
    L = ["# One training step, profiled", "",
         f"{m['cpu_model']}, {m['logical_cores']} logical cores, torch {m['torch']}, {res['args']['threads']} "
         f"threads; load average {m['loadavg_start']} -> {m.get('loadavg_end')} (a shared machine: absolute "
         f"times are noisy, shares less so). fp32 matmul peak ({p['n']}x{p['n']}): {p['gflops_per_s']:.1f} GFLOP/s. "
         f"Strategy {res['args']['strategy']}, variant {res['args']['variant']}; overrides "
         f"{res['args']['override'] or 'none (the defaults)'}.", "",
         "| case | step (s, median) | steps/s | GFLOP/step | GFLOP/s | of peak | data batch (s) | "
         + " | ".join(BUCKETS) + " |",
         "|---" * (8 + len(BUCKETS)) + "|"]
    for c in res["cases"]:
        if "error" in c:
            L.append(f"| {c['case']} | failed: {c['error']} |" + " |" * (6 + len(BUCKETS)))
            continue
        shares = " | ".join(f"{100 * c['share'][b]:.0f} %" for b in BUCKETS)
        L.append(f"| {c['case']} (b{c['batch']}) | {c['median_step_s']:.3f} | {c['steps_per_s']:.2f} | "
                 f"{c['gflops_per_step']:.2f} | {c['achieved_gflops_per_s']:.1f} | "
                 f"{100 * c['fraction_of_matmul_peak']:.0f} % | {c['data_batch_s']:.3f} | {shares} |")
    L += ["", "Shares are of the profiled step's wall time (the profiler adds some overhead, counted in "
          "python / framework). Top ops by self time per step:", ""]
    for c in res["cases"]:
        if "top_ops_self_s_per_step" in c:
            top = ", ".join(f"{k} {1e3 * v:.0f} ms" for k, v in list(c["top_ops_self_s_per_step"].items())[:8])
            L.append(f"- {c['case']}: {top}")
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--x65-batch", type=int, default=8, help="batch of the Xception-65 case (default 8)")
    ap.add_argument("--strategy", default="joint")
    ap.add_argument("--variant", default="sosd")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (no profiler)")
    ap.add_argument("--profile-steps", type=int, default=2)
    ap.add_argument("--data-batches", type=int, default=3)
    ap.add_argument("--matmul-size", type=int, default=2048)
    ap.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default="results/profile_train.json")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    inf = _load("inference")
    machine = inf.machine_info()
    peak = inf.matmul_peak(args.matmul_size, 7)
    cases = []
    for name in args.cases:
        case = dict(CASES[name])
        if name.startswith("x65"):
            case["batch"] = args.x65_batch
        print(f"{name} ...", file=sys.stderr, flush=True)
        try:
            cases.append(profile_case(name, case, args, peak))
        except Exception as e:  # noqa: BLE001 - reported in the table
            cases.append({"case": name, "error": f"{type(e).__name__}: {e}"[:300]})
    machine["loadavg_end"] = inf.loadavg()
    res = {"machine": machine, "args": vars(args), "matmul_peak": peak, "cases": cases}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    text = markdown(res)
    out.with_suffix(".md").write_text(text + "\n")
    print(text)
    print(f"\nwrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
