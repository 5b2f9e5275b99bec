"""Parameters and GFLOPs of each variant at a given input size: the Table 1 columns.

GFLOPs are counted by torch's FlopCounterMode (convolutions and matmuls, 2 FLOPs per multiply-add) for
one image; ``--time`` also measures the median CPU latency at batch 1 (for full speed studies see
benchmarks/inference.py).

Example: sosd model-info --variant all --backbone xception65 --size 256 512
"""
from __future__ import annotations

import argparse

from sosd.config import BACKBONES, VARIANTS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", default="all", choices=("all",) + VARIANTS,
                   help="variant to describe (default: all four rows of Table 1)")
    p.add_argument("--backbone", default="xception65", choices=BACKBONES, help="backbone (default xception65)")
    p.add_argument("--size", nargs=2, type=int, default=(256, 512), metavar=("H", "W"),
                   help="input height and width (default 256 512, the Cityscapes protocol)")
    p.add_argument("--num-classes", type=int, default=19, help="classes (default 19, Cityscapes)")
    p.add_argument("--output-stride", type=int, default=16, choices=(8, 16), help="backbone output stride")
    p.add_argument("--time", action="store_true", help="also measure median CPU latency at batch 1")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")


def describe(variant: str, backbone: str, size, num_classes: int = 19, output_stride: int = 16,
             time_it: bool = False) -> dict:
    """{"variant", "params_m", "gflops", ["latency_ms"]} for one variant."""
    import statistics
    import time

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sosd.config import ModelConfig
    from sosd.models import SOSDNet

    m = SOSDNet(ModelConfig(variant=variant, backbone=backbone, num_classes=num_classes,
                            output_stride=output_stride)).eval()
    x = torch.rand(1, 3, *size)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        m(x)
    row = {"variant": variant, "backbone": backbone, "size": list(size),
           "params_m": sum(p.numel() for p in m.parameters()) / 1e6,
           "gflops": counter.get_total_flops() / 1e9}
    if time_it:
        with torch.inference_mode():
            m(x)
            ts = []
            for _ in range(5):
                t = time.perf_counter()
                m(x)
                ts.append((time.perf_counter() - t) * 1e3)
        row["latency_ms"] = statistics.median(ts)
    return row


def run(args) -> int:
    import json

    variants = VARIANTS if args.variant == "all" else (args.variant,)
    rows = [describe(v, args.backbone, tuple(args.size), args.num_classes, args.output_stride, args.time)
            for v in variants]
    h, w = args.size
    head = f"| variant | parameters (M) | GFLOPs @ {h}x{w} |" + (" CPU latency b=1 (ms) |" if args.time else "")
    print(f"backbone {args.backbone}, output stride {args.output_stride}, {args.num_classes} classes")
    print(head)
    print("|---|---|---|" + ("---|" if args.time else ""))
    for r in rows:
        line = f"| {r['variant']} | {r['params_m']:.2f} | {r['gflops']:.2f} |"
        if args.time:
            line += f" {r['latency_ms']:.1f} |"
        print(line)
    by = {r["variant"]: r for r in rows}
    if "mtl" in by and "sosd" in by:
        print(f"sosd vs mtl: parameters {100 * (by['sosd']['params_m'] / by['mtl']['params_m'] - 1):+.2f} %, "
              f"GFLOPs {100 * (by['sosd']['gflops'] / by['mtl']['gflops'] - 1):+.2f} % "
              "(paper, Table 1: parameters 24.0 vs 23.6 M, +1.7 %)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0
