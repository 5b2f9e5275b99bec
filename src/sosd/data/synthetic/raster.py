"""Z-buffer painting: vertical quads (walls, facades; exact ray-plane depth per column) and fronto-parallel
rectangles / ellipses (object parts at one depth), each filling the pixels whose centres lie inside it
wherever it is nearer than what is already painted, so occlusion is exact.
"""
from __future__ import annotations

import math

import numpy as np


def _paint_vquad(z, pid, cam, geom, p, zn=0.05):
    X1, Z1, X2, Z2, ytop, ybot = geom
    if Z1 < zn and Z2 < zn:
        return
    if Z1 < zn:
        t = (zn - Z1) / (Z2 - Z1)
        X1, Z1 = X1 + t * (X2 - X1), zn
    elif Z2 < zn:
        t = (zn - Z2) / (Z1 - Z2)
        X2, Z2 = X2 + t * (X1 - X2), zn
    u1, u2 = cam.cx + cam.fx * X1 / Z1, cam.cx + cam.fx * X2 / Z2
    c0 = max(0, math.ceil(min(u1, u2)))
    c1 = min(cam.W, math.ceil(max(u1, u2)))
    if c1 <= c0:
        return
    # ray (xn, ., 1) meets the line P1 + s (P2 - P1) at z = K / (dX - xn dZ): 1/z is linear in the column
    xn = cam.xn[c0:c1].astype(np.float64)
    dX, dZ = X2 - X1, Z2 - Z1
    K = Z1 * dX - X1 * dZ
    inv = (dX - xn * dZ) * (1.0 / K)
    inv = np.maximum(inv, 1e-9)                        # columns at the very edge of the segment
    zz = (1.0 / inv).astype(np.float32)
    rt = np.ceil(cam.cy + (cam.fy * ytop) * inv)       # first and one-past-last row of each column
    rb = np.ceil(cam.cy + (cam.fy * ybot) * inv)
    np.clip(rt, 0, cam.H, out=rt)
    np.clip(rb, 0, cam.H, out=rb)
    r0, r1 = int(rt.min()), int(rb.max())
    if r1 <= r0:
        return
    rows = np.arange(r0, r1, dtype=np.float64)[:, None]
    zreg = z[r0:r1, c0:c1]
    m = rows >= rt
    m &= rows < rb
    m &= zreg >= zz
    np.copyto(zreg, np.broadcast_to(zz, zreg.shape), where=m)
    np.copyto(pid[r0:r1, c0:c1], p, where=m)


def _rect_pixels(cam, geom):
    """Pixel ranges (r0, r1, c0, c1) and ellipse mask (or None) of a fronto part, before clipping tests."""
    x0, x1, y0, y1, d, ell = geom
    u0, u1 = cam.cx + cam.fx * x0 / d, cam.cx + cam.fx * x1 / d
    v0, v1 = cam.cy + cam.fy * y0 / d, cam.cy + cam.fy * y1 / d
    c0, c1 = max(0, math.ceil(u0)), min(cam.W, math.ceil(u1))
    r0, r1 = max(0, math.ceil(v0)), min(cam.H, math.ceil(v1))
    if c1 <= c0 or r1 <= r0:
        return None
    mask = None
    if ell:
        uc, vc, ru, rv = (u0 + u1) / 2, (v0 + v1) / 2, (u1 - u0) / 2, (v1 - v0) / 2
        du = ((np.arange(c0, c1) - uc) / ru) ** 2
        dv = ((np.arange(r0, r1) - vc) / rv) ** 2
        mask = (dv[:, None] + du[None, :]) <= 1.0
    return r0, r1, c0, c1, mask


def _paint_rect(z, pid, cam, geom, p):
    px = _rect_pixels(cam, geom)
    if px is None:
        return
    r0, r1, c0, c1, mask = px
    d = np.float32(geom[4])
    zreg = z[r0:r1, c0:c1]
    m = zreg >= d
    if mask is not None:
        m &= mask
    np.copyto(zreg, d, where=m)
    np.copyto(pid[r0:r1, c0:c1], p, where=m)
