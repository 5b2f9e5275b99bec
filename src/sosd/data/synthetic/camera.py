"""Camera and background geometry: the pinhole camera's ray of each row/column (pixel ``(i, j)`` is the ray
through ``(u, v) = (j, i)``) and the analytic depth of the ground, ceiling, curbs and sky (ray-plane
intersections, broadcast over rows and columns).
"""
from __future__ import annotations

import numpy as np


class _Camera:
    def __init__(self, fx, fy, cx, cy, height, width):
        self.fx, self.fy, self.cx, self.cy, self.H, self.W = fx, fy, cx, cy, height, width
        self.xn = ((np.arange(width) - cx) / fx).astype(np.float32)    # ray X/Z of each column
        self.yn = ((np.arange(height) - cy) / fy).astype(np.float32)   # ray Y/Z of each row


def _ground_indoor(sc, cam):
    yn = cam.yn
    with np.errstate(divide="ignore"):
        zf = np.where(yn > 0, sc.h / yn, np.inf)
        zc = np.where(yn < 0, (sc.h - sc.room_h) / yn, np.inf)
    zrow = np.minimum(zf, zc).astype(np.float32)
    prow = np.where(yn > 0, sc.floor, sc.ceiling).astype(np.intp)
    z = np.repeat(zrow[:, None], cam.W, axis=1)
    pid = np.repeat(prow[:, None].astype(np.intp), cam.W, axis=1)
    return z, pid


def _ground_street(sc, cam):
    H, W = cam.H, cam.W
    z = np.full((H, W), np.inf, np.float32)
    pid = np.full((H, W), sc.sky, np.intp)
    r0 = int(np.searchsorted(cam.yn, 0.0, side="right"))   # first row below the horizon
    if r0 >= H:
        return z, pid
    yn, xn = cam.yn[r0:], cam.xn
    zr = (sc.h / yn)[:, None]
    zs = ((sc.h - sc.curb) / yn)[:, None]
    xr = zr * xn[None, :]
    road = (xr >= -sc.wl) & (xr <= sc.wr)
    xs = zs * xn[None, :]
    side = (xs <= -sc.wl) | (xs >= sc.wr)
    with np.errstate(divide="ignore"):
        zc = np.where(xn < 0, -sc.wl / xn, np.where(xn > 0, sc.wr / xn, np.inf)).astype(np.float32)
    pc = np.where(xn < 0, sc.curb_l, sc.curb_r).astype(np.intp)
    z[r0:] = np.where(road, zr, np.where(side, zs, zc[None, :]))
    pid[r0:] = np.where(road, sc.road, np.where(side, sc.sidewalk, pc[None, :]))
    return z, pid
