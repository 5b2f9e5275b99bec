"""The scene description the layouts build and the renderer reads: parts (painted primitives with their
material and surface frame), objects (fronto-parallel billboards of ``ΔX × ΔY`` m at depth ``d``, §3.1
eq. 2), the directional light, and the random draws every layout uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sosd.data.synthetic.materials import _COLOURS, _P_HOLE, _PATTERNS, _ROLE_COLOURS, _TEMPLATES
from sosd.data.synthetic.presets import PresetSpec


def _jitter(rng, rgb, amount=0.12, bright=(0.85, 1.15)):
    """Per-instance colour: each channel x U(1 ± amount), all x U(bright), clipped to [0.02, 1]."""
    u0, u1, u2, u3 = rng.random(4).tolist()
    k = bright[0] + (bright[1] - bright[0]) * u3
    a2 = 2 * amount
    return np.array([min(1.0, max(0.02, rgb[0] * (1 - amount + a2 * u0) * k)),
                     min(1.0, max(0.02, rgb[1] * (1 - amount + a2 * u1) * k)),
                     min(1.0, max(0.02, rgb[2] * (1 - amount + a2 * u2) * k))])


def _pick(rng, options):
    return options[int(rng.random() * len(options))]


def _u(rng, lo, hi, size=None):
    """U(lo, hi) (scalar draws through rng.random(): several times faster than rng.uniform)."""
    if size is not None:
        return lo + (hi - lo) * rng.random(size)
    return lo + (hi - lo) * rng.random()


def _i(rng, lo, hi=None):
    """Integer in [lo, hi) (or [0, lo))."""
    if hi is None:
        lo, hi = 0, lo
    return lo + int(rng.random() * (hi - lo))


class _Part:
    """One painted primitive: geometry + label + material (+ its surface frame for textures)."""
    __slots__ = ("kind", "geom", "label", "obj", "col_in", "col_line", "grid", "cell_var", "grain", "grain_size",
                 "frame", "shade", "invalid")

    def __init__(self, kind, geom, label, col, shade, frame, obj=-1, col_line=None, grid=(0.0, 0.0, 0.0, 0.0),
                 cell_var=0.0, grain=0.08, grain_size=0.05, invalid=False):
        # kind: "ground" | "sky" | "vquad" (geom X1,Z1,X2,Z2,Ytop,Ybot) | "rect" (geom x0,x1,y0,y1,d,ellipse)
        self.kind = kind
        self.geom = geom
        self.label = label
        self.obj = obj
        self.col_in = col
        self.col_line = col if col_line is None else col_line
        self.grid = grid              # inverse periods (1/ps, 1/pt) and margins (ms, mt) of the cell pattern
        self.cell_var = cell_var
        self.grain = grain
        self.grain_size = grain_size
        self.frame = frame            # (a (3,), ao, b (3,), bo): s = a·P - ao, t = b·P - bo
        self.shade = shade
        self.invalid = invalid


@dataclass
class _Object:
    cls: int
    name: str
    x0: float
    x1: float
    ytop: float
    ybot: float
    d: float
    parts: list            # indices into scene.parts
    template: list         # template rows (for the fill fraction)
    grounded: bool = True  # stands on the ground (casts a contact shadow)


class _Scene:
    def __init__(self):
        self.parts: list[_Part] = []
        self.objects: list[_Object] = []
        self.vquads: list[int] = []
        self.blobs: list[tuple] = []   # (uc, vc, ru, rv) in native-normalised image coordinates

    def add(self, part: "_Part") -> int:
        self.parts.append(part)
        return len(self.parts) - 1


def _unit(v):
    x, y, z = (float(c) for c in v)
    n = math.sqrt(x * x + y * y + z * z)
    return (x / n, y / n, z / n)


class _Light:
    def __init__(self, rng, up_range, ambient):
        az = _u(rng, -math.pi, math.pi)
        el = _u(rng, *up_range)
        # direction towards the light (Y is down, so "up" is -Y)
        self.l = (math.cos(el) * math.sin(az), -math.sin(el), math.cos(el) * math.cos(az))
        self.ambient = _u(rng, *ambient)
        self.strength = _u(rng, 0.8, 1.1)

    def shade(self, n) -> float:
        x, y, z = _unit(n)
        lam = max(0.0, x * self.l[0] + y * self.l[1] + z * self.l[2])
        return float(self.ambient + (1.0 - self.ambient) * self.strength * lam)


_FRONT = (0.0, 0.0, -1.0)
_TOP = (0.0, -0.85, -0.5)


def _add_object(scene: _Scene, rng, spec: PresetSpec, light: _Light, name: str, x_center: float, d: float,
                y_ground: float, width: float, height: float, label: int | None = None,
                template: str | None = None, y_bottom: float | None = None, colour=None,
                grounded: bool = True, hole: float | None = None) -> _Object:
    """A billboard of ``width × height`` m, centred at X = x_center, bottom at ``y_bottom`` (default: on the
    ground ``y_ground``), at z-depth ``d``; its parts become scene parts."""
    cls = spec.cid(name) if label is None else label
    key = template or name
    tmpl = _TEMPLATES[key]
    ybot = y_ground if y_bottom is None else y_bottom
    x0, x1, ytop = x_center - width / 2, x_center + width / 2, ybot - height
    base_name = "clutter" if key.startswith("clutter") else name
    main = _jitter(rng, colour if colour is not None else _pick(rng, _COLOURS[base_name]))
    role_col = {"main": main, "main2": np.clip(main * _u(rng, 0.7, 0.9), 0, 1)}
    for row in tmpl:
        if row[5] not in role_col:
            role_col[row[5]] = _jitter(rng, _pick(rng, _ROLE_COLOURS[row[5]]), 0.06, (0.9, 1.1))
    tx, ty = _u(rng, -0.25, 0.25), _u(rng, -0.15, 0.1)   # per-object tilt of the shading normals
    shades = {k: light.shade((v[0] + tx, v[1] + ty, v[2])) for k, v in (("front", _FRONT), ("top", _TOP))}
    p_hole = _P_HOLE.get(name, 0.0) if hole is None else hole
    whole_hole = bool(rng.random() < p_hole)
    glass_hole = bool(rng.random() < 0.5)
    obj = _Object(cls, base_name if label is not None else name, x0, x1, ytop, ybot, d, [], tmpl, grounded)
    frame = ((1.0 / width, 0.0, 0.0), x0 / width, (0.0, 1.0 / height, 0.0), ytop / height)
    for (s0, s1, t0, t1, shape, role, normal, pattern) in tmpl:
        col = role_col[role]
        grid, cell_var, col_line, grain, gsize = (0.0, 0.0, 0.0, 0.0), 0.0, None, 0.06, 0.02
        if pattern == "doors":
            nd = int(_i(rng, 1, 4))
            grid, col_line = (float(nd), 1.0, 0.01 * nd, 0.0), col * 0.45
        elif pattern == "leaves":
            grain, gsize = 0.5, 0.025
        elif pattern is not None:
            ps, pt, ms, mt, cv, lf = _PATTERNS[pattern]
            grid, cell_var = (1.0 / ps, 1.0 / pt, ms, mt), cv
            if pattern == "tape":   # a lighter tape stripe down the middle of the box
                col, col_line = np.clip(col * 1.25 + 0.05, 0, 1), col
            else:
                col_line = col * lf
        geom = (x0 + s0 * width, x0 + s1 * width, ytop + t0 * height, ytop + t1 * height, d, shape == "e")
        invalid = whole_hole or (role == "glass" and glass_hole)
        p = _Part("rect", geom, cls, col, shades[normal], frame, obj=len(scene.objects), col_line=col_line,
                  grid=grid, cell_var=cell_var, grain=grain, grain_size=gsize, invalid=invalid)
        obj.parts.append(scene.add(p))
    scene.objects.append(obj)
    return obj


def _size(rng, spec, name, scale=None):
    """ΔX, ΔY of a new ``name`` from its class's size range; ``scale`` (a ``SizeScale``) multiplies both by a
    factor drawn independently of the class: the counterfactual where size no longer follows class."""
    c = spec.classes[spec.cid(name)]
    w, h = _u(rng, *c.width), _u(rng, *c.height)
    if scale is not None:
        f = scale()
        w, h = w * f, h * f
    return w, h


class SizeScale:
    """Log-uniform factors in [lo, hi] from their own random stream, so that the other draws of a scene (and
    so every scene of the standard presets) are unchanged when the option is off."""

    def __init__(self, rng, lo: float, hi: float):
        self.rng, self.lo, self.hi = rng, math.log(lo), math.log(hi)

    def __call__(self) -> float:
        return math.exp(self.rng.uniform(self.lo, self.hi))


def _wall_quad(scene, light, P1, P2, ytop, ybot, label, col, normal, **mat) -> int:
    """A vertical quad from P1=(X,Z) to P2 between heights ytop..ybot (Y down), textured in wall
    coordinates (s along the wall from P1, t up from ybot)."""
    a = np.array([P2[0] - P1[0], 0.0, P2[1] - P1[1]])
    a /= np.linalg.norm(a)
    b = np.array([0.0, -1.0, 0.0])
    frame = (a, float(a[0] * P1[0] + a[2] * P1[1]), b, -ybot)
    p = _Part("vquad", (P1[0], P1[1], P2[0], P2[1], ytop, ybot), label, col, light.shade(normal), frame, **mat)
    i = scene.add(p)
    scene.vquads.append(i)
    return i


def _finish(sc: _Scene, rng, n_blobs):
    """Scene-wide appearance and sensor draws (all independent of depth)."""
    sc.exposure = _u(rng, 0.7, 1.3)
    sc.white = _u(rng, 0.92, 1.08, 3)
    sc.gamma = _u(rng, 0.85, 1.15)
    sc.noise = _u(rng, 0.005, 0.025)
    sc.shadow = _u(rng, 0.25, 0.5)
    for _ in range(int(_i(rng, *n_blobs))):
        r = _u(rng, 0.02, 0.07)
        sc.blobs.append((_u(rng, 0, 1), _u(rng, 0, 1), r, r * _u(rng, 0.6, 1.6)))
