"""Data-loading throughput: samples/s of each dataset row through a DataLoader with 0 and 2 workers.

Run (from the repository root):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/data.py [--repeats 5] [--samples 96] [--batch-size 8]
                                                          [--workers 0 2] [--out results/data_bench.json]

Each measurement iterates a fresh DataLoader over ``--samples`` new samples (a different index range per
repeat), discards the first batch (worker start-up), and times the rest; the table shows the median
samples/s over ``--repeats`` (and the min-max range). The JSON keeps every repeat plus the machine's
load average, since on a shared machine other processes slow the numbers down.

Rows are ``(name, factory)`` pairs in :data:`ROWS`; ``factory()`` returns a SceneDataset. To add a
real-format loader, append a row, e.g.
``("nyuv2 test 480x640", lambda: NYUDepthV2(root, "test"))``; a factory that raises (data not on this
machine) is reported as skipped, not as a failure.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch


def _synthetic(preset, h, w):
    def make():
        from sosd.data.synthetic import SyntheticScenes

        return SyntheticScenes(preset, size=10**7, seed=0, height=h, width=w)
    return make


ROWS = [
    ("synthetic street 256x512", _synthetic("street", 256, 512)),
    ("synthetic indoor 480x640", _synthetic("indoor", 480, 640)),
]


def measure(ds, workers: int, samples: int, batch_size: int, start: int) -> float:
    """samples/s over ``samples`` consecutive indices from ``start`` (first batch excluded)."""
    sub = torch.utils.data.Subset(ds, range(start, start + samples + batch_size))
    dl = torch.utils.data.DataLoader(sub, batch_size=batch_size, num_workers=workers, shuffle=False)
    it = iter(dl)
    next(it)   # start-up (worker processes, imports) is not throughput
    t0 = time.perf_counter()
    n = 0
    for batch in it:
        n += batch["image"].shape[0]
    dt = time.perf_counter() - t0
    del it
    return n / dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--samples", type=int, default=96, help="timed samples per repeat")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--out", default="results/data_bench.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    results = []
    print(f"{'dataset':28s} {'workers':>7s} {'samples/s (median)':>19s} {'min-max':>15s}")
    for name, factory in ROWS:
        try:
            ds = factory()
        except Exception as e:   # e.g. a real dataset that is not on this machine
            print(f"{name:28s} skipped: {e}")
            results.append({"name": name, "skipped": str(e)})
            continue
        for w in args.workers:
            runs = [measure(ds, w, args.samples, args.batch_size, start=r * (args.samples + args.batch_size))
                    for r in range(args.repeats)]
            med = statistics.median(runs)
            print(f"{name:28s} {w:7d} {med:19.1f} {min(runs):7.1f}-{max(runs):<7.1f}")
            results.append({"name": name, "workers": w, "samples_per_s": med, "runs": runs,
                            "batch_size": args.batch_size, "samples": args.samples})
    info = {
        "benchmark": "data loading throughput (benchmarks/data.py)",
        "python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "load_avg_at_end": os.getloadavg(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "rows": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
