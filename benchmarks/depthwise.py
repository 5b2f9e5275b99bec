"""One depthwise layer, forward + backward: plain ``F.conv2d`` against sosd's ``DepthwiseConv2d`` fast path.

    .venv/bin/python benchmarks/depthwise.py        # the layers of the study sizes and Xception-65's exit flow

Shapes (batch 8): the exit flow at rate 2 (small backbone at 64x128: 192/256 channels on 4x8; Xception-65 at
256x512: 1536 channels on 16x32), the ASPP's rate 6 on 4x8, and undilated layers for contrast. Median of
``--repeats`` after 3 warm-up, 1 thread by default; prints a table (times in ms, plain / fast).
"""
from __future__ import annotations

import argparse
import statistics
import time

SHAPES = [(32, 32, 64, 1), (128, 8, 16, 1), (192, 4, 8, 2), (256, 4, 8, 2), (320, 4, 8, 6), (1536, 16, 32, 2)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from sosd.models.depthwise import DepthwiseConv2d

    torch.set_num_threads(args.threads)

    def median_ms(fn):
        for _ in range(3):
            fn()
        ts = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1e3

    print("| channels | map | rate | plain (ms) | fast (ms) | plain / fast |\n|---|---|---|---|---|---|")
    for c, h, w, d in SHAPES:
        conv = DepthwiseConv2d(c, c, 3, padding=d, dilation=d, groups=c, bias=False)
        x = torch.randn(8, c, h, w, requires_grad=True)
        g = torch.randn(8, c, h, w)
        plain = median_ms(lambda: F.conv2d(x, conv.weight, None, 1, d, d, c).backward(g))
        fast = median_ms(lambda: conv(x).backward(g))
        print(f"| {c} | {h}x{w} | {d} | {plain:.2f} | {fast:.2f} | {plain / fast:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
