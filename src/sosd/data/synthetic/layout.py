"""Scene layout: where the stuff surfaces and the objects of each preset go (an indoor room, a street).

Each builder draws a whole 3-D scene from its own random stream, in the field of view ``xr`` of the widest
focal of the range, so the scene does not depend on the output size or the drawn focal multiplier (see
:mod:`sosd.data.synthetic`). ``_BUILDERS`` maps a preset name to its builder.
"""
from __future__ import annotations

import math

import numpy as np

from sosd.data.sample import IGNORE_INDEX
from sosd.data.synthetic.materials import _COLOURS
from sosd.data.synthetic.presets import PresetSpec
from sosd.data.synthetic.scene import (_add_object, _finish, _i, _jitter, _Light, _Part, _pick, _Scene, _size, _u,
                                       _wall_quad)


# ------------------------------------------------------------------------------------------------ indoor

def _build_indoor(rng, spec: PresetSpec, xr, scale=None) -> _Scene:
    """A room; ``xr`` = (min, max) of X/Z over the placement field of view."""
    sc = _Scene()
    sc.preset = "indoor"
    h = _u(rng, *spec.camera_height)
    room_h = max(_u(rng, 2.5, 3.2), h + 0.9)
    yaw = _u(rng, -0.45, 0.45) if rng.random() < 0.7 else 0.0
    room_w = _u(rng, 3.0, 7.0)
    room_l = _u(rng, 4.0, 9.5)
    rx = _u(rng, 0.3, 0.7) * room_w
    rz = _u(rng, 0.3, 1.2)
    cs, sn = math.cos(yaw), math.sin(yaw)

    def to_cam(a, b):  # room coords (a across, b along) -> camera (X, Z)
        return ((a - rx) * cs + (b - rz) * sn, -(a - rx) * sn + (b - rz) * cs)

    def to_room(X, Z):
        return (rx + X * cs - Z * sn, rz + X * sn + Z * cs)

    for _ in range(20):  # keep the farthest corner within the sensor range
        zmax = max(to_cam(a, b)[1] for a in (0, room_w) for b in (0, room_l))
        if zmax <= spec.max_depth - 0.3:
            break
        room_l *= 0.92
    sc.h, sc.room_h = h, room_h
    light = _Light(rng, (0.6, 1.4), (0.45, 0.65))
    sc.light = light
    r_axis, f_axis = np.array([cs, 0.0, -sn]), np.array([sn, 0.0, cs])
    cid = spec.cid
    # floor: planks, tiles or carpet in room-aligned coordinates
    floor_col = _jitter(rng, _pick(rng, _COLOURS["floor"]))
    kind = int(_i(rng, 3))
    if kind == 0:   # planks
        pw = _u(rng, 0.12, 0.25)
        fmat = dict(grid=(1 / pw, 1 / _u(rng, 1.0, 2.0), 0.03, 0.01), cell_var=0.25,
                    col_line=floor_col * 0.6, grain=0.10, grain_size=0.03)
    elif kind == 1:  # tiles
        tw = _u(rng, 0.3, 0.6)
        fmat = dict(grid=(1 / tw, 1 / tw, 0.03, 0.03), cell_var=0.08, col_line=floor_col * 0.75, grain=0.06,
                    grain_size=0.05)
    else:            # carpet
        fmat = dict(grain=0.12, grain_size=0.02)
    up = np.array([0.0, -1.0, 0.0])
    sc.floor = sc.add(_Part("ground", None, cid("floor"), floor_col, light.shade(up),
                            (r_axis, 0.0, f_axis, 0.0), **fmat))
    ceil_col = _jitter(rng, _pick(rng, _COLOURS["ceiling"]), 0.03)
    sc.ceiling = sc.add(_Part("ground", None, cid("ceiling"), ceil_col, light.shade(-up),
                              (r_axis, 0.0, f_axis, 0.0), grain=0.03, grain_size=0.1))
    # walls: back (b = L), left (a = 0), right (a = W), near (b = 0); inward normals
    wall_col = _jitter(rng, _pick(rng, _COLOURS["wall"]), 0.05)
    ytop, ybot = h - room_h, h
    corners = {k: to_cam(*k) for k in [(0, 0), (room_w, 0), (0, room_l), (room_w, room_l)]}
    walls = [((0, room_l), (room_w, room_l), -f_axis), ((0, 0), (0, room_l), r_axis),
             ((room_w, room_l), (room_w, 0), -r_axis), ((room_w, 0), (0, 0), f_axis)]
    for wi, (ca, cb, nrm) in enumerate(walls):
        col = wall_col if rng.random() < 0.8 else _jitter(rng, _pick(rng, _COLOURS["wall"]), 0.05)
        _wall_quad(sc, light, corners[ca], corners[cb], ytop, ybot, cid("wall"), col, nrm,
                   grain=0.03, grain_size=0.04)
        if wi == 3:
            continue
        # decals on the wall, 1 cm in front of it: windows (no depth), doors, pictures (unlabelled)
        A, B = np.array(corners[ca]), np.array(corners[cb])
        length = float(np.linalg.norm(B - A))
        dirv = (B - A) / length
        off = np.array([nrm[0], nrm[2]]) * 0.01
        for _ in range(int(_i(rng, 0, 3))):
            what = _pick(rng, ["window", "door", "picture", "picture"])
            if what == "window":
                w, hh, bottom = _u(rng, 0.8, 1.8), _u(rng, 1.0, 1.6), _u(rng, 0.8, 1.1)
                col = _jitter(rng, (0.75, 0.85, 0.95), 0.05)
                mat = dict(grid=(1 / (w / 2), 1 / (hh / 2), 0.04, 0.04), col_line=np.array([0.9, 0.9, 0.88]),
                           cell_var=0.15, invalid=True)
                lab = cid("wall")
            elif what == "door":
                w, hh, bottom = _u(rng, 0.8, 1.0), _u(rng, 2.0, 2.2), 0.0
                col = _jitter(rng, _pick(rng, [(0.55, 0.40, 0.25), (0.9, 0.9, 0.88), (0.4, 0.3, 0.2)]))
                mat = dict(grain=0.06, grain_size=0.05)
                lab = cid("wall")
            else:
                w, hh, bottom = _u(rng, 0.3, 1.0), _u(rng, 0.3, 0.8), _u(rng, 1.2, 1.6)
                col = _jitter(rng, _pick(rng, _COLOURS["clutter"]), 0.3)
                mat = dict(grid=(1.0 / w, 1.0 / hh, 0.06, 0.06), col_line=np.array([0.15, 0.12, 0.1]),
                           grain=0.25, grain_size=0.03)
                lab = IGNORE_INDEX
            if length < w + 0.4 or bottom + hh > room_h - 0.1:
                continue
            s0 = _u(rng, 0.2, length - w - 0.2)
            P1 = A + dirv * s0 + off
            P2 = A + dirv * (s0 + w) + off
            _wall_quad(sc, light, tuple(P1), tuple(P2), ybot - bottom - hh, ybot - bottom, lab, col, nrm, **mat)

    # objects standing on the floor, inside the room
    names = ["chair", "table", "sofa", "cabinet", "lamp", "box"]
    weights = np.array([0.28, 0.16, 0.08, 0.16, 0.10, 0.22])
    thick = {"chair": 0.45, "table": 0.7, "sofa": 0.85, "cabinet": 0.45, "lamp": 0.3, "box": 0.35,
             "clutter": 0.2}
    n_obj = int(_i(rng, 4, 13))
    n_clutter = int(_i(rng, 0, 4))
    zfar = max(to_cam(a, b)[1] for a in (0, room_w) for b in (0, room_l))
    cum = np.cumsum(weights) / weights.sum()
    jobs = [names[min(int(np.searchsorted(cum, rng.random(), side="right")), len(names) - 1)] for _ in range(n_obj)]
    jobs += ["clutter"] * n_clutter

    def inside(X, Z, m=0.05):
        a, b = to_room(X, Z)
        return m <= a <= room_w - m and m <= b <= room_l - m

    for name in jobs:
        if name == "clutter":
            w, hh = _u(rng, 0.1, 0.5), _u(rng, 0.1, 0.6)
        else:
            w, hh = _size(rng, spec, name, scale)
        for _ in range(25):
            # big furniture mostly stands back, near the walls
            d = _u(rng, max(1.0, 0.45 * zfar) if name in ("cabinet", "sofa") else 1.0, max(1.2, zfar))
            xc = _u(rng, xr[0] * d * 1.1, xr[1] * d * 1.1)
            t = thick[name]
            if all(inside(xc + sx * w / 2, d + sz * t) for sx in (-1, 1) for sz in (0, 1)):
                if name == "clutter":
                    _add_object(sc, rng, spec, light, "clutter", xc, d, h, w, hh, label=IGNORE_INDEX,
                                template=_pick(rng, ["clutter_r", "clutter_e"]), hole=0.1)
                else:
                    _add_object(sc, rng, spec, light, name, xc, d, h, w, hh)
                break
    _finish(sc, rng, n_blobs=(0, 4))
    return sc


# ------------------------------------------------------------------------------------------------ street

def _build_street(rng, spec: PresetSpec, xr, scale=None) -> _Scene:
    """A street; ``xr`` = (min, max) of X/Z over the placement field of view."""
    sc = _Scene()
    sc.preset = "street"
    cid = spec.cid
    h = _u(rng, *spec.camera_height)
    curb = _u(rng, 0.10, 0.18)
    wl, wr = _u(rng, 1.5, 9.0), _u(rng, 1.5, 9.0)         # camera -> left / right road edge
    swl, swr = _u(rng, 1.5, 5.0), _u(rng, 1.5, 5.0)       # sidewalk widths
    sc.h, sc.curb, sc.wl, sc.wr = h, curb, wl, wr
    light = _Light(rng, (0.3, 1.2), (0.45, 0.7))
    sc.light = light
    up = np.array([0.0, -1.0, 0.0])
    ex, ez = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    road_col = _jitter(rng, _pick(rng, _COLOURS["road"]), 0.04)
    sc.road = sc.add(_Part("ground", None, cid("road"), road_col, light.shade(up), (ex, 0.0, ez, 0.0),
                           grain=0.10, grain_size=0.05))
    side_col = _jitter(rng, _pick(rng, _COLOURS["sidewalk"]), 0.05)
    ps = _u(rng, 0.3, 0.6)
    smat = dict(grid=(1 / ps, 1 / ps, 0.03, 0.03), col_line=side_col * 0.75, cell_var=0.08, grain=0.08,
                grain_size=0.05)
    sc.sidewalk = sc.add(_Part("ground", None, cid("sidewalk"), side_col, light.shade(up),
                               (ex, 0.0, ez, 0.0), **smat))
    sc.curb_l = sc.add(_Part("ground", None, cid("sidewalk"), side_col * 0.9, light.shade(ex),
                             (ez, 0.0, -up, 0.0), grain=0.08, grain_size=0.05))
    sc.curb_r = sc.add(_Part("ground", None, cid("sidewalk"), side_col * 0.9, light.shade(-ex),
                             (ez, 0.0, -up, 0.0), grain=0.08, grain_size=0.05))
    sc.sky = sc.add(_Part("sky", None, cid("sky"), (0, 0, 0), 1.0, (ex, 0.0, ez, 0.0), grain=0.0))
    overcast = rng.random() < 0.35
    sc.sky_horizon = _jitter(rng, (0.86, 0.88, 0.90) if overcast else (0.80, 0.87, 0.95), 0.04, (0.95, 1.05))
    sc.sky_zenith = _jitter(rng, (0.75, 0.77, 0.80) if overcast else (0.40, 0.60, 0.88), 0.06, (0.95, 1.05))
    # lane markings: x positions (m) of dashed lines; solid edge lines
    lane_w = _u(rng, 2.8, 3.5)
    sc.lanes = [x for x in np.arange(-wl + lane_w, wr - 1.0, lane_w)] if rng.random() < 0.8 else []
    sc.edge_lines = rng.random() < 0.6
    sc.dash = (_u(rng, 2.0, 4.0), _u(rng, 5.0, 10.0))
    # buildings along both sides
    closed = rng.random() < 0.6
    z_end = _u(rng, 30.0, 75.0) if closed else 260.0
    ysw = h - curb                  # sidewalk level (Y)
    for side in (-1, 1):
        base = (wl + swl) if side < 0 else (wr + swr)
        z = -10.0
        prev = None   # (distance of the previous facade from the camera axis, its height, its end)
        while z < z_end:
            L = _u(rng, 8.0, 30.0) * max(1.0, z / 40.0)   # far buildings: longer segments
            z1 = min(z + L, z_end)
            setback = _u(rng, 0.0, 3.0) if rng.random() < 0.4 else 0.0
            X = side * (base + setback)
            H = _u(rng, 6.0, 28.0)
            T = _u(rng, 10.0, 20.0)
            col = _jitter(rng, _pick(rng, _COLOURS["building"]), 0.06)
            glass = _jitter(rng, (0.25, 0.30, 0.36), 0.1)
            wx, wy = _u(rng, 2.2, 4.0), _u(rng, 2.8, 3.5)
            mat = dict(grid=(1 / wx, 1 / wy, _u(rng, 0.2, 0.35), _u(rng, 0.2, 0.3)), col_line=col,
                       cell_var=0.35, grain=0.06, grain_size=0.15)
            nrm = -side * ex
            # facade along the street, then the face towards the camera (Z = z) of the same building
            P1, P2 = (X, z), (X, z1)
            _wall_quad(sc, light, P1, P2, ysw - H, ysw, cid("building"), glass, nrm, **mat)
            # its front face is hidden when the building before it is adjacent, protrudes at least as far
            # into the street and is at least as tall
            hidden = prev is not None and prev[2] == z and prev[0] <= abs(X) and prev[1] >= H
            if z > 0 and not hidden:
                _wall_quad(sc, light, (X + side * T, z), (X, z), ysw - H, ysw, cid("building"), glass, -ez, **mat)
            prev = (abs(X), H, z1)
            z = z1 + (_u(rng, 4.0, 12.0) if rng.random() < 0.12 else 0.0)   # sometimes a side street
    if closed:
        col = _jitter(rng, _pick(rng, _COLOURS["building"]), 0.06)
        H = _u(rng, 8.0, 30.0)
        mat = dict(grid=(1 / _u(rng, 2.2, 4.0), 1 / _u(rng, 2.8, 3.5), 0.28, 0.25), col_line=col,
                   cell_var=0.35, grain=0.06, grain_size=0.15)
        _wall_quad(sc, light, (-150.0, z_end), (150.0, z_end), h - H, h, cid("building"),
                   _jitter(rng, (0.25, 0.30, 0.36), 0.1), -ez, **mat)
    dmax = min(z_end - 2.0, 70.0)

    def logd(lo=3.0):
        return float(math.exp(_u(rng, math.log(lo), math.log(dmax))))

    def in_view(xc, d):
        return xr[0] * d * 1.15 <= xc <= xr[1] * d * 1.15

    placed: list[tuple[float, float, float]] = []   # vehicles: (xc, d, width)

    def free(xc, d, w):
        return all(abs(d - d2) > 5.5 or abs(xc - x2) > (w + w2) / 2 + 0.3 for (x2, d2, w2) in placed)

    # vehicles on the road
    for name, n in (("car", int(_i(rng, 1, 9))), ("truck", int(_i(rng, 0, 3)))):
        for _ in range(n):
            w, hh = _size(rng, spec, name, scale)
            for _ in range(20):
                d = logd(4.0)
                xc = _u(rng, -wl + w / 2 + 0.2, wr - w / 2 - 0.2) if wl + wr > w + 0.5 else 0.0
                if in_view(xc, d) and free(xc, d, w):
                    placed.append((xc, d, w))
                    _add_object(sc, rng, spec, light, name, xc, d, h, w, hh)
                    break

    def sidewalk_x(w, near=(0.3, None)):
        side = -1 if rng.random() < 0.5 else 1
        edge, swid = (wl, swl) if side < 0 else (wr, swr)
        lo = near[0] + w / 2
        hi = (swid - 0.3 - w / 2) if near[1] is None else min(near[1], swid - 0.3 - w / 2)
        if hi < lo:
            hi = lo
        return side * (edge + _u(rng, lo, hi))

    # people (mostly on sidewalks, some crossing)
    for _ in range(int(_i(rng, 0, 9))):
        w, hh = _size(rng, spec, "person", scale)
        for _ in range(20):
            d = logd(3.0)
            on_road = rng.random() < 0.12
            xc = _u(rng, -wl + 0.5, wr - 0.5) if on_road else sidewalk_x(w)
            if in_view(xc, d) and (not on_road or free(xc, d, w)):
                _add_object(sc, rng, spec, light, "person", xc, d, h if on_road else ysw, w, hh)
                break
    # poles near the curb, some carrying a traffic sign
    for _ in range(int(_i(rng, 1, 8))):
        w, hh = _size(rng, spec, "pole", scale)
        for _ in range(20):
            d = logd(3.0)
            xc = sidewalk_x(w, (0.2, 0.8))
            if in_view(xc, d):
                _add_object(sc, rng, spec, light, "pole", xc, d, ysw, w, hh)
                if rng.random() < 0.45:
                    sw, sh = _size(rng, spec, "traffic_sign", scale)
                    bottom = min(_u(rng, 2.0, 2.8), hh - sh - 0.05)
                    if bottom > 1.0:
                        _add_object(sc, rng, spec, light, "traffic_sign", xc, d - 0.04, ysw, sw, sh,
                                    template=_pick(rng, ["traffic_sign_r", "traffic_sign_e"]),
                                    y_bottom=ysw - bottom, grounded=False)
                break
    # trees on the sidewalks
    for _ in range(int(_i(rng, 0, 6))):
        w, hh = _size(rng, spec, "vegetation", scale)
        for _ in range(20):
            d = logd(4.0)
            xc = sidewalk_x(0.4, (0.6, 2.0))
            if in_view(xc, d):
                _add_object(sc, rng, spec, light, "vegetation", xc, d, ysw, w, hh)
                break
    # the ego vehicle's hood (unlabelled, no depth), fixed to the camera
    if rng.random() < 0.4:
        hn, wn = spec.native_hw
        fxn, fyn, cxn, cyn = spec.intrinsics
        dh = 1.5
        v_top = _u(rng, 0.86, 0.93) * hn
        ytop_h = (v_top - cyn) * dh / fyn
        half = 1.4 * max(abs(xr[0]), abs(xr[1])) * dh
        depth_rows = 0.6 * hn / fyn * dh
        o = _add_object(sc, rng, spec, light, "hood", 0.0, dh, h, 2 * half, depth_rows, label=IGNORE_INDEX,
                        template="clutter_e", y_bottom=ytop_h + depth_rows, colour=_pick(rng, _COLOURS["car"]),
                        grounded=False, hole=1.0)
        o.name = "ego_hood"
    _finish(sc, rng, n_blobs=(0, 3))
    return sc


_BUILDERS = {"indoor": _build_indoor, "street": _build_street}
