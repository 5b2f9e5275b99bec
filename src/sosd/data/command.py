"""Inspect a dataset before training on it.

  sosd data show  --dataset nyuv2 --root nyu_depth_v2_labeled.mat --split test -n 6 --out nyu.png
      a contact sheet: one row per sample (RGB | colourised depth or disparity | labels in the class
      palette), titled with the sample ids.
  sosd data check --dataset cityscapes --root /data/cityscapes --split val
      reads every sample and prints a summary (count, sizes, class histogram, target range, invalid-pixel
      fraction) or every problem found, naming the file (unreadable or missing files, mismatched sizes,
      wrong dtypes, label ids outside the class table, NaN/inf depth). Exit code 1 if there are problems.

Datasets: nyuv2 (the official .mat), nyuv2_mtan, nyud_mt, cityscapes, folder (see sosd.data.folder),
synthetic. Sizes: `show` uses each dataset's protocol size (NYU 480x640, MTAN 288x384, Cityscapes
256x512, folders as stored) and `check` reads files at their stored size; --height/--width override.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections import Counter

import numpy as np

from sosd.data.checks import sample_problems
from sosd.data.sample import IGNORE_INDEX
from sosd.errors import DataError, SOSDError

DATASET_NAMES = ("nyuv2", "nyuv2_mtan", "nyud_mt", "cityscapes", "folder", "synthetic")
SHOW_SIZE = {"nyuv2": (480, 640), "nyuv2_mtan": (288, 384), "nyud_mt": (0, 0), "cityscapes": (256, 512),
             "folder": (0, 0)}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES, help="dataset format")
    p.add_argument("--root", default="", help="dataset root (nyuv2: the .mat file or its folder)")
    p.add_argument("--split", default="train",
                   help="split: NYU train|test|all, Cityscapes train|val|test, folder: a subfolder name")
    p.add_argument("--height", type=int, default=None, help="resize to this height (0 = stored size)")
    p.add_argument("--width", type=int, default=None, help="resize to this width (0 = stored size)")
    p.add_argument("--classes", type=int, default=40, choices=(40, 13), help="nyuv2: 40 or 13 classes")
    p.add_argument("--depth", default="depths", choices=("depths", "rawDepths"),
                   help="nyuv2: inpainted depths or rawDepths")
    p.add_argument("--preset", default="indoor", help="synthetic: indoor | street")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="<show|check>")
    show = sub.add_parser("show", help="write a contact sheet of a few samples",
                          description="One row per sample: RGB, colourised depth/disparity, labels.")
    _common(show)
    show.add_argument("-n", "--num", type=int, default=6, help="number of samples (rows)")
    show.add_argument("--start", type=int, default=0, help="index of the first sample")
    show.add_argument("--out", default="data_show.png", help="output PNG")
    check = sub.add_parser("check", help="validate every sample; exit code 1 if problems",
                           description="Read every sample and report problems with file names.")
    _common(check)
    check.add_argument("--limit", type=int, default=0, help="check only the first N samples (0 = all)")
    check.add_argument("--max-problems", type=int, default=200, help="stop listing after this many")
    parser.set_defaults(_parser=parser)


def build(args, height: int, width: int):
    """The dataset the arguments name, without augmentation."""
    from sosd.config import DataConfig
    from sosd.data.factory import build as build_dataset

    if args.dataset != "synthetic" and not args.root:
        raise DataError(f"--root is required for dataset '{args.dataset}'")
    cfg = DataConfig(dataset=args.dataset, root=args.root, preset=args.preset, nyu_classes=args.classes,
                     nyu_depth=args.depth)
    if args.dataset != "synthetic" or height:
        cfg.height, cfg.width = height, width
    return build_dataset(cfg, args.split, train=False, seed=0)


def _size(args, default: tuple[int, int]) -> tuple[int, int]:
    h = default[0] if args.height is None else args.height
    w = default[1] if args.width is None else args.width
    return h, w


def run(args) -> int:
    cmd = getattr(args, "data_command", None)
    if cmd == "show":
        return show(args)
    if cmd == "check":
        return check(args)
    args._parser.print_help()
    return 2


# ------------------------------------------------------------------------------------------------ show

def show(args) -> int:
    ds = build(args, *_size(args, SHOW_SIZE.get(args.dataset, (0, 0))))
    from sosd import viz

    n = len(ds)
    if n == 0:
        raise DataError(f"{args.root}: split '{args.split}' is empty")
    idx = [i for i in range(args.start, args.start + max(args.num, 1)) if i < n]
    if not idx:
        raise DataError(f"--start {args.start} is beyond the {n} samples of split '{args.split}'")
    rows, titles = [], []
    kind = "depth"
    present: set[int] = set()
    k = int(ds.num_classes)
    for i in idx:
        s = ds.sample(i)
        kind = s.target_kind
        unit = "px" if kind == "disparity" else "m"
        # near = bright in both: depth reversed, disparity (large = near) not
        cmap = "plasma" if kind == "disparity" else "plasma_r"
        lo, hi = viz.depth_range(s.target, s.valid)
        rows.append([s.image, viz.colorize_depth(s.target, s.valid, vmin=lo, vmax=hi, cmap=cmap),
                     viz.colorize_labels(s.labels, k, ignore_index=IGNORE_INDEX)])
        name = str(s.id or i).replace("/", "/\n")  # Cityscapes ids are long: city on its own line
        titles.append(f"{name}\n{lo:.2f}-{hi:.2f} {unit}\n{100 * s.valid.mean():.0f}% valid")
        present |= {int(c) for c in np.unique(s.labels) if 0 <= c < k}
    names = list(getattr(ds, "class_names", []) or [])
    pal = viz.palette(k)
    legend = [(names[c] if c < len(names) else f"class {c}", pal[c]) for c in sorted(present)]
    legend.append(("ignore (255)", np.zeros(3, np.uint8)))
    col = ["RGB", "disparity (px, black = invalid)" if kind == "disparity" else "depth (m, black = invalid)",
           f"labels ({k} classes)"]
    viz.contact_sheet(rows, col, args.out, row_titles=titles, legend=legend,
                      title=f"{args.dataset} / {args.split}: samples {idx[0]}..{idx[-1]} of {n}")
    print(f"wrote {args.out}: {len(rows)} samples of {args.dataset}/{args.split} ({n} in the split)")
    return 0


# ------------------------------------------------------------------------------------------------ check

def check(args) -> int:
    ds = build(args, *_size(args, (0, 0)))
    n = len(ds) if not args.limit else min(len(ds), args.limit)
    k = int(ds.num_classes)
    names = list(getattr(ds, "class_names", []) or [f"class_{c}" for c in range(k)])
    problems: list[str] = []
    hist = np.zeros(k, np.int64)
    ignored = 0
    sizes: Counter = Counter()
    tmin, tmax, tsum, nvalid, npix = math.inf, -math.inf, 0.0, 0, 0
    kind = getattr(ds, "target_kind", "depth")
    ok = 0
    for i in range(n):
        try:
            s = ds.sample(i)
        except SOSDError as e:
            problems.append(f"sample {i}: {e}")
            continue
        except Exception as e:  # a loader bug or an unexpected file: report it, keep going
            problems.append(f"sample {i}: {type(e).__name__}: {e}")
            continue
        where = f"sample {i} (id {s.id})"
        ps = sample_problems(s, k)
        problems += [f"{where}: {p}" for p in ps]
        if ps:
            continue
        ok += 1
        kind = s.target_kind
        sizes[s.image.shape[:2]] += 1
        lab = s.labels
        ignored += int(np.sum(lab == IGNORE_INDEX))
        hist += np.bincount(lab[lab != IGNORE_INDEX].ravel(), minlength=k)[:k]
        v = s.target[s.valid]
        npix += s.valid.size
        if v.size:
            tmin, tmax = min(tmin, float(v.min())), max(tmax, float(v.max()))
            tsum += float(v.sum(dtype=np.float64))
            nvalid += v.size
        if len(problems) >= args.max_problems:
            break
    print(f"{args.dataset} {args.split} ({args.root}): {n} samples checked, {ok} without problems")
    if sizes:
        print("  sizes (HxW): " + ", ".join(f"{h}x{w} ({c})" for (h, w), c in sizes.most_common()))
    if npix:
        unit = "px" if kind == "disparity" else "m"
        if nvalid:
            print(f"  {kind}: {tmin:.3f} .. {tmax:.3f} {unit}, mean {tsum / nvalid:.3f} {unit}")
        print(f"  invalid {kind} pixels: {100.0 * (1 - nvalid / npix):.2f} %")
        labelled = int(hist.sum())
        print(f"  unlabelled (255) pixels: {100.0 * ignored / max(labelled + ignored, 1):.2f} %")
        print(f"  class histogram ({k} classes, % of labelled pixels):")
        for c in range(k):
            pct = 100.0 * hist[c] / max(labelled, 1)
            print(f"    {c:3d} {names[c] if c < len(names) else '':<20s} {pct:6.2f} %  ({hist[c]} px)")
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print("no problems found")
    return 0
