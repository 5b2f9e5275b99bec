"""Data-loading throughput: samples/s of each dataset row through a DataLoader with 0 and 2 workers.

Run (from the repository root):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/data.py [--repeats 5] [--samples 96] [--batch-size 8]
                                                          [--workers 0 2] [--out results/data_bench.json]

Each measurement iterates a fresh DataLoader over ``--samples`` new samples (a different index range per
repeat), discards the first batch (worker start-up), and times the rest; the table shows the median
samples/s over ``--repeats`` (and the min-max range). The JSON keeps every repeat plus the machine's
load average, since on a shared machine other processes slow the numbers down.

Rows are ``(name, factory)`` pairs in :data:`ROWS`; ``factory()`` returns a SceneDataset; a factory that
raises (data not on this machine) is reported as skipped, not as a failure. The real-format rows read real
files: the official NYU ``.mat`` layout (the shipped one-image excerpt of NYU #1, read again and again),
Cityscapes frames written in the official layout at 2048x1024 (as the tests write them) and resized to
the paper's 256x512, and the folder format. Beside them, the rate at which a training step *consumes*
samples (forward + backward + Adam, batch 8) for the CPU configurations: a loader is a bottleneck only if
its rate is below that.
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


ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("SOSD_BENCH_TMP", "/tmp/sosd_bench_data"))


class _Cycle(torch.utils.data.Dataset):
    """Index i reads sample i % len(ds): small fixtures stand in for a full split."""

    def __init__(self, ds):
        self.ds, self.num_classes, self.target_kind = ds, ds.num_classes, ds.target_kind

    def __len__(self):
        return 10**7

    def __getitem__(self, i):
        return self.ds[i % len(self.ds)]


def _nyu():
    from sosd.data.nyu import NYUDepthV2

    return _Cycle(NYUDepthV2(ROOT / "tests/data/nyuv2/nyu_depth_v2_labeled_excerpt_0001.mat", split="all"))


def _cityscapes():
    sys.path.insert(0, str(ROOT))
    from sosd.data.cityscapes import Cityscapes
    from tests.data.test_cityscapes import write_cityscapes

    root = FIXTURES / "cityscapes"
    if not (root / "leftImg8bit").is_dir():
        write_cityscapes(root)
    return _Cycle(Cityscapes(root, split="train", height=256, width=512))


def _folder():
    import numpy as np
    from PIL import Image

    from sosd.data.folder import FolderDataset

    root = FIXTURES / "folder"
    if not (root / "train" / "images").is_dir():
        rng = np.random.default_rng(0)
        for sub in ("images", "depth", "labels"):
            (root / "train" / sub).mkdir(parents=True, exist_ok=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(root / f"train/images/{i}.png")
            Image.fromarray(rng.integers(500, 9000, (480, 640), dtype=np.uint16)).save(root / f"train/depth/{i}.png")
            Image.fromarray(rng.integers(0, 13, (480, 640), dtype=np.uint8)).save(root / f"train/labels/{i}.png")
    return _Cycle(FolderDataset(root, split="train"))


ROWS = [
    ("synthetic street 256x512", _synthetic("street", 256, 512)),
    ("synthetic indoor 480x640", _synthetic("indoor", 480, 640)),
    ("synthetic indoor 120x160", _synthetic("indoor", 120, 160)),
    ("nyuv2 .mat 480x640", _nyu),
    ("cityscapes 2048->256x512", _cityscapes),
    ("folder png 480x640", _folder),
]

# (name, model overrides, size): the configurations whose training-step consumption is measured
CONSUMERS = [
    ("train step, small backbone, sosd/em 120x160 (main job)", "xception_small", (120, 160)),
    ("train step, small backbone, sosd 256x512", "xception_small", (256, 512)),
    ("train step, xception65, sosd 256x512 (paper)", "xception65", (256, 512)),
]


def consumption(backbone: str, size, batch: int = 8, steps: int = 3) -> float:
    """Samples/s one training step consumes (median of ``steps`` after one warm-up step)."""
    from sosd.config import ModelConfig
    from sosd.losses import depth_l1, semantic_ce
    from sosd.models import SOSDNet

    small = dict(aspp_channels=64, decoder_channels=64, refined_channels=24) if backbone == "xception_small" else {}
    m = SOSDNet(ModelConfig(variant="sosd", backbone=backbone, num_classes=19, **small)).train()
    opt = torch.optim.Adam(m.parameters(), 1e-4)
    x, t = torch.rand(batch, 3, *size), torch.rand(batch, 1, *size) * 5 + 0.5
    lab = torch.randint(0, 19, (batch, *size))
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        out = m(x)
        loss = semantic_ce(out["semantic"], lab) + depth_l1(out["depth"], t, t > 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


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
    ap.add_argument("--train-threads", type=int, default=2,
                    help="torch threads of the training-step consumption rows (default 2: the machine)")
    ap.add_argument("--no-consumption", action="store_true", help="skip the training-step rows")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # a loader worker is one process with one thread

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
    consumers = []
    if not args.no_consumption:
        torch.set_num_threads(args.train_threads)
        print(f"\n{'training step (consumer)':55s} {'samples/s':>9s}   threads")
        for name, backbone, size in CONSUMERS:
            rate = consumption(backbone, size)
            print(f"{name:55s} {rate:9.2f}   {args.train_threads}")
            consumers.append({"name": name, "backbone": backbone, "size": list(size), "samples_per_s": rate,
                              "threads": args.train_threads})
    info = {
        "benchmark": "data loading throughput (benchmarks/data.py)",
        "training_step_consumption": consumers,
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
