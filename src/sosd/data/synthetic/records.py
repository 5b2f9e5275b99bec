"""Per-object ground truth of a rendered scene (``render_scene(..., return_objects=True)``): physical size,
depth, analytic image size (eq. 2), visible and unoccluded pixel counts, silhouette fill and a bound on
the rasterisation error, so that eq. 3 can be checked on rendered objects.
"""
from __future__ import annotations

import math

import numpy as np

from sosd.data.synthetic.raster import _rect_pixels


def _object_records(sc, cam, spec, pid):
    """Per-object ground truth for eq. 2-3 (only computed on request)."""
    recs = []
    for k, o in enumerate(sc.objects):
        width, height, d = o.x1 - o.x0, o.ybot - o.ytop, o.d
        u0, u1 = cam.cx + cam.fx * o.x0 / d, cam.cx + cam.fx * o.x1 / d
        v0, v1 = cam.cy + cam.fy * o.ytop / d, cam.cy + cam.fy * o.ybot / d
        c0, c1 = max(0, math.ceil(u0)), min(cam.W, math.ceil(u1))
        r0, r1 = max(0, math.ceil(v0)), min(cam.H, math.ceil(v1))
        visible, expected = 0, 0
        vis_box = None
        if c1 > c0 and r1 > r0:
            own = np.zeros((r1 - r0, c1 - c0), bool)
            for i in o.parts:
                px = _rect_pixels(cam, sc.parts[i].geom)
                if px is None:
                    continue
                a0, a1, b0, b1, mask = px
                sl = own[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
                sl |= True if mask is None else mask
            expected = int(own.sum())
            vis = np.isin(pid[r0:r1, c0:c1], o.parts)
            visible = int(vis.sum())
            if visible:
                rr, cc = np.nonzero(vis)
                vis_box = (int(cc.min()) + c0, int(cc.max()) + c0 + 1, int(rr.min()) + r0, int(rr.max()) + r0 + 1)
        inside = u0 >= 0 and v0 >= 0 and u1 <= cam.W and v1 <= cam.H
        fill = _fill_fraction(o.template)
        recs.append({
            "instance": k, "class_id": int(o.cls), "class_name": o.name, "label": int(o.cls),
            "width_m": width, "height_m": height, "depth_m": d, "x_left_m": o.x0, "y_top_m": o.ytop,
            "fill": fill, "area_m2": fill * width * height,
            "raster_bound_px": _raster_bound(o, cam.fx * width / d, cam.fy * height / d),
            "du_px": cam.fx * width / d, "dv_px": cam.fy * height / d,   # eq. 2, analytic
            "box_px": (u0, u1, v0, v1),                                   # analytic image box
            "visible_box_px": vis_box,                                    # (c0, c1, r0, r1) of visible pixels
            "visible_px": visible, "unoccluded_px": expected,
            "inside": bool(inside), "unoccluded": bool(visible == expected and expected > 0),
            "grounded": o.grounded,
        })
    return recs


_FILL_CACHE: dict = {}


def _fill_fraction(template, n: int = 4096) -> float:
    """Area fraction of the unit square covered by the union of a template's parts: exact in s (union of
    intervals per row), midpoint rule over n rows in t (error ~ 1/n of a part edge)."""
    key = id(template)
    if key in _FILL_CACHE:
        return _FILL_CACHE[key]
    t = (np.arange(n) + 0.5) / n
    lo, hi = [], []
    for (s0, s1, t0, t1, shape, *_rest) in template:
        if shape == "e":
            uc, vc, ru, rv = (s0 + s1) / 2, (t0 + t1) / 2, (s1 - s0) / 2, (t1 - t0) / 2
            half = ru * np.sqrt(np.clip(1 - ((t - vc) / rv) ** 2, 0, None))
            on = np.abs(t - vc) < rv
            lo.append(np.where(on, uc - half, np.inf))
            hi.append(np.where(on, uc + half, -np.inf))
        else:
            on = (t >= t0) & (t < t1)
            lo.append(np.where(on, s0, np.inf))
            hi.append(np.where(on, s1, -np.inf))
    lo, hi = np.array(lo), np.array(hi)
    order = np.argsort(lo, axis=0)
    lo, hi = np.take_along_axis(lo, order, 0), np.take_along_axis(hi, order, 0)
    covered = np.zeros(n)
    end = np.full(n, -np.inf)
    for a, b in zip(lo, hi):
        covered += np.clip(b - np.maximum(a, end), 0, None) * np.isfinite(a)
        end = np.maximum(end, b)
    _FILL_CACHE[key] = float(covered.mean())
    return _FILL_CACHE[key]


def _raster_bound(o, du, dv) -> float:
    """Upper bound on |pixel count - exact image area| of an unclipped object: per rectangle part the count
    of pixel centres differs from its area by less than (Δu_p + Δv_p + 1); per ellipse part by less than
    (2Δu_p + Δv_p + 1) (row counts err by < 1 each, the row sum by < the chord's total variation)."""
    b = 0.0
    for (s0, s1, t0, t1, shape, *_rest) in o.template:
        w, h = (s1 - s0) * du, (t1 - t0) * dv
        b += (2 * w if shape == "e" else w) + h + 1
    return b
