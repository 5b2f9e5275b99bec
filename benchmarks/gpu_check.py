"""The CUDA paths of sosd, checked and timed on one GPU in a few minutes: run it when a GPU is at hand.

Run (from the repository root):

    .venv/bin/python benchmarks/gpu_check.py              # on a CUDA machine: ~3-6 minutes on a recent GPU
    .venv/bin/python benchmarks/gpu_check.py --dry-run    # the same code paths on the CPU, tiny and fast

Without CUDA (and without ``--dry-run``) it says so and exits 0. Sections, each timed and recorded on its
own (a failing section is reported with its error and the others still run; the exit status is 1 if any
check failed):

1. ``amp``: the sosd model (random weights, BatchNorm statistics calibrated on synthetic scenes, so
   activations have a trained network's scale) in fp32 vs autocast bf16 and fp16: forward outputs, and the
   losses of one training step. Tolerances (:data:`AMP_TOL`): mean |depth error| / mean depth <= 10 %
   (bf16) / 1.5 % (fp16), mean |logit error| / mean |logit| <= 8 % / 1 %, argmax agreement >= 95 % / 99 %,
   losses within 3 % / 0.5 %. bf16 keeps 8 bits of mantissa (~0.4 % per rounding) against fp16's 11,
   hence the looser bf16 bounds; the bounds are those of the CPU dry run (Xception-small, 64x64: bf16
   depth 6.7 %, logits 4.1 %, argmax 97.2 %, loss 1.8 %; fp16 0.86 %, 0.46 %, 99.6 %, 0.22 %) with
   margin: a broken autocast path (a layer left in half precision across a reduction, a lost loss
   scale) lands far outside them. Max errors and the cosine similarity of the step's gradient to fp32's are recorded
   too, not judged: on a random-weight network (no training signal yet) the gradient is dominated by
   near-cancelling terms, so its direction under bf16 is not a meaningful check (measured 0.58 on the CPU).
2. ``channels_last``: the same model in channels_last memory format: outputs against contiguous fp32
   (``sosd.export.compare_outputs`` tolerances) and latency of both.
3. ``compile``: ``torch.compile`` (inductor; ``--dry-run``: the ``eager`` backend, which runs dynamo's
   capture without code generation so the dry run stays fast): outputs against eager, compile time, latency.
4. ``ddp``: ``torch.distributed`` with NCCL (gloo on the CPU) in ONE process (world size 1, rank 0, a free
   local port): the real training loop (``sosd.train.loop.Trainer``) wrapped in DistributedDataParallel by
   ``sosd.train.distributed.Replicas``, one step, loss and weights against the same step without DDP.
5. ``onnxruntime``: the model exported to ONNX (``sosd.export.onnx_export``) and run by ONNX Runtime's
   CUDA provider when installed (``--dry-run``: the CPU provider), outputs against eager, latency.
6. ``table1``: the Table 1 rows (semantic_only, depth_only, mtl, sosd, and ESOSD = sosd trained with EM) at
   256x512: inference latency at batch 1 (fp32, median of ``--repeats``), and the real training step at
   batch ``--train-batch`` (default 16) with AMP (bf16 where supported, else fp16), median of ``--steps``
   after ``--warmup``, plus peak CUDA memory.

Writes ``results/gpu_<gpu name>.json`` (``--dry-run``: ``results/gpu_dryrun_cpu.json`` unless ``--out``),
with the GPU named, torch/CUDA versions and every timing.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
VARIANTS = ("semantic_only", "depth_only", "mtl", "sosd")
# Table 1 rows: (row name, variant, strategy)
TABLE1 = (("semantic_only", "semantic_only", "single"), ("depth_only", "depth_only", "single"),
          ("mtl", "mtl", "joint"), ("sosd", "sosd", "joint"), ("esosd", "sosd", "em"))
AMP_TOL = {  # see the module docstring
    "bf16": {"depth_mean_rel": 0.10, "semantic_mean_rel": 0.08, "argmax_agreement": 0.95, "loss_rel": 0.03},
    "fp16": {"depth_mean_rel": 0.015, "semantic_mean_rel": 0.01, "argmax_agreement": 0.99, "loss_rel": 0.005},
}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_sosd_bench_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn, dev, warmup: int, repeats: int) -> dict:
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(repeats):
        sync(dev)
        t = time.perf_counter()
        fn()
        sync(dev)
        ms.append((time.perf_counter() - t) * 1e3)
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "n": len(ms)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ sections

def check_amp(ctx) -> dict:
    from sosd.export import compare_outputs
    from sosd.losses import depth_l1, semantic_ce

    dev, model, x = ctx["dev"], ctx["model"], ctx["x"]
    target = torch.rand(x.shape[0], 1, *x.shape[-2:], device=dev) * 5 + 1
    valid = torch.ones_like(target, dtype=torch.bool)
    labels = torch.randint(0, ctx["num_classes"], (x.shape[0], *x.shape[-2:]), device=dev)

    def step(dtype):
        m = copy.deepcopy(model).train()
        with torch.autocast(dev.type, dtype=dtype) if dtype else contextlib.nullcontext():
            out = m(x)
            losses = {"sem": semantic_ce(out["semantic"], labels), "dep": depth_l1(out["depth"], target, valid)}
        (losses["sem"] + losses["dep"]).backward()
        grad = torch.cat([p.grad.flatten().float() for p in m.parameters() if p.grad is not None])
        return {k: float(v.detach()) for k, v in losses.items()}, grad

    with torch.no_grad():
        ref = {k: v.float() for k, v in model(x).items()}
    ref_losses, ref_grad = step(None)
    res = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        tol = AMP_TOL[name]
        try:
            with torch.no_grad(), torch.autocast(dev.type, dtype=dtype):
                out = {k: v.float() for k, v in model(x).items()}
            cmp = compare_outputs(ref, out)
            losses, grad = step(dtype)
        except Exception as e:  # noqa: BLE001 - e.g. fp16 autocast not supported on this device
            res[name] = {"error": f"{type(e).__name__}: {e}"[:300], "ok": False}
            continue
        loss_rel = max(abs(losses[k] - ref_losses[k]) / max(abs(ref_losses[k]), 1e-12) for k in losses)
        cos = float(torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0))
        mean_rel = {f"{k}_mean_rel": float((out[k] - ref[k]).abs().mean() / ref[k].abs().mean().clamp_min(1e-12))
                    for k in ("depth", "semantic")}
        ok = (mean_rel["depth_mean_rel"] <= tol["depth_mean_rel"]
              and mean_rel["semantic_mean_rel"] <= tol["semantic_mean_rel"]
              and cmp["argmax_agreement"] >= tol["argmax_agreement"] and loss_rel <= tol["loss_rel"])
        res[name] = {**mean_rel, **{k: v for k, v in cmp.items() if k != "ok"}, "loss_rel": loss_rel,
                     "grad_cos": cos, "losses": losses, "fp32_losses": ref_losses, "tolerance": tol, "ok": bool(ok)}
    res["ok"] = all(r.get("ok") for r in res.values() if isinstance(r, dict))
    return res


def check_channels_last(ctx) -> dict:
    from sosd.export import compare_outputs

    dev, model, x, a = ctx["dev"], ctx["model"], ctx["x"], ctx["args"]
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    xc = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        cmp = compare_outputs(model(x), cl(xc))
        t_ref = timed(lambda: model(x), dev, a.warmup, a.repeats)
        t_cl = timed(lambda: cl(xc), dev, a.warmup, a.repeats)
    return {**cmp, "contiguous": t_ref, "channels_last": t_cl, "speedup": t_ref["median_ms"] / t_cl["median_ms"]}


def check_compile(ctx) -> dict:
    from sosd.export import compare_outputs

    dev, model, x, a = ctx["dev"], ctx["model"], ctx["x"], ctx["args"]
    backend = "eager" if a.dry_run else a.compile_backend
    torch._dynamo.reset()
    cm = torch.compile(copy.deepcopy(model), backend=backend)
    with torch.inference_mode():
        t = time.perf_counter()
        out = cm(x)
        sync(dev)
        compile_s = time.perf_counter() - t
        cmp = compare_outputs(model(x), out)
        t_eager = timed(lambda: model(x), dev, a.warmup, a.repeats)
        t_comp = timed(lambda: cm(x), dev, a.warmup, a.repeats)
    return {**cmp, "backend": backend, "compile_s": compile_s, "eager": t_eager, "compiled": t_comp,
            "speedup": t_eager["median_ms"] / t_comp["median_ms"]}


def check_ddp(ctx) -> dict:
    import torch.distributed as dist

    ts = _load("train_step")
    a, dev = ctx["args"], ctx["dev"]
    spec = {"strategy": "joint", "variant": "sosd", "backbone": a.backbone, "size": list(a.small_size),
            "batch": 2, "threads": None, "device": "cuda:0" if dev.type == "cuda" else "cpu", "overrides": []}
    backend = "nccl" if dev.type == "cuda" else "gloo"
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port())}
    old = {k: os.environ.get(k) for k in env}
    with tempfile.TemporaryDirectory() as tmp:
        plain = ts.bench_trainer(spec, Path(tmp) / "plain")
        plain.train_steps(until=1)
        os.environ.update(env)
        try:
            dist.init_process_group(backend, device_id=torch.device("cuda", 0) if dev.type == "cuda" else None)
            from sosd.train import distributed

            tr = ts.bench_trainer(spec, Path(tmp) / "ddp")
            # world size 1: the loop itself builds no DDP wrapper, so wrap here the way Replicas does
            tr.replicas = distributed.Replicas(tr.model, tr.device)
            tr.train_steps(until=1)
            wrapped = [isinstance(w, torch.nn.parallel.DistributedDataParallel) for w in tr.replicas.wrappers]
            diff = max(float((p - q).detach().abs().max()) for p, q in zip(plain.model.parameters(), tr.model.parameters()))
            loss_a, loss_b = plain.state.history[-1]["loss"], tr.state.history[-1]["loss"]
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    ok = abs(loss_a - loss_b) <= 1e-5 * max(1.0, abs(loss_a)) and diff <= 1e-4 and wrapped == [True]
    return {"backend": backend, "ddp_wrapped": wrapped, "loss_plain": loss_a, "loss_ddp": loss_b,
            "max_weight_diff": diff, "ok": bool(ok)}


def check_onnxruntime(ctx) -> dict:
    from sosd.export import compare_outputs

    try:
        import onnxruntime as ort
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install 'sosd[export]', onnxruntime-gpu for CUDA)"}
    dev, model, a = ctx["dev"], ctx["model"], ctx["args"]
    provider = "CPUExecutionProvider" if dev.type == "cpu" else "CUDAExecutionProvider"
    if provider not in ort.get_available_providers():
        return {"skipped": f"{provider} is not available (providers: {ort.get_available_providers()}); "
                           "install onnxruntime-gpu"}
    from sosd.export.onnx_export import export_onnx
    from sosd.export.onnx_runtime import make_session

    h, w = a.size
    x = ctx["x1"].cpu().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(copy.deepcopy(model).cpu(), Path(tmp) / "m.onnx", h, w)
        sess = make_session(path, providers=[provider])
        names = [o.name for o in sess.get_outputs()]
        run = lambda: sess.run(None, {"image": x})
        outs = dict(zip(names, run()))
        with torch.inference_mode():
            ref = model(ctx["x1"])
        cmp = compare_outputs(ref, {k: torch.from_numpy(v) for k, v in outs.items()})
        t = timed(run, torch.device("cpu"), a.warmup, a.repeats)
    return {**cmp, "provider": provider, "providers_used": sess.get_providers(), "latency": t}


def table1(ctx) -> dict:
    inf, ts = _load("inference"), _load("train_step")
    a, dev = ctx["args"], ctx["dev"]
    h, w = a.size
    amp = "bf16" if (dev.type == "cpu" or torch.cuda.is_bf16_supported()) else "fp16"
    x1 = ctx["x1"]
    rows = {}
    for row, variant, strategy in TABLE1:
        r = rows[row] = {"variant": variant, "strategy": strategy}
        try:
            if variant not in [v["variant"] for v in rows.values() if "inference_batch1" in v]:
                m = inf.build(variant, a.backbone, ctx["num_classes"], ctx["calib"], dev)
                with torch.inference_mode():
                    r["inference_batch1"] = timed(lambda m=m: m(x1), dev, a.warmup, a.repeats)
                m = None  # free its memory before the training step
            spec = {"strategy": strategy, "variant": variant, "backbone": a.backbone, "size": [h, w],
                    "batch": a.train_batch, "threads": None, "device": str(dev), "overrides": [f"train.amp={amp}"]}
            with tempfile.TemporaryDirectory() as tmp:
                tr = ts.bench_trainer(spec, Path(tmp))
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
                done = [0]

                def step(tr=tr, done=done):
                    done[0] += 1
                    tr.train_steps(until=done[0])

                r["train_step"] = timed(step, dev, a.warmup, a.steps)
                r["train_step"]["amp"] = amp
                r["train_step"]["batch"] = a.train_batch
                r["train_step"]["images_per_s"] = a.train_batch / (r["train_step"]["median_ms"] / 1e3)
                if dev.type == "cuda":
                    r["train_step"]["cuda_max_allocated_gib"] = torch.cuda.max_memory_allocated(dev) / 2 ** 30
                tr = None
        except Exception as e:  # noqa: BLE001 - one row's failure is reported, the others still run
            r["error"] = f"{type(e).__name__}: {e}"[:300]
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return {"rows": rows, "size": [h, w], "ok": not any("error" in r for r in rows.values())}


SECTIONS = {"amp": check_amp, "channels_last": check_channels_last, "compile": check_compile,
            "ddp": check_ddp, "onnxruntime": check_onnxruntime, "table1": table1}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true",
                    help="run every section on the CPU at a tiny size (xception_small, 64x64, batch 2)")
    ap.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    ap.add_argument("--backbone", default=None, help="default xception65 (dry run: xception_small)")
    ap.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="default 256 512")
    ap.add_argument("--train-batch", type=int, default=None, help="Table 1 training batch (default 16)")
    ap.add_argument("--repeats", type=int, default=None, help="timed inference calls (default 20)")
    ap.add_argument("--steps", type=int, default=None, help="timed training steps (default 10)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 3)")
    ap.add_argument("--num-classes", type=int, default=19)
    ap.add_argument("--compile-backend", default="inductor")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    if not a.dry_run and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine: nothing to check (use --dry-run to exercise "
              "the code paths on the CPU)")
        return 0
    d = a.dry_run
    a.backbone = a.backbone or ("xception_small" if d else "xception65")
    a.size = tuple(a.size or ((64, 64) if d else (256, 512)))
    a.small_size = (64, 64) if d else (128, 256)
    a.train_batch = a.train_batch or (2 if d else 16)
    a.repeats = a.repeats or (2 if d else 20)
    a.steps = a.steps or (2 if d else 10)
    a.warmup = a.warmup if a.warmup is not None else (1 if d else 3)
    dev = torch.device("cpu" if d else "cuda")
    inf = _load("inference")
    gpu = torch.cuda.get_device_name(0) if dev.type == "cuda" else None
    machine = inf.machine_info()
    machine.update({"gpu": gpu, "cuda_version": torch.version.cuda, "cudnn": torch.backends.cudnn.version()
                    if dev.type == "cuda" else None, "dry_run": d})
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        machine["matmul_peak_fp32"] = inf.matmul_peak(8192, 10, "cuda")
    torch.manual_seed(0)
    h, w = a.size
    calib = inf.calibration_batch(h, w).to(dev)
    ctx = {"args": a, "dev": dev, "num_classes": a.num_classes, "calib": calib,
           "model": inf.build("sosd", a.backbone, a.num_classes, calib, dev),
           "x": torch.rand(2, 3, h, w, device=dev), "x1": torch.rand(1, 3, h, w, device=dev)}
    slug = re.sub(r"[^a-z0-9]+", "_", (gpu or "dryrun_cpu").lower()).strip("_")
    out = Path(a.out or f"results/gpu_{slug}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    res = {"machine": machine, "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(a).items()},
           "sections": {}}
    t_all = time.perf_counter()
    for name in a.sections:
        print(f"[{name}] ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            r = SECTIONS[name](ctx)
        except Exception as e:  # noqa: BLE001 - a section's failure is recorded, the others still run
            r = {"error": f"{type(e).__name__}: {e}"[:500], "traceback": traceback.format_exc()[-2000:], "ok": False}
        r["seconds"] = time.perf_counter() - t
        res["sections"][name] = r
        status = "skipped" if "skipped" in r else ("ok" if r.get("ok", True) else "FAILED")
        print(f"[{name}] {status} in {r['seconds']:.1f} s" + (f": {r.get('error') or r.get('skipped')}"
                                                           if status != "ok" else ""), flush=True)
        out.write_text(json.dumps(res, indent=1, default=str))  # partial results survive a later crash
    res["total_seconds"] = time.perf_counter() - t_all
    res["machine"]["loadavg_end"] = inf.loadavg()
    out.write_text(json.dumps(res, indent=1, default=str))
    for row, r in res["sections"].get("table1", {}).get("rows", {}).items():
        inf1 = r.get("inference_batch1", {}).get("median_ms")
        st = r.get("train_step", {})
        print(f"  {row:14s} inference b1 {inf1 if inf1 is None else f'{inf1:.1f} ms'}, train step b{a.train_batch} "
              f"{st.get('amp')}: {st.get('median_ms', float('nan')):.1f} ms {r.get('error', '')}")
    failed = [k for k, r in res["sections"].items() if not r.get("ok", True)]
    print(f"wrote {out} ({res['total_seconds']:.0f} s); " + (f"FAILED: {', '.join(failed)}" if failed else "all ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
