"""BatchNorm + ReLU in training, forward + backward: native NCHW, native channels_last, and torch.compile.

BatchNorm and the element-wise ops around it are 35-45 % of a training step at the study and main-job
sizes (``benchmarks/profile_train.py``). This measures whether inductor's fused kernel for the pair (one
graph with dynamic shapes, so one compilation serves every layer) beats PyTorch's native kernels.

Run (from the repository root): ``.venv/bin/python benchmarks/batchnorm_compile.py [--threads 1]``.
Writes ``results/batchnorm_compile.{json,md}``: compile time, and per shape the median time of each
variant (``torch.utils.benchmark``) and the compiled output's largest difference from the native one.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the xception_small layers with the most BatchNorm traffic at the main job's 120x160, batch 8
SHAPES = [(8, 32, 60, 80), (8, 64, 30, 40), (8, 128, 15, 20), (8, 256, 8, 10)]


def main(argv=None) -> int:
    import torch
    import torch.nn.functional as F
    from torch.utils.benchmark import Timer

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "batchnorm_compile")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "src"))
    from sosd.provenance import env_info

    def bn_relu(x, w, b, rm, rv):
        return torch.relu(F.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5))

    def inputs(shape, channels_last):
        x = torch.randn(*shape)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        c = shape[1]
        return (x.requires_grad_(), torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True),
                torch.zeros(c), torch.ones(c))

    compiled = torch.compile(bn_relu, dynamic=True)
    t = time.perf_counter()
    y = compiled(*inputs(SHAPES[0], True))
    y.sum().backward()
    compile_s = time.perf_counter() - t
    rows = []
    for shape in SHAPES:
        row = {"shape": list(shape)}
        for name, fn, cl in (("native_nchw", bn_relu, False), ("native_channels_last", bn_relu, True),
                             ("compiled_channels_last", compiled, True)):
            args_ = inputs(shape, cl)
            g = torch.randn_like(args_[0])

            def step(fn=fn, a=args_, g=g):
                fn(*a).backward(g)

            step()  # a new shape may recompile once
            row[name + "_ms"] = Timer("step()", globals={"step": step}).blocked_autorange(min_run_time=1).median * 1e3
        a = inputs(shape, True)
        ref = bn_relu(a[0], a[1], a[2], a[3].clone(), a[4].clone())
        got = compiled(a[0], a[1], a[2], a[3].clone(), a[4].clone())
        row["max_abs_diff"] = float((ref - got).abs().max())
        rows.append(row)
    res = {"machine": env_info(), "threads": args.threads, "compile_s": compile_s, "rows": rows}
    lines = [f"# BatchNorm + ReLU, training forward + backward ({args.threads} thread(s), "
             f"{res['machine'].get('cpu_model')})", "",
             f"torch.compile (inductor, dynamic shapes), first call: {compile_s:.1f} s.", "",
             "| shape | native NCHW (ms) | native channels_last (ms) | compiled channels_last (ms) | "
             "compiled / native CL | max abs diff |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {tuple(r['shape'])} | {r['native_nchw_ms']:.2f} | {r['native_channels_last_ms']:.2f} | "
                     f"{r['compiled_channels_last_ms']:.2f} | "
                     f"{r['compiled_channels_last_ms'] / r['native_channels_last_ms']:.2f}x | "
                     f"{r['max_abs_diff']:.1e} |")
    md = "\n".join(lines) + "\n"
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    args.out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
