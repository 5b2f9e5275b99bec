"""Depth-validity holes: the sensor range, surfaces without returns (windows, glass, dark or glossy
objects), random blobs, the occlusion band the second view (stereo camera / Kinect projector) cannot see,
and the mixed pixels at depth edges.
"""
from __future__ import annotations

import numpy as np


def _occlusion_band(disp: np.ndarray) -> np.ndarray:
    """Pixels of the reference (left) view hidden in the second view (right camera / projector at +b):
    pixel u maps to u - D(u); it is hidden if some pixel to its right maps onto or left of it. Only pixels
    within max(D) to the right can do that, so a windowed suffix minimum (log2(max D) doublings) is exact."""
    H, W = disp.shape
    xr = np.arange(W, dtype=np.float32)[None, :] - disp
    m = np.full((H, W), np.inf, np.float32)   # m[u] = min over u' in (u, u + k] of xr[u']
    m[:, :-1] = xr[:, 1:]
    k, reach = 1, float(disp.max()) + 1.0
    while k < reach and k < W:
        np.minimum(m[:, :W - k], m[:, k:], out=m[:, :W - k])
        k *= 2
    return m < xr - 0.5


def _edge_band(disp: np.ndarray, pid: np.ndarray, jump: float) -> np.ndarray:
    """Both pixels of every horizontal/vertical neighbour pair on different surfaces whose depths differ by
    more than ``jump`` (relative): the mixed / flying pixels a depth sensor drops at object boundaries."""
    out = np.zeros(disp.shape, bool)
    for a, b, pa, pb, oa, ob in ((disp[:, 1:], disp[:, :-1], pid[:, 1:], pid[:, :-1], out[:, 1:], out[:, :-1]),
                                 (disp[1:], disp[:-1], pid[1:], pid[:-1], out[1:], out[:-1])):
        e = np.abs(a - b) > np.maximum(a, b) * np.float32(jump)
        e &= pa != pb
        oa |= e
        ob |= e
    return out


def _valid_mask(sc, cam, spec, z, pid, invalid_tab, disp_fx):
    """(valid mask, disparity fx·b/z of every pixel (0 in the sky))."""
    valid = (z >= spec.min_depth) & (z <= spec.max_depth)          # the sky (inf) fails the range test
    valid &= ~np.take(invalid_tab, pid)
    disp = np.float32(disp_fx * spec.baseline) / z                  # 1/inf = 0 in the sky
    valid &= ~_occlusion_band(disp)
    valid &= ~_edge_band(disp, pid, spec.edge_jump)
    hn, wn = spec.native_hw
    for (uc, vc, ru, rv) in sc.blobs:   # normalised image coordinates, aspect of the native image
        cu, cv_, rU, rV = uc * cam.W, vc * cam.H, ru * cam.W, rv * cam.W * (cam.H / cam.W) * (wn / hn)
        c0, c1 = max(0, int(cu - rU)), min(cam.W, int(cu + rU) + 1)
        r0, r1 = max(0, int(cv_ - rV)), min(cam.H, int(cv_ + rV) + 1)
        if c1 <= c0 or r1 <= r0:
            continue
        du = ((np.arange(c0, c1) - cu) / rU) ** 2
        dv = ((np.arange(r0, r1) - cv_) / rV) ** 2
        valid[r0:r1, c0:c1] &= ~((dv[:, None] + du[None, :]) <= 1.0)
    return valid, disp
