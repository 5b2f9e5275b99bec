"""Write procedural scenes (sosd.data.synthetic) as PNG files and a contact sheet.

Per scene, with <id> = <preset>-<seed>-<index> (e.g. indoor-0-000003), into --out:

  <id>_rgb.png          the RGB image
  <id>_depth.png        16-bit ground truth in the public datasets' formats:
                          indoor: depth in millimetres (NYU-style), 0 = no measurement
                          street: disparity as p = disparity * 256 + 1 (Cityscapes-style), 0 = invalid
  <id>_labels.png       8-bit class ids (255 = unlabelled)
  <id>_depth_color.png  the depth / disparity coloured (near = bright, invalid = black)
  <id>_labels_color.png the labels coloured (unlabelled = black)
  contact_sheet.png     RGB | depth | labels, one row per scene, with the class legend

Examples:
  sosd scenes --preset indoor -n 8 --out /tmp/scenes_indoor
  sosd scenes --preset street -n 8 --out /tmp/scenes_street --height 128 --width 256
  sosd scenes --preset indoor -n 4 --out /tmp/focal --focal-scale 0.8 1.25
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="indoor", choices=("indoor", "street"),
                   help="scene family: indoor (NYU-like room, metric depth target) or street (Cityscapes-like, "
                        "disparity target); default indoor")
    p.add_argument("-n", "--num", type=int, default=8, help="number of scenes to write (default 8)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="scene seed; scene i of seed s is always the same (default 0)")
    p.add_argument("--start", type=int, default=0, help="index of the first scene (default 0)")
    p.add_argument("--height", type=int, default=None,
                   help="image height in px (default: the preset's native 480 indoor / 256 street)")
    p.add_argument("--width", type=int, default=None,
                   help="image width in px (default: native 640 / 512); intrinsics scale with the size")
    p.add_argument("--focal-scale", type=float, nargs=2, metavar=("LO", "HI"), default=(1.0, 1.0),
                   help="each scene draws a focal-length multiplier in [LO, HI] (default 1 1 = fixed intrinsics)")
    p.add_argument("--no-sheet", action="store_true", help="do not write contact_sheet.png")
    p.add_argument("--sheet-rows", type=int, default=16,
                   help="at most this many scenes in the contact sheet (default 16)")


def depth_png_array(sample) -> np.ndarray:
    """uint16 array of the public formats: depth mm (indoor) or disparity*256+1 (street); 0 = invalid."""
    t = np.where(sample.valid, sample.target, 0).astype(np.float64)
    if sample.target_kind == "disparity":
        p = np.where(sample.valid, np.round(t * 256.0) + 1.0, 0)
    else:
        p = np.where(sample.valid, np.round(t * 1000.0), 0)
    return np.clip(p, 0, 65535).astype(np.uint16)


def run(args) -> int:
    from PIL import Image
    from tqdm import tqdm

    from sosd import viz
    from sosd.data.synthetic import SyntheticScenes
    from sosd.errors import SOSDError

    if args.num < 1:
        raise SOSDError("-n must be at least 1")
    if args.start < 0:
        raise SOSDError("--start must be >= 0")
    lo, hi = args.focal_scale
    if not (0 < lo <= hi):
        raise SOSDError(f"--focal-scale needs 0 < LO <= HI, got {lo} {hi}")
    if (args.height is not None and args.height < 1) or (args.width is not None and args.width < 1):
        raise SOSDError("--height and --width must be positive")
    ds = SyntheticScenes(args.preset, size=args.start + args.num, seed=args.seed, height=args.height,
                         width=args.width, focal_scale=(lo, hi))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    disparity = ds.target_kind == "disparity"
    cmap = "plasma" if disparity else "plasma_r"
    rows, titles = [], []
    idx = range(args.start, args.start + args.num)
    for i in tqdm(idx, desc=f"scenes {args.preset}", unit="scene", disable=args.num <= 16):
        s = ds.sample(i)
        vals = s.target[s.valid]
        lo_v, hi_v = viz.depth_range(s.target, s.valid)
        depth_col = viz.colorize_depth(s.target, s.valid, lo_v, hi_v, cmap=cmap)
        lab_col = viz.colorize_labels(s.labels, ds.num_classes)
        Image.fromarray(s.image).save(out / f"{s.id}_rgb.png")
        Image.fromarray(depth_png_array(s)).save(out / f"{s.id}_depth.png")
        Image.fromarray(np.clip(s.labels, 0, 255).astype(np.uint8)).save(out / f"{s.id}_labels.png")
        Image.fromarray(depth_col).save(out / f"{s.id}_depth_color.png")
        Image.fromarray(lab_col).save(out / f"{s.id}_labels_color.png")
        if len(rows) < args.sheet_rows:
            rows.append([s.image, depth_col, lab_col])
            unit = "px" if disparity else "m"
            rng = f"{vals.min():.1f}-{vals.max():.1f} {unit}" if vals.size else "no valid"
            titles.append(f"{s.id}\nf={s.intrinsics[0]:.0f}px\n{rng}\n{100 * s.valid.mean():.0f}% valid")
    if not args.no_sheet:
        pal = viz.palette(ds.num_classes)
        legend = [(n, pal[k]) for k, n in enumerate(ds.class_names)] + [("unlabelled", (0, 0, 0))]
        what = "disparity (px, near = bright)" if disparity else "depth (m, near = bright)"
        viz.contact_sheet(rows, ["RGB", what + ", black = invalid", "labels"], out / "contact_sheet.png",
                          row_titles=titles, legend=legend,
                          title=f"sosd scenes --preset {args.preset} (seed {args.seed}, "
                                f"{ds.height}x{ds.width})")
    print(f"wrote {args.num} {args.preset} scenes ({ds.height}x{ds.width}) to {out}"
          + ("" if args.no_sheet else f" and {out / 'contact_sheet.png'}"))
    return 0
