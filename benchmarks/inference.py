"""Inference cost of the four variants (Table 1's speed and parameter columns) and of inference paths.

Run (from the repository root, on a quiet machine):

    .venv/bin/python benchmarks/inference.py                      # Xception-65, 256x512, all cores
    .venv/bin/python benchmarks/inference.py --threads 1          # one thread (torch and ONNX Runtime)
    .venv/bin/python benchmarks/inference.py --backbone xception_small
    .venv/bin/python benchmarks/inference.py --quick              # smoke test: small backbone, few repeats

What it measures, everything in one run with the same settings:

1. The machine's limit: fp32 matmul GFLOP/s (``torch.mm`` of two large square matrices, median of
   repeats) at the benchmark's thread count.
2. Per variant (semantic_only, depth_only, mtl, sosd): parameters, GFLOPs of one image (torch's
   FlopCounterMode via ``sosd model-info``'s ``describe``: convolutions and matmuls, 2 FLOPs per
   multiply-add), latency at batch 1 (median of ``--repeats`` after ``--warmup`` calls, under
   ``torch.inference_mode``), throughput at batch ``--batch`` (images/s from the median batch time), and
   achieved GFLOP/s = GFLOPs / latency as a fraction of the matmul peak. Then the Table 1 ratios, sosd vs
   mtl, beside the paper's (159.0 vs 142.2 ms: +11.8 %; 24.0 vs 23.6 M parameters: +1.7 %).
3. Inference paths for the sosd variant at batch 1: eager ``no_grad``, ``torch.inference_mode``,
   channels_last, BatchNorm folded (sosd.export.fuse), both, ``torch.compile`` (failures are caught and
   reported; its compile time is the "setup" column), ONNX Runtime (exported by sosd.export.onnx_export; all
   graph optimisations, intra-op threads = torch threads, no busy-wait spinning between calls since other
   paths run in between). Each path's output is checked against eager (sosd.export.compare_outputs) so a
   fast-but-wrong path shows.

Calls are interleaved round-robin (variant A, B, C, D, A, B, ...), so a change of machine load during the
run affects every row alike and the ratios stay fair; the load average before and after is recorded.
Models have random weights whose BatchNorm statistics are calibrated on synthetic street scenes (one
train-mode pass), so activations have a trained network's O(1) scale: a freshly initialised deep
network's activations shrink towards denormal floats, which are much slower on x86 CPUs and would
distort the timings. On CUDA (when present) everything is also measured there, with synchronisation.

Writes ``results/inference_<backbone>_<H>x<W>.json`` (every repeat, machine info) and a ``.png`` beside it;
prints Markdown tables.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

VARIANTS = ("semantic_only", "depth_only", "mtl", "sosd")
# Table 1 (Cityscapes, 256x512): inference time (ms) and parameters (M)
PAPER_TABLE1 = {"semantic_only": (139.1, 23.4), "depth_only": (140.7, 23.4), "mtl": (142.2, 23.6),
                "sosd": (159.0, 24.0)}
PATHS = ("eager_no_grad", "inference_mode", "channels_last", "bn_folded", "bn_folded_channels_last",
         "torch_compile", "onnxruntime")


# ------------------------------------------------------------------------------------ machine and timing

def _cpuinfo() -> tuple[str, int | None]:
    """(CPU model, physical cores) from /proc/cpuinfo (Linux); platform's answer elsewhere."""
    model, cores = platform.processor() or platform.machine(), set()
    try:
        phys = core = None
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = (s.strip() for s in line.partition(":"))
            if k == "model name" and model in ("", platform.processor(), platform.machine()):
                model = v
            elif k == "physical id":
                phys = v
            elif k == "core id":
                core = v
            elif not k and phys is not None and core is not None:
                cores.add((phys, core))
                phys = core = None
    except OSError:
        pass
    return model, (len(cores) or None)


def loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def machine_info() -> dict:
    model, physical = _cpuinfo()
    info = {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg_start": loadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def round_robin(fns: dict, warmup: int, repeats: int, device="cpu") -> dict[str, list[float]]:
    """Milliseconds of each call of each function, interleaved: ``warmup`` untimed calls each, then
    ``repeats`` rounds of one timed call per function."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times[k].append((time.perf_counter() - t) * 1e3)
    return times


def stats(ms: list[float]) -> dict:
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "q1_ms": q[0], "q3_ms": q[2], "n": len(ms),
            "all_ms": [round(t, 4) for t in ms]}


def matmul_peak(n: int, repeats: int, device="cpu") -> dict:
    """fp32 GFLOP/s of an n x n by n x n torch.mm (2 n^3 FLOPs), median of ``repeats`` after a warm-up."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    ms = round_robin({"mm": lambda: torch.mm(a, b)}, warmup=2, repeats=repeats, device=device)["mm"]
    med = statistics.median(ms)
    return {"n": n, "median_ms": med, "gflops_per_s": 2 * n ** 3 / (med / 1e3) / 1e9,
            "best_gflops_per_s": 2 * n ** 3 / (min(ms) / 1e3) / 1e9}


# ------------------------------------------------------------------------------------------- models

def build(variant: str, backbone: str, num_classes: int, calib: torch.Tensor, device) -> torch.nn.Module:
    """A random-weight model with BatchNorm statistics calibrated on ``calib`` (see the module docstring)."""
    from sosd.config import ModelConfig
    from sosd.models import SOSDNet

    torch.manual_seed(0)
    m = SOSDNet(ModelConfig(variant=variant, backbone=backbone, num_classes=num_classes))
    for bn in m.modules():
        if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: the statistics of the calibration batch
    m.train()
    with torch.no_grad():
        m(calib)
    return m.eval().to(device)


def calibration_batch(h: int, w: int, n: int = 2) -> torch.Tensor:
    from sosd.data.synthetic import SyntheticScenes

    ds = SyntheticScenes("street", size=n, seed=0, height=h, width=w)
    return torch.stack([torch.from_numpy(ds.sample(i).image.copy()).permute(2, 0, 1) for i in range(n)]).float() / 255


def count(variant, backbone, size, num_classes) -> dict:
    from sosd.models.info import describe

    r = describe(variant, backbone, size, num_classes)
    return {"params_m": r["params_m"], "gflops": r["gflops"]}


# ------------------------------------------------------------------------------------------- sections

def bench_variants(args, device, peak: dict, calib) -> dict:
    h, w = args.size
    x1 = torch.rand(1, 3, h, w, device=device)
    xb = torch.rand(args.batch, 3, h, w, device=device)
    models, rows = {}, {}
    for v in args.variants:
        rows[v] = count(v, args.backbone, (h, w), args.num_classes)
        models[v] = build(v, args.backbone, args.num_classes, calib, device)

    def call(m, x):
        def f():
            with torch.inference_mode():
                m(x)
        return f

    print(f"  [{device}] latency at batch 1 ({args.repeats} rounds) ...", file=sys.stderr, flush=True)
    lat = round_robin({v: call(m, x1) for v, m in models.items()}, args.warmup, args.repeats, device)
    print(f"  [{device}] throughput at batch {args.batch} ({args.batch_repeats} rounds) ...", file=sys.stderr,
          flush=True)
    thr = round_robin({v: call(m, xb) for v, m in models.items()}, min(args.warmup, 1), args.batch_repeats,
                      device)
    for v in args.variants:
        r = rows[v]
        r["latency"] = stats(lat[v])
        r["batch"] = {"batch_size": args.batch, **stats(thr[v])}
        r["throughput_img_s"] = args.batch / (r["batch"]["median_ms"] / 1e3)
        r["achieved_gflops_per_s"] = r["gflops"] / (r["latency"]["median_ms"] / 1e3)
        r["fraction_of_matmul_peak"] = r["achieved_gflops_per_s"] / peak["gflops_per_s"]
        r["batch_achieved_gflops_per_s"] = r["gflops"] * args.batch / (r["batch"]["median_ms"] / 1e3)
        r["paper_ms"], r["paper_params_m"] = PAPER_TABLE1[v]
    del models
    return rows


def ratios(rows: dict) -> dict | None:
    if "sosd" not in rows or "mtl" not in rows:
        return None
    s, m = rows["sosd"], rows["mtl"]
    pct = lambda a, b: 100 * (a / b - 1)  # noqa: E731
    return {
        "latency_pct": pct(s["latency"]["median_ms"], m["latency"]["median_ms"]),
        "throughput_time_pct": pct(s["batch"]["median_ms"], m["batch"]["median_ms"]),
        "params_pct": pct(s["params_m"], m["params_m"]),
        "gflops_pct": pct(s["gflops"], m["gflops"]),
        "paper_latency_pct": pct(*[PAPER_TABLE1[k][0] for k in ("sosd", "mtl")]),
        "paper_params_pct": pct(*[PAPER_TABLE1[k][1] for k in ("sosd", "mtl")]),
    }


def bench_paths(args, device, peak: dict, calib) -> dict:
    """Latency of the inference paths for the sosd variant at batch 1."""
    from sosd.export import compare_outputs
    from sosd.export.fuse import fuse_bn

    h, w = args.size
    base = build("sosd", args.backbone, args.num_classes, calib, device)
    gflops = count("sosd", args.backbone, (h, w), args.num_classes)["gflops"]
    x = torch.rand(1, 3, h, w, device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = base(x)
    fns, outs, info = {}, {}, {}

    def add(name, setup):
        """setup() -> (fn, out_fn): fn times one call; out_fn() -> output dict for the check."""
        if name not in args.paths:
            return
        t = time.perf_counter()
        try:
            fn, out_fn = setup()
            outs[name] = out_fn()  # first call: compiles / builds what it needs
            info[name] = {"setup_s": time.perf_counter() - t, "ok": True}
            fns[name] = fn
        except Exception as e:  # noqa: BLE001 - a path that does not work here is reported, not fatal
            msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:300]
            info[name] = {"ok": False, "error": msg}
            print(f"  path {name} failed: {msg}", file=sys.stderr, flush=True)

    def eager(model, inp, ctx):
        def fn():
            with ctx():
                return model(inp)
        return fn, fn

    add("eager_no_grad", lambda: eager(base, x, torch.no_grad))
    add("inference_mode", lambda: eager(base, x, torch.inference_mode))
    add("channels_last", lambda: eager(copy.deepcopy(base).to(memory_format=torch.channels_last), x_cl,
                                       torch.inference_mode))
    fused = fuse_bn(base) if {"bn_folded", "bn_folded_channels_last"} & set(args.paths) else None
    add("bn_folded", lambda: eager(fused, x, torch.inference_mode))
    add("bn_folded_channels_last", lambda: eager(copy.deepcopy(fused).to(memory_format=torch.channels_last),
                                                 x_cl, torch.inference_mode))

    def compiled():
        c = torch.compile(base)
        return eager(c, x, torch.inference_mode)
    add("torch_compile", compiled)

    tmp = tempfile.TemporaryDirectory()

    def ort():
        from sosd.export.onnx_export import export_onnx
        from sosd.export.onnx_runtime import make_session

        if device != "cpu":
            raise RuntimeError("ONNX Runtime is measured on the CPU only")
        path = export_onnx(base, Path(tmp.name) / "sosd.onnx", h, w)
        # no busy-waiting between calls: the other paths' calls run in between (round-robin) on the same cores
        sess = make_session(path, threads=torch.get_num_threads(), optimization="all", spinning=False)
        feeds = {"image": x.cpu().numpy()}
        names = [o.name for o in sess.get_outputs()]

        def fn():
            return dict(zip(names, (torch.from_numpy(a) for a in sess.run(names, feeds))))
        return fn, fn
    add("onnxruntime", ort)
    if info.get("onnxruntime", {}).get("ok"):
        info["onnxruntime"]["session"] = {"graph_optimization": "ORT_ENABLE_ALL", "spinning": False,
                                          "intra_op_threads": torch.get_num_threads(), "inter_op_threads": 1}

    print(f"  [{device}] inference paths ({args.repeats} rounds: {', '.join(fns)}) ...", file=sys.stderr, flush=True)
    times = round_robin(fns, max(args.warmup, 2), args.repeats, device)
    tmp.cleanup()
    rows = {}
    for name in args.paths:
        r = dict(info.get(name, {"ok": False, "error": "not run"}))
        if name in times:
            r["latency"] = stats(times[name])
            r["achieved_gflops_per_s"] = gflops / (r["latency"]["median_ms"] / 1e3)
            r["fraction_of_matmul_peak"] = r["achieved_gflops_per_s"] / peak["gflops_per_s"]
            r["check_vs_eager"] = compare_outputs({k: v.float().cpu() for k, v in ref.items()},
                                                  {k: v.float().cpu() for k, v in outs[name].items()})
        rows[name] = r
    base_ms = rows.get("eager_no_grad", {}).get("latency", {}).get("median_ms")
    for r in rows.values():
        if base_ms and "latency" in r:
            r["speedup_vs_eager"] = base_ms / r["latency"]["median_ms"]
    return {"gflops": gflops, "paths": rows}


# ------------------------------------------------------------------------------------------- report

def markdown(res: dict) -> str:
    L = []
    m, a = res["machine"], res["args"]
    L.append(f"## Inference: {a['backbone']} at {a['size'][0]}x{a['size'][1]}, {a['num_classes']} classes")
    L.append(f"{m['cpu_model']}, {m['logical_cores']} logical / {m['physical_cores']} physical cores, "
             f"torch {m['torch']} ({m['torch_threads']} threads), onnxruntime {m['onnxruntime']}, "
             f"load average {m['loadavg_start']} -> {m.get('loadavg_end')}")
    for dev, d in res["devices"].items():
        pk = d["matmul_peak"]
        L.append("")
        L.append(f"### {dev}: fp32 matmul peak {pk['gflops_per_s']:.1f} GFLOP/s (torch.mm {pk['n']}x{pk['n']}, "
                 f"median)")
        if "variants" in d:
            L.append("")
            L.append(f"| variant | params (M) | GFLOPs | latency b=1 (ms, median [q1-q3]) | batch {a['batch']} "
                     f"(img/s) | achieved GFLOP/s | of matmul peak | paper ms | paper params (M) |")
            L.append("|---|---|---|---|---|---|---|---|---|")
            for v, r in d["variants"].items():
                lt = r["latency"]
                L.append(f"| {v} | {r['params_m']:.2f} | {r['gflops']:.2f} | {lt['median_ms']:.1f} "
                         f"[{lt['q1_ms']:.1f}-{lt['q3_ms']:.1f}] | {r['throughput_img_s']:.2f} | "
                         f"{r['achieved_gflops_per_s']:.1f} | {100 * r['fraction_of_matmul_peak']:.1f} % | "
                         f"{r['paper_ms']} | {r['paper_params_m']} |")
            rt = d.get("table1_ratios")
            if rt:
                L.append("")
                L.append("Table 1 ratios, sosd vs mtl:")
                L.append("")
                L.append("| | ours | paper |")
                L.append("|---|---|---|")
                L.append(f"| latency b=1 | {rt['latency_pct']:+.1f} % | {rt['paper_latency_pct']:+.1f} % "
                         f"(159.0 vs 142.2 ms) |")
                L.append(f"| time per batch of {a['batch']} | {rt['throughput_time_pct']:+.1f} % | |")
                L.append(f"| parameters | {rt['params_pct']:+.2f} % | {rt['paper_params_pct']:+.1f} % "
                         f"(24.0 vs 23.6 M) |")
                L.append(f"| GFLOPs | {rt['gflops_pct']:+.1f} % | (not reported) |")
        if "paths" in d:
            p = d["paths"]
            L.append("")
            L.append(f"Inference paths, sosd at batch 1 ({p['gflops']:.2f} GFLOPs):")
            L.append("")
            L.append("| path | latency (ms, median [q1-q3]) | vs eager no_grad | achieved GFLOP/s | of matmul peak "
                     "| setup (s) | output vs eager |")
            L.append("|---|---|---|---|---|---|---|")
            for name, r in p["paths"].items():
                if "latency" not in r:
                    L.append(f"| {name} | failed: {r.get('error', '')} | | | | | |")
                    continue
                lt, c = r["latency"], r["check_vs_eager"]
                err = []
                if "depth_rel" in c:
                    err.append(f"depth {c['depth_rel']:.0e}")
                if "semantic_rel" in c:
                    err.append(f"logits {c['semantic_rel']:.0e}, argmax {100 * c['argmax_agreement']:.2f} %")
                speedup = f"{r['speedup_vs_eager']:.2f}x" if "speedup_vs_eager" in r else "-"
                L.append(f"| {name} | {lt['median_ms']:.1f} [{lt['q1_ms']:.1f}-{lt['q3_ms']:.1f}] | "
                         f"{speedup} | {r['achieved_gflops_per_s']:.1f} | "
                         f"{100 * r['fraction_of_matmul_peak']:.1f} % | {r['setup_s']:.1f} | "
                         f"{'ok' if c['ok'] else 'MISMATCH'} ({'; '.join(err)}) |")
    return "\n".join(L)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dev = "cpu" if "cpu" in res["devices"] else next(iter(res["devices"]))
    d = res["devices"][dev]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    if "variants" in d:
        ax = axes[0]
        vs = list(d["variants"])
        ours = [d["variants"][v]["latency"]["median_ms"] for v in vs]
        ref = "mtl" if "mtl" in vs else vs[0]
        ours_rel = [o / d["variants"][ref]["latency"]["median_ms"] for o in ours]
        paper_rel = [PAPER_TABLE1[v][0] / PAPER_TABLE1[ref][0] for v in vs]
        xs = range(len(vs))
        ax.bar([i - 0.2 for i in xs], ours_rel, 0.4, label=f"ours ({dev}, b=1)")
        ax.bar([i + 0.2 for i in xs], paper_rel, 0.4, label="paper (Table 1)")
        for i, o in enumerate(ours):
            ax.text(i - 0.2, ours_rel[i], f"{o:.0f} ms", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs), vs)
        ax.set_ylabel(f"latency relative to {ref}")
        ax.set_ylim(0, max(ours_rel + paper_rel) * 1.2)
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(f"variants, {res['args']['backbone']} {res['args']['size'][0]}x{res['args']['size'][1]}")
    if "paths" in d:
        ax = axes[1]
        rows = {k: r for k, r in d["paths"]["paths"].items() if "latency" in r}
        names = list(rows)
        ms = [rows[k]["latency"]["median_ms"] for k in names]
        ax.barh(names, ms)
        for i, k in enumerate(names):
            ax.text(ms[i], i, f" {ms[i]:.0f} ms, {100 * rows[k]['fraction_of_matmul_peak']:.0f} % of peak",
                    va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(ms) * 1.6 if ms else 1)
        ax.set_xlabel("latency at batch 1 (ms, median)")
        ax.set_title("sosd inference paths")
    m = res["machine"]
    fig.suptitle(f"{m['cpu_model']}, {m['torch_threads']} threads, torch {m['torch']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default=None, choices=("xception65", "xception_small"),
                    help="default xception65 (the paper's); --quick: xception_small")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    ap.add_argument("--num-classes", type=int, default=19, help="default 19 (Cityscapes, Table 1)")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds at batch 1 (default 20; quick 3)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 3; quick 1)")
    ap.add_argument("--batch", type=int, default=8, help="batch size of the throughput measurement (default 8)")
    ap.add_argument("--batch-repeats", type=int, default=None, help="timed rounds at --batch (default 5; quick 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: torch's)")
    ap.add_argument("--matmul-size", type=int, default=None, help="n of the peak matmul (default 2048; quick 512)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--paths", nargs="*", default=None, choices=PATHS,
                    help=f"inference paths to compare (default all: {' '.join(PATHS)}); none: skip")
    ap.add_argument("--device", nargs="+", default=None, help="cpu and/or cuda (default: cpu, plus cuda if present)")
    ap.add_argument("--quick", action="store_true", help="smoke test: xception_small, few repeats")
    ap.add_argument("--out", default=None, help="JSON path (default results/inference_<backbone>_<H>x<W>.json)")
    ap.add_argument("--no-png", action="store_true")
    args = ap.parse_args(argv)

    q = args.quick
    args.backbone = args.backbone or ("xception_small" if q else "xception65")
    args.repeats = args.repeats or (3 if q else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if q else 3)
    args.batch_repeats = args.batch_repeats or (2 if q else 5)
    args.matmul_size = args.matmul_size or (512 if q else 2048)
    args.paths = list(PATHS) if args.paths is None else args.paths
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = args.size
    out = Path(args.out or f"results/inference_{args.backbone}_{h}x{w}.json")
    out.parent.mkdir(parents=True, exist_ok=True)

    res = {"machine": machine_info(), "args": {k: (list(v) if isinstance(v, tuple) else v)
                                                for k, v in vars(args).items()}, "devices": {}}
    calib = calibration_batch(h, w)
    for dev in devices:
        if dev.startswith("cuda") and not torch.cuda.is_available():
            print(f"skipping {dev}: CUDA is not available", file=sys.stderr)
            continue
        d = res["devices"][dev] = {}
        print(f"[{dev}] matmul peak ...", file=sys.stderr, flush=True)
        d["matmul_peak"] = matmul_peak(args.matmul_size, max(5, args.repeats // 2), dev)
        if args.variants:
            d["variants"] = bench_variants(args, dev, d["matmul_peak"], calib)
            d["table1_ratios"] = ratios(d["variants"])
        if args.paths:
            d["paths"] = bench_paths(args, dev, d["matmul_peak"], calib)
    res["machine"]["loadavg_end"] = loadavg()
    text = markdown(res)
    print(text)
    out.write_text(json.dumps(res, indent=1))
    print(f"\nwrote {out}", end="")
    if not args.no_png:
        png = out.with_suffix(".png")
        plot(res, png)
        print(f" and {png}", end="")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
