"""torch.compile (inductor) against eager for one training forward+backward of SOSD-Net, interleaved.

    .venv/bin/python benchmarks/compile_step.py                 # xception_small, 64x128, batch 8, 1 thread
    .venv/bin/python benchmarks/compile_step.py --size 120 160

Times the first compiled step (the compilation; set ``TORCHINDUCTOR_CACHE_DIR`` to see a warm cache's cost
on a second run), then alternates eager and compiled steps (who goes first alternates) and reports their
medians. The loss is a sum of the outputs' means (the step's shape, not a training objective); the optimiser
is left out: what compile changes is the forward and backward. Writes ``results/compile_step_<H>x<W>.json``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, nargs=2, default=(64, 128), metavar=("H", "W"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=12, help="timed rounds (one step of each), after 2 warm-up")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import torch

    from sosd.config import load_config
    from sosd.models import build_model

    torch.set_num_threads(args.threads)
    spec = importlib.util.spec_from_file_location("_bench_inference", Path(__file__).with_name("inference.py"))
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    machine = common.machine_info()
    cfg = load_config(None, ["model.variant=sosd", "model.backbone=xception_small", "model.aspp_channels=64",
                             "model.decoder_channels=64", "model.refined_channels=24", "model.num_classes=8"])
    torch.manual_seed(0)
    model = build_model(cfg.model).train()
    compiled = torch.compile(model)
    x = torch.randn(args.batch, 3, *args.size)

    def step(net):
        out = net(x)
        sum(v.float().mean() for v in out.values() if torch.is_tensor(v)).backward()

    t = time.perf_counter()
    step(compiled)
    first = time.perf_counter() - t
    print(f"first compiled step (compilation): {first:.1f} s", flush=True)
    times = {"eager": [], "compiled": []}
    for r in range(2 + args.rounds):
        order = (("eager", model), ("compiled", compiled))
        for name, net in (order if r % 2 else order[::-1]):
            t = time.perf_counter()
            step(net)
            if r >= 2:
                times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.size[0]}x{args.size[1]}, batch {args.batch}, {args.threads} thread(s): eager "
          f"{med['eager'] * 1e3:.0f} ms, compiled {med['compiled'] * 1e3:.0f} ms, speed-up "
          f"x{med['eager'] / med['compiled']:.2f} (median of {args.rounds}); compilation {first:.0f} s, paid "
          f"back after {first / max(med['eager'] - med['compiled'], 1e-9):.0f} steps")
    machine["loadavg_end"] = common.loadavg()
    out = Path(args.out or f"results/compile_step_{args.size[0]}x{args.size[1]}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "args": vars(args), "first_step_s": first,
                               "step_s": times, "median_step_s": med}, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
