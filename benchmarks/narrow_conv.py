"""One narrow 3x3 convolution (a few outputs from many inputs), forward + backward: plain ``F.conv2d`` against
sosd's ``NarrowConv2d`` (one 1x1 convolution to 9·o channels, shifted slices summed; ``sosd/models/narrow.py``).

    .venv/bin/python benchmarks/narrow_conv.py      # the semantic-to-depth unit's layers at the sizes sosd trains

Shapes (batch 8): the unit's area branches (C -> 2) and its fusion θ^dep (C + 1 -> 1) at stride 4 of the
study sizes (16x32 at 64x128), the main job (30x40 at 120x160, 64-channel heads) and Xception-65 at 256x512
(64x128, 256 channels). Times are medians of ``torch.utils.benchmark.Timer.blocked_autorange``, 1 thread by
default; prints a Markdown table (ms, plain / fast) and writes it with ``--out``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

# (inputs, outputs, map H, map W, where)
SHAPES = [(256, 2, 16, 32, "area branch, default widths, 64x128"), (257, 1, 16, 32, "θ^dep, default widths, 64x128"),
          (64, 2, 30, 40, "area branch, main job, 120x160"), (65, 1, 30, 40, "θ^dep, main job, 120x160"),
          (64, 2, 16, 32, "area branch, study widths, 64x128"), (256, 2, 64, 128, "area branch, Xception-65, 256x512"),
          (257, 1, 64, 128, "θ^dep, Xception-65, 256x512"), (256, 8, 16, 32, "8 outputs (not taken: contrast)")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, help="write the table here (Markdown)")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F
    from torch.utils.benchmark import Timer

    from sosd.models.narrow import NarrowConv2d, narrow_conv2d
    from sosd.provenance import env_info

    torch.set_num_threads(args.threads)
    env = env_info()
    lines = [f"Narrow 3x3 convolutions, forward + backward, batch 8, {args.threads} thread(s); {env['cpu_model']}, "
             f"torch {env['torch']} ({env['cpu_capability']})", "",
             "| inputs -> outputs | map | layer | plain (ms) | 1x1 + shifts (ms) | plain / fast |", "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for c, o, h, w, where in SHAPES:
        conv = NarrowConv2d(c, o, 3, padding=1)
        x = torch.randn(8, c, h, w, requires_grad=True)
        g = torch.randn(8, o, h, w)
        common = {"x": x, "g": g, "conv": conv, "F": F, "narrow_conv2d": narrow_conv2d}
        plain = Timer("F.conv2d(x, conv.weight, conv.bias, 1, 1).backward(g)", globals=common,
                      num_threads=args.threads).blocked_autorange(min_run_time=1.0).median * 1e3
        fast = Timer("narrow_conv2d(x, conv).backward(g)", globals=common,
                     num_threads=args.threads).blocked_autorange(min_run_time=1.0).median * 1e3
        lines.append(f"| {c} -> {o} | {h}x{w} | {where} | {plain:.2f} | {fast:.2f} | {plain / fast:.2f} |")
        print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
