"""Textures and shading: procedural patterns in each part's surface coordinates (tiles, planks, windows,
doors, grain, road markings), Lambertian shade, soft contact shadows, then exposure, white balance, gamma
and sensor noise. Nothing here depends on the depth value itself.
"""
from __future__ import annotations

import math

import numpy as np

from sosd.data.synthetic.scene import _Scene


def _hash01(ix, iy, salt):
    """Pseudo-random float32 in [0, 1) per integer cell (ix, iy int32 arrays; salt uint32 array): an integer
    hash (vectorised, no state)."""
    h = ix.view(np.uint32) * np.uint32(0x9E3779B1)
    h ^= iy.view(np.uint32) * np.uint32(0x85EBCA77)
    h ^= salt
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(16)
    return h.astype(np.float32) * np.float32(2.0 ** -32)


# rows of the per-part parameter table (one contiguous row per parameter: np.take on a row is fast)
_A0, _A2, _AO, _B0, _B1, _B2, _BO, _IPS, _IPT, _MS, _MT, _CV, _GR, _IGS, _SH = range(15)


def _tables(sc: _Scene):
    rows = []
    for p in sc.parts:
        a, ao, b, bo = p.frame   # s never depends on Y (a[1] == 0 for every surface)
        rows.append((a[0], a[2], ao, b[0], b[1], b[2], bo, *p.grid, p.cell_var, p.grain, 1.0 / p.grain_size,
                     p.shade))
    f = np.ascontiguousarray(np.array(rows, np.float32).T)
    P = len(sc.parts)
    # colours per channel, interleaved: column 2p = line colour (outside the pattern cells), 2p + 1 = cell
    cols = np.empty((3, 2 * P), np.float32)
    cols[:, 0::2] = np.array([p.col_line for p in sc.parts], np.float32).T
    cols[:, 1::2] = np.array([p.col_in for p in sc.parts], np.float32).T
    labels = np.array([p.label for p in sc.parts], np.int64)
    invalid = np.array([p.invalid for p in sc.parts], bool)
    ground = np.array([p.kind == "ground" for p in sc.parts], bool)
    return f, cols, labels, invalid, ground


_CHUNK_PIXELS = 32768   # shading works on row blocks of about this many pixels (they stay in cache)


def _texture_rows(sc, cam, z, pid, f, rows):
    """Pattern factor (shade x grain x cell brightness) and colour-table index of the pixels in ``rows``."""
    zf = z[rows]
    pidr = pid[rows]
    sky = ~np.isfinite(zf)
    if sky.any():
        zf = np.where(sky, np.float32(0), zf)
    X = zf * cam.xn[None, :]
    Y = zf * cam.yn[rows, None]

    def g(k):
        return np.take(f[k], pidr)

    s = g(_A0) * X + g(_A2) * zf - g(_AO)
    t = g(_B0) * X + g(_B1) * Y + g(_B2) * zf - g(_BO)
    su, tv = s * g(_IPS), t * g(_IPT)
    iu, iv = np.floor(su), np.floor(tv)
    su -= iu
    tv -= iv
    ms, mt = g(_MS), g(_MT)
    inside = (su >= ms) & (su <= 1 - ms) & (tv >= mt) & (tv <= 1 - mt)
    salt = pidr.astype(np.uint32)
    cell = _hash01(iu.astype(np.int32), iv.astype(np.int32), salt)
    cell -= np.float32(0.5)
    cell *= g(_CV)
    igs = g(_IGS)
    s *= igs
    t *= igs
    salt += np.uint32(7919)
    grain = _hash01(np.floor(s).astype(np.int32), np.floor(t).astype(np.int32), salt)
    grain -= np.float32(0.5)
    grain *= g(_GR)
    grain += 1
    cell *= inside
    cell += 1
    factor = g(_SH)
    factor *= grain
    factor *= cell
    if sc.preset == "street" and cam.yn[rows.stop - 1] > 0:   # road markings: white paint on the road
        mark = np.zeros(X.shape, bool)
        q = zf * np.float32(1.0 / sc.dash[1])
        dash = (q - np.floor(q)) < np.float32(sc.dash[0] / sc.dash[1])
        for xl in sc.lanes:
            mark |= np.abs(X - np.float32(xl)) < 0.07
        mark &= dash
        if sc.edge_lines:
            mark |= (np.abs(X + np.float32(sc.wl - 0.3)) < 0.08) | (np.abs(X - np.float32(sc.wr - 0.3)) < 0.08)
        mark &= pidr == sc.road
        inside |= mark
        factor *= 1 + mark * np.float32(1.6)
    cidx = 2 * pidr
    cidx += inside
    return factor, cidx


def _shade_image(sc, cam, z, pid, tabs, rng_px):
    """Deferred shading: albedo pattern in each part's surface coordinates x Lambert x contact shadows,
    then exposure, white balance, gamma and sensor noise. Nothing here depends on the depth value itself
    (depth only locates the surface point whose texture is looked up)."""
    f, cols, _, _, ground_tab = tabs
    H, W = z.shape
    step = max(1, _CHUNK_PIXELS // W)
    chunks = [slice(r, min(r + step, H)) for r in range(0, H, step)]
    factor = np.empty((H, W), np.float32)
    cidx = np.empty((H, W), np.intp)
    for rows in chunks:
        factor[rows], cidx[rows] = _texture_rows(sc, cam, z, pid, f, rows)
    # soft contact shadows of grounded objects on the floor / road / sidewalk
    isg = None
    for o in sc.objects:
        if o.grounded:
            isg = np.take(ground_tab, pid) if isg is None else isg
            _contact_shadow(sc, cam, o, z, isg, factor)
    gamma = float(sc.gamma)
    white = sc.white ** gamma
    colg = (cols ** np.float32(gamma)) * (255.0 * white[:, None]).astype(np.float32)
    a = sc.noise * math.sqrt(3) * 255.0   # uniform noise of std sc.noise (in 0..1 units), +0.5 for rounding
    nk, nb = np.float32(2 * a / 255.0), np.float32(0.5 - a)
    noise = np.frombuffer(rng_px.bytes(3 * H * W), np.uint8).reshape(3, H, W)
    out = np.empty((H, W, 3), np.uint8)
    expo = np.float32(sc.exposure)
    for rows in chunks:
        fac = factor[rows]
        fac *= expo
        ci = cidx[rows]
        sky = None
        if cam.yn[rows.start] <= 0:   # the sky can only be at or above the horizon
            sky = ~np.isfinite(z[rows])
            if sky.any():
                elev = np.clip(-cam.yn[rows] * 2.5, 0, 1)[:, None]
                skyf = sky.astype(np.float32)
            else:
                sky = None
        for c in range(3):
            img = np.take(colg[c], ci)
            img *= fac
            if sky is not None:
                skyc = (sc.sky_horizon[c] * (1 - elev) + sc.sky_zenith[c] * elev) * sc.exposure * sc.white[c]
                skyc = (skyc ** gamma * 255.0).astype(np.float32)
                img += skyf * (skyc - img)
            img += noise[c, rows] * nk + nb
            np.clip(img, 0.0, 255.0, out=img)
            out[rows, :, c] = img
    return out


def _contact_shadow(sc, cam, o, z, isg, factor, reach=0.45):
    d, x0, x1 = o.d, o.x0, o.x1
    zlo, zhi = max(d - reach, 0.3), d + reach
    ug = max(reach, 0.3 * (x1 - x0))
    yg = o.ybot
    if yg <= 0:
        return
    # image region of the footprint on the ground plane
    c0 = max(0, math.ceil(cam.cx + cam.fx * min((x0 - ug) / zlo, (x0 - ug) / zhi)))
    c1 = min(cam.W, math.ceil(cam.cx + cam.fx * max((x1 + ug) / zlo, (x1 + ug) / zhi)) + 1)
    r0 = max(0, math.ceil(cam.cy + cam.fy * yg / zhi) - 1)
    r1 = min(cam.H, math.ceil(cam.cy + cam.fy * yg / zlo) + 1)
    if c1 <= c0 or r1 <= r0:
        return
    g = isg[r0:r1, c0:c1]
    if not g.any():
        return
    Zr = z[r0:r1, c0:c1]
    Xr = Zr * cam.xn[None, c0:c1]
    dx = np.maximum(np.maximum(np.float32(x0) - Xr, Xr - np.float32(x1)), 0.0)
    wx = np.clip(1.0 - dx / np.float32(ug), 0.0, 1.0)
    wz = np.clip(1.0 - np.abs(Zr - np.float32(d)) / np.float32(reach), 0.0, 1.0)
    factor[r0:r1, c0:c1] *= 1.0 - np.float32(sc.shadow) * (wx * wz * g)
