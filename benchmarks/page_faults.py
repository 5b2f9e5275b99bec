"""Wall time, system time and minor page faults of Xception-65 training steps, with and without
``train.keep_memory`` (glibc keeping freed memory: src/sosd/train/allocator.py).

Run (from the repository root; each side in a fresh process, since the allocator setting cannot be undone):

    .venv/bin/python benchmarks/page_faults.py --batch 8        # ~4 min on one core

Prints one line per side: (wall s, system s, minor page faults) of each timed step.
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def side(batch: int, keep: bool, steps: int) -> list[tuple[float, float, int]]:
    import torch

    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("_sosd_train_step", HERE / "train_step.py")
    ts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ts)
    s = {"strategy": "joint", "variant": "sosd", "backbone": "xception65", "size": [256, 512], "batch": batch,
         "threads": 1, "device": "cpu", "overrides": [f"train.keep_memory={str(keep).lower()}"]}
    with tempfile.TemporaryDirectory() as tmp:
        tr = ts.bench_trainer(s, Path(tmp))
        tr.train_steps(until=1)  # warm-up
        out = []
        for k in range(2, 2 + steps):
            t, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            tr.train_steps(until=k)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            out.append((round(time.perf_counter() - t, 2), round(r1.ru_stime - r0.ru_stime, 2),
                        r1.ru_minflt - r0.ru_minflt))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--side", choices=("keep", "plain"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:
        print(side(args.batch, args.side == "keep", args.steps))
        return 0
    for s in ("keep", "plain"):
        r = subprocess.run([sys.executable, __file__, "--batch", str(args.batch), "--steps", str(args.steps),
                            "--side", s], capture_output=True, text=True, check=True)
        print(f"keep_memory={s == 'keep'}: (wall s, system s, minor faults) per step: {r.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
