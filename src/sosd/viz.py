"""Picture helpers shared by the CLI commands, evaluation and docs (numpy in, uint8 RGB out).

* :func:`palette` / :func:`colorize_labels`: one fixed, distinct colour per class id; the ignore index
  (255) and any id outside ``0..K-1`` are drawn black.
* :func:`colorize_depth`: a depth or disparity map through a matplotlib colour map; invalid pixels
  (``valid`` False, or non-finite values) are black. The default map ``plasma_r`` draws small values
  (near depth) bright and never reaches black, so holes stay visible; pass ``cmap="plasma"`` for
  disparity (large = near) to keep "near = bright".
* :func:`contact_sheet`: a grid of images with column (and optional row) titles and an optional colour
  legend, written as one PNG. :func:`depth_colorbar_png`: one depth map with a labelled colour bar.

matplotlib is imported lazily with the non-interactive Agg backend (no display needed).
"""
from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

IGNORE_INDEX = 255

# hand-picked distinct colours for the first classes (Cityscapes-like and tab20-like), then golden-ratio hues
_BASE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (70, 130, 180), (107, 142, 35), (153, 153, 153),
    (220, 220, 0), (220, 20, 60), (0, 0, 142), (0, 60, 100), (250, 170, 30), (102, 102, 156),
    (190, 153, 153), (152, 251, 152), (255, 0, 0), (0, 80, 100), (0, 0, 230), (119, 11, 32),
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120), (152, 223, 138),
], np.uint8)


def palette(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8: a distinct colour per class id (stable: class k always gets the same)."""
    num_classes = int(num_classes)
    if num_classes <= len(_BASE):
        return _BASE[:num_classes].copy()
    extra = []
    for k in range(num_classes - len(_BASE)):
        h = (0.13 + k * 0.618033988749895) % 1.0
        s, v = (0.55, 0.95) if k % 2 == 0 else (0.85, 0.7)
        extra.append(tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h, s, v)))
    return np.concatenate([_BASE, np.array(extra, np.uint8)])


def colorize_labels(labels, num_classes: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8; ``ignore_index`` and out-of-range ids are black."""
    lab = np.asarray(labels).astype(np.int64)
    lut = np.zeros((num_classes + 1, 3), np.uint8)
    lut[:num_classes] = palette(num_classes)
    idx = np.where((lab >= 0) & (lab < num_classes) & (lab != ignore_index), lab, num_classes)
    return lut[idx]


def _colormap(cmap: str):
    import matplotlib

    return matplotlib.colormaps[cmap]


def depth_range(depth, valid=None, vmin=None, vmax=None) -> tuple[float, float]:
    """(vmin, vmax) for colouring: the given values, else the 1st/99th percentile of the valid pixels."""
    d = np.asarray(depth, np.float32)
    ok = np.isfinite(d) if valid is None else (np.asarray(valid, bool) & np.isfinite(d))
    vals = d[ok]
    if vmin is None or vmax is None:
        lo, hi = (np.percentile(vals, [1, 99]) if vals.size else (0.0, 1.0))
        vmin = float(lo) if vmin is None else vmin
        vmax = float(hi) if vmax is None else vmax
    if vmax <= vmin:
        vmax = vmin + 1e-6
    return float(vmin), float(vmax)


def colorize_depth(depth, valid=None, vmin=None, vmax=None, cmap: str = "plasma_r") -> np.ndarray:
    """(H, W) depth or disparity -> (H, W, 3) uint8 via matplotlib colour map ``cmap``, values clipped to
    [vmin, vmax] (default: 1st-99th percentile of the valid pixels); invalid / non-finite pixels black."""
    d = np.asarray(depth, np.float32)
    if d.ndim == 3 and d.shape[0] == 1:
        d = d[0]
    ok = np.isfinite(d) if valid is None else (np.asarray(valid, bool).reshape(d.shape) & np.isfinite(d))
    lo, hi = depth_range(d, ok, vmin, vmax)
    x = np.clip((np.where(ok, d, lo) - lo) / (hi - lo), 0.0, 1.0)
    lut = (_colormap(cmap)(np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)
    out = lut[(x * 255 + 0.5).astype(np.int64)]
    out[~ok] = 0
    return out


def _as_rgb(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        if a.dtype != np.uint8:
            return colorize_depth(a, cmap="gray")
        a = np.repeat(a[..., None], 3, axis=2)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8) if a.max() <= 1.0 else np.clip(a, 0, 255).astype(np.uint8)
    return a[..., :3]


def contact_sheet(rows, col_titles, path, row_titles=None, legend=None, title=None,
                  cell_width: float = 3.2, dpi: int = 100) -> Path:
    """Write a PNG grid: ``rows`` is a list of rows, each a list of images ((H, W, 3) uint8, or (H, W)
    arrays shown in grey); ``col_titles`` one title per column; ``row_titles`` one label per row (shown left
    of the row); ``legend`` an optional list of ``(name, rgb uint8)`` swatches drawn under the grid (e.g.
    the classes). Images in a column may differ in size (each is shown at the cell's aspect). Returns the
    path. Parent folders are created."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = [[_as_rgb(im) for im in r] for r in rows]
    nr = len(rows)
    nc = max((len(r) for r in rows), default=1)
    aspect = np.median([im.shape[0] / im.shape[1] for r in rows for im in r]) if nr else 0.75
    cell_h = cell_width * aspect
    top_h = 0.3 + (0.3 if title else 0)
    bottom_h = 0.45 * (1 + (len(legend) - 1) // 8) + 0.1 if legend else 0.05
    extra_h = top_h + bottom_h
    left = 1.4 if row_titles else 0.1
    fig = plt.figure(figsize=(left + nc * cell_width, max(nr, 1) * (cell_h + 0.08) + extra_h), dpi=dpi)
    gs = fig.add_gridspec(max(nr, 1), nc, left=left / fig.get_figwidth(), right=0.995,
                          top=1 - top_h / fig.get_figheight(), bottom=bottom_h / fig.get_figheight(),
                          wspace=0.03, hspace=0.06)
    for i, r in enumerate(rows):
        for j in range(nc):
            ax = fig.add_subplot(gs[i, j])
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(r):
                ax.imshow(r[j], interpolation="nearest", aspect="auto")
            else:
                ax.axis("off")
            if i == 0 and j < len(col_titles):
                ax.set_title(col_titles[j], fontsize=9)
            if j == 0 and row_titles is not None and i < len(row_titles):
                ax.set_ylabel(row_titles[i], fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.05 / fig.get_figheight(), va="top")
    if legend:
        handles = [Patch(facecolor=np.asarray(c, float) / 255, edgecolor="k", label=str(n)) for n, c in legend]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=8, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def depth_colorbar_png(depth, path, valid=None, vmin=None, vmax=None, cmap: str = "plasma_r",
                       label: str = "depth (m)", title: str | None = None, dpi: int = 100) -> Path:
    """Write one depth/disparity map (invalid black) with a colour bar labelled ``label`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    d = np.asarray(depth, np.float32)
    lo, hi = depth_range(d, valid, vmin, vmax)
    img = colorize_depth(d, valid, lo, hi, cmap)
    h, w = img.shape[:2]
    fig, ax = plt.subplots(figsize=(6.0 * 1.18, 6.0 * h / w + (0.4 if title else 0.1)), dpi=dpi)
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(ScalarMappable(Normalize(lo, hi), _colormap(cmap)), ax=ax, fraction=0.046, pad=0.02,
                 label=label)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
