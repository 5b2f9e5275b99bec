"""Predict depth (or disparity) and semantic labels for images with a trained checkpoint.

  sosd predict --checkpoint runs/esosd_indoor photo.jpg --out preds/
  sosd predict --checkpoint runs/esosd_indoor photos/ --recursive --batch-size 8 --device cuda --out preds/

Inputs: image files (png, jpg, jpeg, bmp, tif) and/or folders of them (sorted; sub-folders with
--recursive). Outputs are named flat by file stem, so two inputs with the same stem are an error. The
prediction files and the overlay have the input's size: the model runs at its training resolution and is
resized back (disparity is also scaled with the width, being a length in pixels); --native-size runs at
the input's size instead. The *_color.png pictures add a title and a colour bar or legend (images under
160 px are enlarged there).

For each input <stem>, in --out:

  depth model (NYU format, what `sosd eval --predictions` reads):
    <stem>_depth.png         uint16 depth in millimetres
    <stem>_labels.png        uint8 class id + 1 (0 = no prediction)
  disparity model (Cityscapes format):
    <stem>_disparity.png     uint16 p, disparity = (p - 1) / 256 px
    <stem>_labelTrainIds.png uint8 class id (255 = no prediction)
  pictures, to look at:
    <stem>_depth_color.png   coloured depth (or disparity) with a colour bar in m (or px)
    <stem>_labels_color.png  class palette with a legend of the classes present (share of the image)
    <stem>_overlay.png       labels blended over the image (--alpha)

plus predict.json: the checkpoint, file format, units and class names (file value -> name).
Depth and labels are in the same files `sosd eval --predictions DIR --dataset ...` scores, so a folder
of predictions for a dataset's images (named by sample id) can be evaluated offline. A single-task
model writes only its own task's files.

An input that cannot be read stops the command with an error naming the file, before anything is
written for that file; --skip-bad reports it and goes on (exit status 1 if any input was skipped).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sosd.errors import SOSDError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    p.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="run folder (its latest checkpoint), checkpoint folder or model.safetensors")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; files are overwritten)")
    p.add_argument("--recursive", action="store_true", help="also read images in sub-folders of a folder input")
    p.add_argument("--skip-bad", action="store_true",
                   help="report unreadable images and go on (default: stop at the first one)")
    p.add_argument("--batch-size", type=int, default=4, help="images per forward pass (same-size images "
                                                             "are grouped; default 4)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--native-size", action="store_true",
                   help="run at each input's size instead of the model's training resolution")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"),
                   help="inference backend: torch (a checkpoint) or onnxruntime (--checkpoint is then an .onnx "
                        "file written by `sosd export`; CPU provider)")
    p.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"), default=None,
                   help="camera intrinsics in px of the input images (needed by focal-aware models)")
    p.add_argument("--alpha", type=float, default=0.5, help="label opacity in <stem>_overlay.png (default 0.5)")
    p.add_argument("--no-pictures", action="store_true",
                   help="write only the prediction files (no *_color.png / *_overlay.png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# ------------------------------------------------------------------------------------------- inputs

def collect_inputs(inputs, recursive: bool = False, exclude: Path | None = None) -> list[Path]:
    """The image files named by ``inputs`` (files as given, folders expanded, sorted). Errors for a path
    that does not exist, a folder without images, and two inputs with the same stem (outputs are flat)."""
    files: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in (p.rglob("*") if recursive else p.iterdir())
                           if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
                           and not (exclude is not None and _inside(f, exclude)))
            if not found:
                hint = "" if recursive else " (use --recursive for sub-folders)"
                raise SOSDError(f"folder {p} holds no images ({', '.join(IMAGE_EXTENSIONS)}){hint}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise SOSDError(f"input {p} does not exist")
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            if seen[f.stem].resolve() == f.resolve():
                raise SOSDError(f"image {f} is given twice")
            raise SOSDError(f"two inputs have the same name '{f.stem}': {seen[f.stem]} and {f}; outputs are "
                            f"named by file stem in one folder, so rename one or predict them separately")
        seen[f.stem] = f
    return files


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header; SOSDError naming the file if it is no image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except Exception as e:  # noqa: BLE001 - PIL raises many types on a broken file
        raise SOSDError(f"cannot read image {path}: {e}") from None
    return h, w


def size_groups(sizes: dict[Path, tuple[int, int]], batch_size: int) -> list[list[Path]]:
    """Batches of same-size images (at most ``batch_size`` each), in the order of first appearance."""
    groups: dict[tuple[int, int], list[Path]] = {}
    for path, hw in sizes.items():
        groups.setdefault(hw, []).append(path)
    return [g[i:i + batch_size] for g in groups.values() for i in range(0, len(g), batch_size)]


def resolve_device(name: str) -> str:
    """Check that a torch device name can be used here; a clear error otherwise."""
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise SOSDError(f"unknown device '{name}'; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SOSDError(f"device '{name}' asked for, but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SOSDError(f"device '{name}' does not exist ({torch.cuda.device_count()} CUDA device(s))")
    elif dev.type != "cpu":
        raise SOSDError(f"device '{name}' is not supported; use cpu, cuda or cuda:N")
    return str(dev)


# ------------------------------------------------------------------------------------------- pictures

def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _text_size(draw, text: str, font) -> tuple[int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    return x1 - x0, y1 - y0


def _font_px(h: int, w: int) -> int:
    return int(np.clip(min(h, w) / 28, 12, 28))


def _canvas(body_w: int, body_h: int, title: str, fs: int):
    """A white canvas with ``title`` on top (widened to fit it); returns (image, draw, y of the body)."""
    from PIL import Image, ImageDraw

    font = _font(fs + 2)
    title_h = int(fs * 2.0)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(body_w, _text_size(probe, title, font)[0] + fs)
    img = Image.new("RGB", (width, body_h + title_h), "white")
    d = ImageDraw.Draw(img)
    d.text((fs // 2, title_h // 2), title, fill="black", font=font, anchor="lm")
    return img, d, title_h


MIN_PICTURE_SIDE = 160


def _enlarge(rgb: np.ndarray) -> np.ndarray:
    """Pictures of images smaller than MIN_PICTURE_SIDE are enlarged by an integer factor (nearest)."""
    f = int(np.ceil(MIN_PICTURE_SIDE / max(1, min(rgb.shape[:2]))))
    return rgb if f <= 1 else rgb.repeat(f, axis=0).repeat(f, axis=1)


def _ticks(lo: float, hi: float) -> list[float]:
    """4 to 10 round tick values in [lo, hi] (steps 1, 2, 2.5, 5 x 10^k)."""
    span = hi - lo
    if span <= 0:
        return [lo]
    mag = 10 ** np.floor(np.log10(span))
    for step in (m * mag for m in (5, 2.5, 2, 1, 0.5, 0.25, 0.2, 0.1, 0.05, 0.025, 0.02, 0.01)):
        first = np.ceil(lo / step - 1e-9) * step
        ticks = np.arange(first, hi + step * 1e-6, step)
        if len(ticks) >= 4:
            return [float(t) for t in ticks]
    return [lo, hi]


def _fmt_tick(v: float, step: float) -> str:
    digits = next((d for d in range(4) if abs(round(step, d) - step) <= 1e-9 * max(1.0, step)), 3)
    return f"{0.0 if abs(v) < step * 1e-6 else v:.{digits}f}"


def depth_picture(depth: np.ndarray, target_kind: str, title: str):
    """Coloured depth/disparity at its own size (near = bright; enlarged if under MIN_PICTURE_SIDE px), a
    title and a vertical colour bar with units. The colour range is the 1st-99th percentile of the
    prediction (values outside it take the end colours)."""
    from PIL import Image, ImageDraw

    from sosd.viz import colorize_depth, depth_range

    lo, hi = depth_range(depth)
    if hi - lo < 1e-3:
        lo, hi = lo - 0.5, hi + 0.5
    unit = "m" if target_kind == "depth" else "px"
    what = "depth" if target_kind == "depth" else "disparity"
    cmap = "plasma_r" if target_kind == "depth" else "plasma"  # near = bright for both
    colour = _enlarge(colorize_depth(depth, None, vmin=lo, vmax=hi, cmap=cmap))
    h, w = colour.shape[:2]

    fs = _font_px(h, w)
    font = _font(fs)
    bar_w, gap = max(12, fs), fs
    ticks = _ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    labels = [_fmt_tick(t, step) for t in ticks]
    pd = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(_text_size(pd, s, font)[0] for s in labels + [f"[{unit}]"])
    body_h = max(h, 8 * fs)
    panel_w = gap + bar_w + fs // 2 + label_w + gap
    img, d, top = _canvas(w + panel_w, body_h, f"{title}: predicted {what} [{unit}]", fs)
    img.paste(Image.fromarray(colour), (0, top))

    # the bar: same colour mapping as the picture, high values at the top
    bar_top, bar_bottom = top + 2 * fs, top + body_h - fs
    bar_h = max(bar_bottom - bar_top, 2)
    grad = np.linspace(hi, lo, bar_h, dtype=np.float32)[:, None].repeat(bar_w, 1)
    bar = colorize_depth(grad, None, vmin=lo, vmax=hi, cmap=cmap)
    x0 = w + gap
    img.paste(Image.fromarray(bar), (x0, bar_top))
    d.rectangle([x0 - 1, bar_top - 1, x0 + bar_w, bar_top + bar_h], outline="black")
    for t, s in zip(ticks, labels):
        y = bar_top + (hi - t) / (hi - lo) * (bar_h - 1)
        d.line([x0 + bar_w, y, x0 + bar_w + fs // 3, y], fill="black")
        d.text((x0 + bar_w + fs // 2, y), s, fill="black", font=font, anchor="lm")
    d.text((x0, top + fs), f"[{unit}]", fill="black", font=font, anchor="lm")
    return img


def labels_picture(labels: np.ndarray, class_names: list[str], title: str):
    """Palette colours at the labels' size (enlarged if under MIN_PICTURE_SIDE px), a title and a legend
    of the classes present, largest share first."""
    from PIL import Image, ImageDraw

    from sosd.viz import colorize_labels, palette

    k = len(class_names)
    colour = _enlarge(colorize_labels(labels, k))
    pal = np.asarray(palette(k), dtype=np.uint8).reshape(-1, 3)
    ids, counts = np.unique(labels[(labels >= 0) & (labels < k)], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rows = [(int(ids[i]), counts[i] / labels.size) for i in order]
    h, w = colour.shape[:2]

    fs = _font_px(h, w)
    font = _font(fs)
    line = int(fs * 1.5)
    pd = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    texts = [f"{class_names[c]}  {share * 100:.1f}%" if share >= 0.001 else f"{class_names[c]}  <0.1%"
             for c, share in rows] or ["(no class)"]
    per_col = max(1, (max(h, 8 * fs) - fs) // line)
    n_cols = max(1, -(-len(texts) // per_col))
    col_w = fs + fs // 2 + max(_text_size(pd, t, font)[0] for t in texts) + fs
    body_h = max(h, min(len(texts), per_col) * line + fs)
    img, d, top = _canvas(w + fs + n_cols * col_w, body_h, f"{title}: predicted classes ({len(rows)} present)",
                          fs)
    img.paste(Image.fromarray(colour), (0, top))
    for j, ((c, _), text) in enumerate(zip(rows, texts)):
        x = w + fs + (j // per_col) * col_w
        y = top + fs // 2 + (j % per_col) * line
        d.rectangle([x, y, x + fs, y + fs], fill=tuple(int(v) for v in pal[c]), outline="black")
        d.text((x + fs + fs // 2, y + fs // 2), text, fill="black", font=font, anchor="lm")
    return img


def overlay_picture(image: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float):
    """Labels in palette colours blended over the image, at the image's size."""
    from PIL import Image

    from sosd.viz import colorize_labels

    colour = colorize_labels(labels, num_classes).astype(np.float32)
    out = (1 - alpha) * image.astype(np.float32) + alpha * colour
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


# ------------------------------------------------------------------------------------------- writing

def write_outputs(out_dir: Path, stem: str, image: np.ndarray, pred, alpha: float = 0.5,
                  pictures: bool = True) -> list[Path]:
    """Every output file of one image (see the module docstring); returns the paths written."""
    from sosd.eval.prediction_files import format_for, write_prediction

    fmt = format_for(pred.target_kind)
    written = write_prediction(out_dir, stem, pred.depth, pred.labels, fmt)
    if not pictures:
        return written
    if pred.depth is not None:
        p = out_dir / f"{stem}_depth_color.png"
        depth_picture(pred.depth, pred.target_kind, stem).save(p)
        written.append(p)
    if pred.labels is not None:
        p = out_dir / f"{stem}_labels_color.png"
        labels_picture(pred.labels, pred.class_names, stem).save(p)
        q = out_dir / f"{stem}_overlay.png"
        overlay_picture(image, pred.labels, len(pred.class_names), alpha).save(q)
        written += [p, q]
    return written


def _info(args, predictor, files: list[Path]) -> dict:
    from sosd.eval.prediction_files import format_for
    from sosd.checkpoint import resolve

    fmt = format_for(predictor.target_kind)
    return {
        "checkpoint": str(resolve(args.checkpoint)),
        "variant": predictor.cfg.model.variant,
        "target_kind": predictor.target_kind,
        "units": "m" if predictor.target_kind == "depth" else "px",
        "format": fmt.name,
        "files": {"values": f"<stem>_{fmt.values_suffix}.png", "labels": f"<stem>_{fmt.labels_suffix}.png"},
        "encoding": ("depth mm = value * 1000 (0 = none); label file value = class id + 1 (0 = none)"
                     if fmt.name == "nyu" else
                     "disparity px = (value - 1) / 256 (0 = none); label file value = class id (255 = none)"),
        "class_names": {str(i + fmt.label_offset): n for i, n in enumerate(predictor.class_names)},
        "training_size": list(predictor.size),
        "native_size": predictor.native_size,
        "inputs": [str(f) for f in files],
    }


def run(args) -> int:
    from tqdm import tqdm

    from sosd.inference import load, read_image

    if args.batch_size < 1:
        raise SOSDError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0.0 <= args.alpha <= 1.0:
        raise SOSDError(f"--alpha must be in [0, 1], got {args.alpha}")
    out_dir = Path(args.out)
    from sosd.errors import check_writable

    if out_dir.exists() and not out_dir.is_dir():
        raise SOSDError(f"--out {out_dir} is a file; give a folder for the prediction files")
    files = collect_inputs(args.inputs, args.recursive, exclude=out_dir if out_dir.exists() else None)
    device = resolve_device(args.device)
    if args.backend == "onnxruntime":
        from sosd.export.onnx_runtime import OnnxPredictor

        predictor = OnnxPredictor(args.checkpoint, native_size=args.native_size)
    else:
        predictor = load(args.checkpoint, device=device, native_size=args.native_size)
    intr = tuple(args.intrinsics) if args.intrinsics else None
    skipped: list[Path] = []

    def bad(path, err):
        if not args.skip_bad:
            raise err
        skipped.append(path)
        tqdm.write(f"sosd predict: skipping {err}", file=sys.stderr)

    sizes = {}
    for f in files:  # headers only: group same-size images into batches
        try:
            sizes[f] = _image_size(f)
        except SOSDError as e:
            bad(f, e)
    check_writable(out_dir, "--out", folder=True)  # before any prediction is computed
    n_done = 0
    bar = tqdm(total=len(sizes), desc="predict", unit="img", file=sys.stderr, disable=args.no_progress)
    for group in size_groups(sizes, args.batch_size):
        images, paths = [], []
        for f in group:
            try:
                images.append(np.array(read_image(f)))  # a writable copy (torch.from_numpy warns otherwise)
                paths.append(f)
            except SOSDError as e:
                bad(f, e)
                bar.update(1)
        if not images:
            continue
        preds = predictor.predict_batch(images, None if intr is None else [intr] * len(images),
                                        names=[str(f) for f in paths])
        for f, image, pred in zip(paths, images, preds):
            write_outputs(out_dir, f.stem, image, pred, args.alpha, pictures=not args.no_pictures)
            n_done += 1
            bar.update(1)
    bar.close()
    info = _info(args, predictor, [f for f in files if f not in skipped])
    (out_dir / "predict.json").write_text(json.dumps(info, indent=1) + "\n")
    what = "depth" if predictor.target_kind == "depth" else "disparity"
    print(f"wrote predictions for {n_done} image(s) to {out_dir}/ ({what} in the {info['format']} format: "
          f"{info['files']['values']}, {info['files']['labels']})")
    if skipped:
        print(f"skipped {len(skipped)} unreadable image(s): {', '.join(map(str, skipped))}", file=sys.stderr)
        return 1
    return 0
