#!/usr/bin/env python
"""Draw docs/architecture.png: a block diagram of SOSD-Net generated from the code.

The model is built as ``SOSDNet(ModelConfig(variant="sosd"))`` (full aligned Xception-65, 40 classes, output
stride 16), run once on a 480x640 input with forward hooks on each named block, and every box is labelled
with the paper's name, the module's name in the code, and the channels / stride / size the hook recorded.
Box colours are the parameter groups of Algorithm 1 (``SOSDNet.module_groups``), so the picture cannot drift
from the code: rename a module or change a width and the script fails or draws the new value.

Usage: .venv/bin/python scripts/draw_architecture.py [--out docs/architecture.png] [--size 480 640]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sosd.config import ModelConfig  # noqa: E402
from sosd.models import SOSDNet  # noqa: E402
from sosd.models.backbone import SPECS  # noqa: E402

# ------------------------------------------------------------------------------------------ tracing

HOOKED = [
    "backbone", "aspp", "aspp.cross_channel_learner", "aspp.atrous.0", "aspp.atrous.1", "aspp.atrous.2",
    "aspp.full_image_extractor", "aspp.project",
    "decoder.semantic_feature", "decoder.common_representation", "decoder.depth_feature",
    "decoder.depth_feature.refined_projection",
    "semantic_to_depth.area_3d", "semantic_to_depth.area_2d", "semantic_to_depth.fuse", "semantic_to_depth",
    "depth_to_semantic.inverse_depth", "depth_to_semantic.area_3d", "depth_to_semantic.semantic_cue",
    "depth_to_semantic.classifier", "depth_to_semantic",
]


def trace(model: SOSDNet, h: int, w: int) -> dict[str, tuple]:
    """Shapes (C, H, W) of each hooked module's output (and of the inputs where the picture needs them)."""
    shapes: dict[str, tuple] = {}
    handles = []

    def hook(name):
        def fn(mod, inputs, output):
            if name == "backbone":
                shapes["backbone.refined"] = tuple(output[0].shape[1:])
                shapes["backbone.deep"] = tuple(output[1].shape[1:])
            elif name == "semantic_to_depth":
                shapes[name] = tuple(output[0].shape[1:])
                shapes["semantic_to_depth.cue"] = tuple(output[1]["cue"].shape[1:])
            else:
                shapes[name] = tuple(output.shape[1:])
            if name == "depth_to_semantic.semantic_cue":
                shapes["depth_to_semantic.product"] = tuple(inputs[0].shape[1:])
            if name in ("semantic_to_depth.fuse", "depth_to_semantic.classifier"):
                shapes[name + ".in"] = tuple(inputs[0].shape[1:])
        return fn

    for name in HOOKED:
        handles.append(model.get_submodule(name).register_forward_hook(hook(name)))
    with torch.inference_mode():
        model(torch.rand(1, 3, h, w))
    for hd in handles:
        hd.remove()
    shapes["input"] = (3, h, w)
    return shapes


# ------------------------------------------------------------------------------------------ drawing

# Algorithm 1's parameter groups (keys of SOSDNet.parameter_groups) -> fill colour and legend label.
# Depth side follows Fig. 6's colours (orange dep, purple 3d, green 2d).
GROUPS = {
    "com": ("#cfd8dc", r"$\theta^{com}$ shared trunk"),
    "dep": ("#ffcc80", r"$\theta^{dep}$ depth features"),
    "s2d_3d": ("#d1c4e9", r"$\theta^{3d}$ (depth side) $\sim\Delta X\Delta Y$"),
    "s2d_2d": ("#c5e1a5", r"$\theta^{2d}$ $\sim(\Delta u\Delta v)^{-1}$"),
    "sem": ("#90caf9", r"$\theta^{sem}$ semantic features"),
    "d2s_3d": ("#f8bbd0", r"$\theta^{3d}$ (semantic side) $\sim\Delta X\Delta Y$"),
    "d2s_inv_depth": ("#fff59d", r"$\theta^{d^{-2}}$ $\sim d^{-2}$"),
}
THETA = {"com": r"$\theta^{com}$", "dep": r"$\theta^{dep}$", "s2d_3d": r"$\theta^{3d}$",
         "s2d_2d": r"$\theta^{2d}$", "sem": r"$\theta^{sem}$", "d2s_3d": r"$\theta^{3d}$",
         "d2s_inv_depth": r"$\theta^{d^{-2}}$"}
# line colours of the three decoder outputs, so crossing wires stay traceable
WIRE = {"depth": "#e65100", "common": "#455a64", "semantic": "#1565c0", "plain": "#212121"}

FS_TITLE, FS_CODE, FS_TEXT, FS_SHAPE = 13, 10.5, 11, 11.5
STYLE = {
    "title": dict(fontsize=FS_TITLE, fontweight="bold"),
    "code": dict(fontsize=FS_CODE, family="DejaVu Sans Mono", color="#263238"),
    "text": dict(fontsize=FS_TEXT),
    "shape": dict(fontsize=FS_SHAPE, style="italic", color="#b71c1c"),
    "head": dict(fontsize=15, fontweight="bold"),
}
LINE_H = {"title": 0.27, "code": 0.23, "text": 0.23, "shape": 0.24, "head": 0.3}


class Canvas:
    def __init__(self, width: float, height: float):
        self.fig = plt.figure(figsize=(width, height))
        self.ax = self.fig.add_axes([0, 0, 1, 1])
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.axis("off")
        self.boxes = []  # (patch, texts)
        self.texts = []

    def box(self, x0, y0, w, h, lines, fill="white", edge="#37474f", ls="-", lw=1.6, valign="center", z=2):
        p = FancyBboxPatch((x0, y0), w, h, boxstyle="round,pad=0,rounding_size=0.12", fc=fill, ec=edge,
                           ls=ls, lw=lw, zorder=z)
        self.ax.add_patch(p)
        total = sum(LINE_H[s] for _, s in lines)
        y = (y0 + h / 2 + total / 2) if valign == "center" else (y0 + h - 0.12)
        ts = []
        for text, style in lines:
            y -= LINE_H[style] / 2
            ts.append(self.ax.text(x0 + w / 2, y, text, ha="center", va="center", zorder=z + 1, **STYLE[style]))
            y -= LINE_H[style] / 2
        self.boxes.append((p, ts))
        self.texts += ts
        return (x0, y0, w, h)

    def group(self, x0, y0, w, h, title, fill):
        """A panel around several boxes, its title at the top."""
        return self.box(x0, y0, w, h, title, fill=fill, edge="#78909c", ls="--", lw=1.4, valign="top", z=0)

    def label(self, x, y, text, ha="center", va="center", **kw):
        t = self.ax.text(x, y, text, ha=ha, va=va, zorder=6, **{**STYLE["text"], **kw})
        self.texts.append(t)
        return t

    def wire(self, pts, color=WIRE["plain"], lw=2.0, arrow=True):
        """Poly-line through ``pts`` with an arrow head on the last segment."""
        for a, b in zip(pts[:-2], pts[1:-1]):
            self.ax.plot([a[0], b[0]], [a[1], b[1]], color=color, lw=lw, zorder=1, solid_capstyle="round")
        self.ax.add_patch(FancyArrowPatch(pts[-2], pts[-1], arrowstyle="-|>" if arrow else "-",
                                          mutation_scale=18, color=color, lw=lw, zorder=1,
                                          shrinkA=0, shrinkB=0))

    def op(self, x, y, symbol, r=0.22):
        self.ax.add_patch(Circle((x, y), r, fc="white", ec="#37474f", lw=1.6, zorder=3))
        self.ax.text(x, y, symbol, ha="center", va="center", fontsize=16, zorder=4)

    def check(self) -> list[str]:
        """Text that leaves its box, and texts that overlap each other (a readable picture has none)."""
        self.fig.canvas.draw()
        r = self.fig.canvas.get_renderer()
        problems = []
        for p, ts in self.boxes:
            bb = p.get_window_extent(r)
            for t in ts:
                tb = t.get_window_extent(r)
                if tb.x0 < bb.x0 + 2 or tb.x1 > bb.x1 - 2 or tb.y0 < bb.y0 or tb.y1 > bb.y1:
                    problems.append(f"text leaves its box: {t.get_text()!r}")
        bbs = [(t, t.get_window_extent(r)) for t in self.texts if t.get_text()]
        for i, (t1, b1) in enumerate(bbs):
            for t2, b2 in bbs[i + 1:]:
                if b1.overlaps(b2):
                    problems.append(f"texts overlap: {t1.get_text()!r} / {t2.get_text()!r}")
        return problems


def draw(model: SOSDNet, shapes: dict[str, tuple], out: Path, dpi: int) -> list[str]:
    H, W = shapes["input"][1:]
    cfg = model.cfg

    def sh(name, what=None):
        c, h, w = shapes[name]
        s = H // h
        stride = f"1/{s}" if s > 1 else "full res."
        return f"{c} ch · {stride} · {h}×{w}" + (f"  ({what})" if what else "")

    group_of = {}
    for g, mods in model.module_groups().items():
        for m in mods:
            group_of[id(m)] = g

    def grp(name):
        """Parameter group of a module (or of its nearest grouped ancestor)."""
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            g = group_of.get(id(model.get_submodule(".".join(parts[:i]))))
            if g:
                return g
        raise KeyError(name)

    def fill(name):
        return GROUPS[grp(name)][0]

    def nparams(name):
        n = sum(p.numel() for p in model.get_submodule(name).parameters())
        return f"{n / 1e6:.2f} M params" if n >= 1e5 else f"{n:,} params"

    def ks(conv):
        return f"{conv.kernel_size[0]}×{conv.kernel_size[1]}"

    def cbr(m):
        """A ConvBNReLU as 'kxk Cch BN ReLU'."""
        return f"{ks(m.conv)} {m.conv.out_channels}ch BN ReLU"

    s2d, d2s = model.semantic_to_depth, model.depth_to_semantic
    area_ops = f"{cbr(s2d.area_3d.conv1)}, {ks(s2d.area_3d.conv2)} {s2d.area_3d.conv2.out_channels}ch BN"
    latent_ops = f"{cbr(d2s.area_3d.conv1)}, {cbr(d2s.area_3d.conv2)}"
    assert area_ops == f"{cbr(s2d.area_2d.conv1)}, {ks(s2d.area_2d.conv2)} {s2d.area_2d.conv2.out_channels}ch BN"
    assert latent_ops == f"{cbr(d2s.inverse_depth.conv1)}, {cbr(d2s.inverse_depth.conv2)}"

    rates = [m.depthwise.dilation[0] for m in model.aspp.atrous]
    n_blocks = len(model.backbone.blocks)
    ri = model.backbone.refined_index
    dec = model.decoder
    proj = shapes["decoder.depth_feature.refined_projection"][0]
    n_dep = len(dec.depth_feature.convs)
    n_sem = len(dec.semantic_feature.convs)
    n_com = len(dec.common_representation.convs)

    spec = SPECS[cfg.backbone]
    FW = 27.0
    cv = Canvas(FW, 15.6)
    cv.label(FW / 2, 15.15, f"SOSD-Net as implemented: SOSDNet(ModelConfig(variant='{cfg.variant}')), backbone "
             f"{cfg.backbone}, output stride {cfg.output_stride}, {cfg.num_classes} classes "
             f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters)", fontsize=18,
             fontweight="bold")
    cv.label(FW / 2, 14.7, f"shapes recorded by forward hooks on a 1×3×{H}×{W} input (red italics: channels · "
             "stride · size of the block's output); box colour = parameter group of Algorithm 1",
             fontsize=13, color="#455a64")

    # ---- input, backbone, refined tap
    inp = cv.box(0.3, 8.6, 2.0, 2.4, [("Input image", "title"), ("RGB in [0, 1]", "text"),
                                      ("(x − 0.5) / 0.5", "text"), ("inside forward", "text"),
                                      (f"3 ch · {H}×{W}", "shape")])
    bb = cv.box(2.8, 8.2, 3.6, 3.2, [(f"Backbone  {THETA['com']}", "title"), ("backbone", "code"),
                                     (f"aligned {cfg.backbone} (timm names)", "text"),
                                     (f"stem + blocks.0–{n_blocks - 1}: {len(spec.entry_chs)} entry,", "text"),
                                     (f"{spec.middle_blocks} middle, 2 exit", "text"),
                                     (f"OS {cfg.output_stride} by dilation", "text"),
                                     (nparams("backbone"), "text")], fill=fill("backbone"))
    rf = cv.box(2.8, 4.9, 3.6, 2.2, [(f"Refined fp  {THETA['com']}", "title"),
                                     (f"backbone.blocks.{ri}", "code"),
                                     ("input of its stack.conv3", "text"),
                                     ("(timm's stride-4 tap)", "text"),
                                     (sh("backbone.refined"), "shape")], fill=fill("backbone"))
    cv.wire([(inp[0] + inp[2], 9.8), (bb[0], 9.8)])
    cv.wire([(bb[0] + bb[2] / 2, bb[1]), (bb[0] + bb[2] / 2, rf[1] + rf[3])])

    # ---- ASPP (Fig. 4)
    ax0, aw = 7.55, 3.35
    cv.group(ax0 - 0.2, 5.9, aw + 0.4, 8.2, [("ASPP (§3.2.1, Fig. 4)  " + THETA["com"], "title"),
                                              ("aspp", "code")], fill="#eceff1")
    bh, gap, top = 0.78, 0.14, 12.95
    branch_lines = [
        ("cross-channel learner", "aspp.cross_channel_learner",
         f"{ks(model.aspp.cross_channel_learner.conv)} conv"),
        *((f"atrous r={r}", f"aspp.atrous.{i}", "sep 3×3 conv") for i, r in enumerate(rates)),
        ("full-image extractor", "aspp.full_image_extractor", "GAP→1×1→ReLU"),
    ]
    for i, (paper, code, op) in enumerate(branch_lines):
        y = top - i * (bh + gap) - bh
        cv.box(ax0, y, aw, bh, [(f"{paper}: {op}", "text"), (code, "code")], fill=fill("aspp"))
    n_cat = shapes["aspp.cross_channel_learner"][0] * len(branch_lines)
    pj = cv.box(ax0, 6.15, aw, 1.3, [("project: cat → 1×1 conv", "text"), ("aspp.project", "code"),
                                     (f"{n_cat} → " + sh("aspp"), "shape")], fill=fill("aspp"))
    mid = (bb[0] + bb[2] + ax0 - 0.2) / 2
    cv.wire([(bb[0] + bb[2], 9.8), (ax0 - 0.2, 9.8)])
    cv.label(mid, 10.45, "deep\nfeature", fontsize=11)
    cv.label(mid, 9.2, f"{shapes['backbone.deep'][0]} ch\n1/{H // shapes['backbone.deep'][1]}",
             **STYLE["shape"])

    # ---- decoder (Fig. 5)
    gx0, bus_x, dx0, dw = 11.55, 11.95, 12.35, 3.45
    cv.group(gx0, 0.35, dx0 + dw + 0.2 - gx0, 13.75, [("Decoder (§3.2.2, Fig. 5)", "title"),
                                                      ("decoder", "code")], fill="#f5f5f5")
    yc = {"depth": 12.35, "common": 7.2, "semantic": 1.45}
    specs = {
        "depth": ("Depth Feature", "decoder.depth_feature", n_dep),
        "common": ("Common Representation", "decoder.common_representation", n_com),
        "semantic": ("Semantic Feature", "decoder.semantic_feature", n_sem),
    }
    for k, (paper, code, n) in specs.items():
        cv.box(dx0, yc[k] - 0.95, dw, 1.9, [
            (f"{paper}  {THETA[grp(code)]}", "title"), (code, "code"),
            (f"{n}× sep 3×3 conv", "text"), (sh(code), "shape")], fill=fill(code))
    cv.ax.plot([bus_x, bus_x], [yc["semantic"], yc["depth"]], color=WIRE["plain"], lw=3.5, zorder=1)
    for k in yc:
        cv.wire([(bus_x, yc[k]), (dx0, yc[k])])
    na = shapes["aspp"][0]
    cv.box(dx0 - 0.1, 9.0, dw + 0.2, 2.0, [("each branch:", "text"),
                                          (f"refined → own 1×1 conv {proj}", "text"),
                                          (f"cat [ASPP↑ {na}, {proj}] = {na + proj} ch", "text"),
                                          (f"→ sep 3×3 convs → {shapes['decoder.depth_feature'][0]}", "text")],
           fill="white", edge="#90a4ae", ls=":")
    # ASPP output (upsampled) and refined fp into the bus
    cv.wire([(ax0 + aw / 2, pj[1]), (ax0 + aw / 2, 5.4), (bus_x, 5.4)])
    cv.label((ax0 + aw / 2 + bus_x) / 2, 5.68, "bilinear ↑ ×4", fontsize=11)
    cv.wire([(rf[0] + rf[2] / 2, rf[1]), (rf[0] + rf[2] / 2, 4.6), (bus_x, 4.6)])
    cv.label((ax0 + aw / 2 + bus_x) / 2, 4.32, "refined fp (stride 4)", fontsize=11)

    # ---- the two units: x layout
    xe = dx0 + dw                   # decoder outputs end
    w_dep, w_sem = xe + 0.55, xe + 0.8  # vertical wires (outside the panels)
    px0 = xe + 1.05                 # panels start
    w_com = px0 + 0.25              # vertical wire of the Common Representation (inside the panels)
    ux0, bw = px0 + 0.55, 3.45      # area/latent boxes
    opx = ux0 + bw + 0.45           # the pixel product
    cx, cw = opx + 0.45, 3.0        # cue / fuse / semantic cue / classifier
    ox, ow = cx + cw + 0.3, 1.75    # outputs
    pw = ox + ow + 0.2 - px0

    # ---- semantic-to-depth (Fig. 6)
    cv.group(px0, 7.75, pw, 6.35, [("Semantic-to-Depth (§3.2.3, Fig. 6)", "title"),
                                   ("semantic_to_depth", "code")], fill="#fff8e1")
    y3, y2 = 8.78, 10.83
    a3 = cv.box(ux0, y3 - 0.78, bw, 1.55, [(r"area_3d $\sim\Delta X\Delta Y$  " + THETA["s2d_3d"], "title"),
                                           ("semantic_to_depth.area_3d", "code"),
                                           (area_ops, "text"),
                                           ("softplus → " + sh("semantic_to_depth.area_3d"), "shape")],
               fill=fill("semantic_to_depth.area_3d"))
    a2 = cv.box(ux0, y2 - 0.78, bw, 1.55, [(r"area_2d $\sim(\Delta u\Delta v)^{-1}$  " + THETA["s2d_2d"],
                                            "title"), ("semantic_to_depth.area_2d", "code"),
                                           (area_ops, "text"),
                                           ("softplus → " + sh("semantic_to_depth.area_2d"), "shape")],
               fill=fill("semantic_to_depth.area_2d"))
    ymul = (y3 + y2) / 2
    cv.op(opx, ymul, "⊙")
    cv.wire([(a3[0] + a3[2], y3), (opx, y3), (opx, ymul - 0.22)])
    cv.wire([(a2[0] + a2[2], y2), (opx, y2), (opx, ymul + 0.22)])
    cue = cv.box(cx, ymul - 0.95, cw, 1.9, [("Pixel Sqrt (depth cue)", "title"), ("aux['cue']", "code"),
                                            ("sqrt(area_3d·area_2d + 1e-6)", "text"), ("eq. (3)", "text"),
                                            (sh("semantic_to_depth.cue"), "shape")], fill="white", ls="--")
    cv.wire([(opx + 0.22, ymul), (cx, ymul)])
    fz = cv.box(cx, yc["depth"] - 0.72, cw, 1.45, [(f"fuse  {THETA['dep']}", "title"),
                                                   ("semantic_to_depth.fuse", "code"),
                                                   (f"cat {shapes['semantic_to_depth.fuse.in'][0]} → "
                                                    f"{ks(s2d.fuse)} conv → {shapes['semantic_to_depth.fuse'][0]}",
                                                    "shape")],
                fill=fill("semantic_to_depth.fuse"))
    cv.wire([(cx + cw / 2, cue[1] + cue[3]), (cx + cw / 2, fz[1])])
    cv.box(ox, 10.5, ow, 3.0, [("Depth", "title"), ("out['depth']", "code"),
                                ("bilinear ↑", "text"), ("+ softplus", "text"), ("(> 0)", "text"),
                                (sh("semantic_to_depth").split(" · ", 1)[0], "shape"),
                                (f"{H}×{W}", "shape")])
    cv.wire([(cx + cw, yc["depth"]), (ox, yc["depth"])])

    # ---- depth-to-semantic (Fig. 7)
    cv.group(px0, 0.35, pw, 6.65, [("Depth-to-Semantic (§3.2.4, Fig. 7)", "title"),
                                   ("depth_to_semantic", "code")], fill="#e3f2fd")
    z3, zi = 5.33, 3.33
    d3 = cv.box(ux0, z3 - 0.78, bw, 1.55, [(r"area_3d $\sim\Delta X\Delta Y$  " + THETA["d2s_3d"], "title"),
                                           ("depth_to_semantic.area_3d", "code"),
                                           (latent_ops, "text"),
                                           (sh("depth_to_semantic.area_3d"), "shape")],
               fill=fill("depth_to_semantic.area_3d"))
    di = cv.box(ux0, zi - 0.78, bw, 1.55, [(r"inverse_depth $\sim d^{-2}$  " + THETA["d2s_inv_depth"],
                                            "title"), ("depth_to_semantic.inverse_depth", "code"),
                                           (latent_ops, "text"),
                                           (sh("depth_to_semantic.inverse_depth"), "shape")],
               fill=fill("depth_to_semantic.inverse_depth"))
    py = (z3 + zi) / 2
    cv.op(opx, py, "⊙")
    cv.wire([(d3[0] + d3[2], z3), (opx, z3), (opx, py + 0.22)])
    cv.wire([(di[0] + di[2], zi), (opx, zi), (opx, py - 0.22)])
    sc = cv.box(cx, py - 0.95, cw, 1.9, [(f"semantic cue  {THETA['sem']}", "title"),
                                         ("depth_to_semantic.semantic_cue", "code"),
                                         (f"{cbr(d2s.semantic_cue)} on the", "text"),
                                         (f"⊙ product ({shapes['depth_to_semantic.product'][0]} ch)", "text"),
                                         (sh("depth_to_semantic.semantic_cue"), "shape")],
                fill=fill("depth_to_semantic.semantic_cue"))
    cv.wire([(opx + 0.22, py), (cx, py)])
    cl = cv.box(cx, yc["semantic"] - 0.8, cw, 1.6, [(f"classifier  {THETA['sem']}", "title"),
                                                    ("depth_to_semantic.classifier", "code"),
                                                    (f"cat {shapes['depth_to_semantic.classifier.in'][0]} → "
                                                     f"{ks(d2s.classifier)} conv → "
                                                     f"{shapes['depth_to_semantic.classifier'][0]}",
                                                     "shape")],
                fill=fill("depth_to_semantic.classifier"))
    cv.wire([(cx + cw / 2, sc[1]), (cx + cw / 2, cl[1] + cl[3])])
    cv.box(ox, 0.65, ow, 2.9, [("Semantic", "title"), ("out['semantic']", "code"),
                               ("bilinear ↑", "text"), ("logits", "text"),
                               (sh("depth_to_semantic").split(" · ", 1)[0], "shape"),
                               (f"{H}×{W}", "shape")])
    cv.wire([(cx + cw, yc["semantic"]), (ox, yc["semantic"])])

    # ---- wires from the decoder outputs into the two units (coloured by source)
    cv.wire([(xe, yc["depth"]), (fz[0], yc["depth"])], color=WIRE["depth"])
    cv.wire([(xe, yc["depth"]), (w_dep, yc["depth"]), (w_dep, zi), (ux0, zi)], color=WIRE["depth"])
    cv.wire([(xe, yc["common"]), (w_com, yc["common"]), (w_com, y3), (ux0, y3)], color=WIRE["common"])
    cv.wire([(w_com, yc["common"]), (w_com, z3), (ux0, z3)], color=WIRE["common"])
    cv.wire([(xe, yc["semantic"]), (cl[0], yc["semantic"])], color=WIRE["semantic"])
    cv.wire([(xe, yc["semantic"]), (w_sem, yc["semantic"]), (w_sem, y2), (ux0, y2)], color=WIRE["semantic"])

    # ---- legend: parameter groups of Algorithm 1, with their sizes
    pg = model.parameter_groups()
    lx, ly = 0.35, 3.55
    cv.label(lx, ly + 0.35, "Parameter groups of Algorithm 1 (SOSDNet.parameter_groups)", ha="left",
             fontsize=13, fontweight="bold")
    order = ["com", "dep", "s2d_3d", "s2d_2d", "sem", "d2s_3d", "d2s_inv_depth"]
    for i, g in enumerate(order):
        col, row = i // 4, i % 4
        x, y = lx + col * 5.55, ly - 0.3 - row * 0.52
        cv.ax.add_patch(FancyBboxPatch((x, y - 0.17), 0.5, 0.34, boxstyle="round,pad=0,rounding_size=0.05",
                                       fc=GROUPS[g][0], ec="#37474f", lw=1.2))
        n = sum(p.numel() for p in pg[g])
        cv.label(x + 0.65, y, f"{GROUPS[g][1]}: {n / 1e6:.3f} M", ha="left", fontsize=12)
    x, y = lx + 5.55, ly - 0.3 - 3 * 0.52
    cv.ax.add_patch(FancyBboxPatch((x, y - 0.17), 0.5, 0.34, boxstyle="round,pad=0,rounding_size=0.05",
                                   fc="white", ec="#37474f", ls="--", lw=1.2))
    cv.label(x + 0.65, y, "no parameters", ha="left", fontsize=12)
    cv.label(lx, 1.2, "wires:", ha="left", fontsize=12)
    for i, (k, name) in enumerate([("depth", "Depth Feature"), ("common", "Common Repr."),
                                   ("semantic", "Semantic Feature")]):
        x = lx + 0.85 + i * 3.3
        cv.ax.plot([x, x + 0.6], [1.2, 1.2], color=WIRE[k], lw=3)
        cv.label(x + 0.75, 1.2, name, ha="left", fontsize=12)
    cv.label(lx, 0.72, r"EM (§3.3): a phase steps its side and $\theta^{com}$, the other side is frozen;",
             ha="left", fontsize=11.5, color="#455a64")
    cv.label(lx, 0.38, r"$\alpha^t$ of eq. (5) scales each branch's gradient where it leaves the trunk",
             ha="left", fontsize=11.5, color="#455a64")

    problems = cv.check()
    out.parent.mkdir(parents=True, exist_ok=True)
    cv.fig.savefig(out, dpi=dpi, facecolor="white")
    plt.close(cv.fig)
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "architecture.png"))
    p.add_argument("--size", nargs=2, type=int, default=(480, 640), metavar=("H", "W"))
    p.add_argument("--dpi", type=int, default=100)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SOSDNet(ModelConfig(variant="sosd")).eval()
    shapes = trace(model, *args.size)
    for k, v in shapes.items():
        print(f"{k:45s} {v}")
    problems = draw(model, shapes, Path(args.out), args.dpi)
    for pr in problems:
        print("layout:", pr)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
