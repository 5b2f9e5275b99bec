"""Procedural scenes: the default dataset, built so that an object's class and image size carry its depth.

The paper's premise (§3.1, eq. 1-3) is exact here. Every scene is rendered through a pinhole camera
(``fx, fy, cx, cy``, optical axis horizontal, camera ``h`` metres above the ground, no roll/pitch), and every
object is a **planar, fronto-parallel billboard** of physical width ``ΔX`` and height ``ΔY`` standing at
z-depth ``d``, so its image is ``Δu = fx ΔX / d`` by ``Δv = fy ΔY / d`` pixels (eq. 2) and
``d² = fx fy ΔX ΔY / (Δu Δv)`` (eq. 3). Objects are silhouettes made of a few rectangles/ellipses
("parts": a chair's back, seat and legs) inside that ``ΔX × ΔY`` box; their pixel area is
``fx fy · area_m2 / d²`` with ``area_m2 = fill · ΔX ΔY`` (``render_scene(..., return_objects=True)``).

Geometry (camera frame: X right, Y down, Z forward, metres; z-depth = Z):

* **indoor** (NYU-like): a room box, possibly turned (yaw) about the vertical: floor ``Y = h``, ceiling,
  four walls (vertical quads, exact ray-plane depth), windows/doors/pictures on the walls; objects
  (chair, table, sofa, cabinet, lamp, box) and unlabelled clutter standing on the floor inside the room.
  Target: metric depth (m), 0.5-10 m.
* **street** (Cityscapes-like): road plane ``Y = h``, raised sidewalks (with curbs), rows of buildings of
  varying setback/height with windows (facades and their street-facing front faces), sometimes a building
  closing the street, sky at infinity (no depth). Objects: cars and trucks on the road; people, poles
  (some carrying traffic signs) and trees on the sidewalks; sometimes the ego-vehicle's hood (unlabelled).
  Target: **disparity** ``fx * 0.22 / depth`` px (0.22 m baseline as in the brief; the real Cityscapes rig is
  0.209 m); depth beyond 80 m and the sky are invalid (target 0).

Rendering: the background depth is analytic (ray-plane intersections, broadcast over rows/columns), each
wall/building/object part is a rectangle (or ellipse) fill on a z-buffer, so occlusion is exact. Pixel
``(i, j)`` is the ray through ``(u, v) = (j, i)`` (pixel-centre convention of :mod:`sosd.data.transforms`);
a fronto part covering ``[u0, u1) × [v0, v1)`` fills the pixels whose centres lie inside.

Appearance depends on class, instance and light, never on depth: class colour with per-instance
variation, procedural textures in surface coordinates (tiles, planks, windows, doors, grain), Lambertian
shading of each surface normal under a random directional light, soft contact shadows, a global
exposure / white balance / gamma change and sensor noise. No fog, no darkening with distance.

Depth ``valid`` mask holes: sensor range (indoor 0.5-10 m, street up to 80 m), the sky, transparent /
specular / dark parts (windows, car glass, some glossy or black objects), random blobs, and the occlusion
band a stereo pair (street, 0.22 m) or a Kinect projector (indoor, 7.5 cm) cannot see: background pixels left
of a nearer surface whose right-image position is covered by it (band width = disparity difference), and
the 1-px mixed pixels on both sides of every boundary between surfaces whose depths differ by > 10 %.
Invalid pixels have target 0; ``extras["depth_m"]`` is always the dense metric depth (0 only in the sky).

Labels: class ids ``0..K-1`` (stuff classes first, see :data:`PRESETS`), 255 on unlabelled clutter,
pictures and the ego hood (a few per cent of pixels).

Determinism: sample ``i`` of seed ``s`` draws from ``numpy.random.SeedSequence([s, i])`` only (three
spawned streams: scene, camera multiplier, pixel noise), so it is bit-identical in any worker and order.
The 3-D scene depends only on (preset, seed, index, min(focal_scale lo, 1)) -- not on the output size nor
on the drawn focal multiplier (objects are placed in the field of view of the widest focal of the range,
capped at the native one) -- so the same scene can be rendered at other sizes/focals and an object's
image size scales with ``fx``.

Speed: vectorised numpy, no per-pixel Python; shading runs on row blocks that stay in cache. About 10 ms
per 256x512 street scene and 15 ms per 480x640 indoor scene on one core (``benchmarks/data.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sosd.data.sample import IGNORE_INDEX, Sample, SceneDataset
from sosd.errors import DataError

__all__ = ["PRESETS", "ClassSpec", "PresetSpec", "SyntheticScenes", "render_scene", "preset_spec",
           "native_intrinsics"]


# ---------------------------------------------------------------------------------------------- presets

@dataclass(frozen=True)
class ClassSpec:
    """One class. ``kind``: "stuff" (background surface) or "object" (billboard with a size distribution:
    width ``ΔX`` and height ``ΔY`` in metres, each uniform in its (lo, hi) range)."""
    name: str
    kind: str
    width: tuple[float, float] | None = None
    height: tuple[float, float] | None = None


@dataclass(frozen=True)
class PresetSpec:
    name: str
    classes: tuple[ClassSpec, ...]
    native_hw: tuple[int, int]                        # (H, W) of the native image
    intrinsics: tuple[float, float, float, float]     # fx, fy, cx, cy (px) at the native size
    target_kind: str                                  # "depth" | "disparity"
    baseline: float                                   # m: stereo baseline (street) / Kinect projector (indoor)
    min_depth: float                                  # m: valid depth range of the simulated sensor
    max_depth: float
    camera_height: tuple[float, float]                # m above the ground
    edge_jump: float = 0.1                            # relative depth jump between surfaces: 1-px edges invalid

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def cid(self, name: str) -> int:
        """Class id of ``name``."""
        ids = _CID_CACHE.get(self.name)
        if ids is None:
            ids = _CID_CACHE[self.name] = {c.name: k for k, c in enumerate(self.classes)}
        return ids[name]


_CID_CACHE: dict[str, dict[str, int]] = {}


def _cityscapes_512() -> tuple[float, float, float, float]:
    # Cityscapes camera at 2048x1024 scaled to 512x256 (pixel-centre convention, as transforms.py)
    fx, fy, u0, v0, s = 2262.52, 2265.30, 1096.98, 513.137, 0.25
    return (fx * s, fy * s, (u0 + 0.5) * s - 0.5, (v0 + 0.5) * s - 0.5)


PRESETS: dict[str, PresetSpec] = {
    "indoor": PresetSpec(
        name="indoor",
        classes=(
            ClassSpec("floor", "stuff"),
            ClassSpec("wall", "stuff"),
            ClassSpec("ceiling", "stuff"),
            ClassSpec("chair", "object", (0.40, 0.55), (0.80, 1.00)),
            ClassSpec("table", "object", (0.80, 1.60), (0.70, 0.78)),
            ClassSpec("sofa", "object", (1.50, 2.20), (0.75, 0.95)),
            ClassSpec("cabinet", "object", (0.50, 1.20), (1.00, 2.00)),
            ClassSpec("lamp", "object", (0.25, 0.40), (1.40, 1.80)),
            ClassSpec("box", "object", (0.20, 0.50), (0.15, 0.40)),
        ),
        native_hw=(480, 640),
        intrinsics=(518.8579, 519.4696, 325.5824, 253.7362),   # NYU Depth v2 colour camera
        target_kind="depth", baseline=0.075, min_depth=0.5, max_depth=10.0, camera_height=(1.0, 1.6),
    ),
    "street": PresetSpec(
        name="street",
        classes=(
            ClassSpec("road", "stuff"),
            ClassSpec("sidewalk", "stuff"),
            ClassSpec("building", "stuff"),
            ClassSpec("sky", "stuff"),
            ClassSpec("vegetation", "object", (2.0, 5.0), (4.0, 9.0)),
            ClassSpec("pole", "object", (0.10, 0.25), (3.0, 8.0)),
            ClassSpec("traffic_sign", "object", (0.60, 0.90), (0.60, 0.90)),
            ClassSpec("person", "object", (0.45, 0.65), (1.55, 1.95)),
            ClassSpec("car", "object", (1.65, 1.95), (1.40, 1.65)),
            ClassSpec("truck", "object", (2.30, 2.55), (2.80, 3.80)),
        ),
        native_hw=(256, 512),
        intrinsics=_cityscapes_512(),
        target_kind="disparity", baseline=0.22, min_depth=2.0, max_depth=80.0, camera_height=(1.1, 1.5),
    ),
}


def preset_spec(preset: str) -> PresetSpec:
    if preset not in PRESETS:
        raise DataError(f"unknown synthetic preset '{preset}'; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def native_intrinsics(preset: str, height: int | None = None, width: int | None = None,
                      focal: float = 1.0) -> np.ndarray:
    """float32 [fx, fy, cx, cy] of ``preset`` at (height, width) (default native) with focal multiplier
    ``focal``: ``fx' = fx·sx·focal``, ``cx' = (cx + 0.5)·sx - 0.5`` (pixel-centre convention)."""
    spec = preset_spec(preset)
    hn, wn = spec.native_hw
    height, width = int(height or hn), int(width or wn)
    fx, fy, cx, cy = spec.intrinsics
    sx, sy = width / wn, height / hn
    return np.array([fx * sx * focal, fy * sy * focal, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5],
                    dtype=np.float32)


# --------------------------------------------------------------------------------------------- materials

# object templates: parts (s0, s1, t0, t1, shape "r"|"e", colour role, normal "front"|"top", pattern)
# in object-local coordinates s (left->right) and t (top->bottom) in [0, 1]; every template touches all
# four sides of the unit square, so the object's image extent is exactly its ΔX × ΔY box.
_TEMPLATES = {
    "chair": [(0.08, 0.92, 0.00, 0.50, "r", "main", "front", None),
              (0.00, 1.00, 0.50, 0.60, "r", "main2", "top", None),
              (0.03, 0.13, 0.60, 1.00, "r", "leg", "front", None),
              (0.87, 0.97, 0.60, 1.00, "r", "leg", "front", None)],
    "table": [(0.00, 1.00, 0.00, 0.07, "r", "main", "top", None),
              (0.04, 0.96, 0.07, 0.17, "r", "main2", "front", None),
              (0.04, 0.11, 0.17, 1.00, "r", "main2", "front", None),
              (0.89, 0.96, 0.17, 1.00, "r", "main2", "front", None)],
    "sofa": [(0.10, 0.90, 0.00, 0.55, "r", "main", "front", None),
             (0.00, 0.13, 0.22, 0.88, "r", "main2", "front", None),
             (0.87, 1.00, 0.22, 0.88, "r", "main2", "front", None),
             (0.13, 0.87, 0.55, 0.88, "r", "main", "top", "cushions"),
             (0.03, 0.09, 0.88, 1.00, "r", "leg", "front", None),
             (0.91, 0.97, 0.88, 1.00, "r", "leg", "front", None)],
    "cabinet": [(0.00, 1.00, 0.00, 0.96, "r", "main", "front", "doors"),
                (0.02, 0.98, 0.96, 1.00, "r", "leg", "front", None)],
    "lamp": [(0.00, 1.00, 0.00, 0.20, "r", "shade", "front", None),
             (0.44, 0.56, 0.20, 0.97, "r", "metal", "front", None),
             (0.20, 0.80, 0.97, 1.00, "r", "metal", "front", None)],
    "box": [(0.00, 1.00, 0.00, 1.00, "r", "main", "front", "tape")],
    "clutter_r": [(0.00, 1.00, 0.00, 1.00, "r", "main", "front", None)],
    "clutter_e": [(0.00, 1.00, 0.00, 1.00, "e", "main", "front", None)],
    "vegetation": [(0.00, 1.00, 0.00, 0.72, "e", "main", "front", "leaves"),
                   (0.43, 0.57, 0.62, 1.00, "r", "trunk", "front", None)],
    "pole": [(0.00, 1.00, 0.00, 1.00, "r", "main", "front", None)],
    "traffic_sign_r": [(0.00, 1.00, 0.00, 1.00, "r", "white", "front", None),
                       (0.10, 0.90, 0.10, 0.90, "r", "main", "front", None)],
    "traffic_sign_e": [(0.00, 1.00, 0.00, 1.00, "e", "white", "front", None),
                       (0.12, 0.88, 0.12, 0.88, "e", "main", "front", None)],
    "person": [(0.35, 0.65, 0.00, 0.14, "e", "skin", "front", None),
               (0.12, 0.88, 0.13, 0.56, "r", "main", "front", None),
               (0.00, 0.12, 0.16, 0.52, "r", "main2", "front", None),
               (0.88, 1.00, 0.16, 0.52, "r", "main2", "front", None),
               (0.17, 0.48, 0.56, 1.00, "r", "pants", "front", None),
               (0.52, 0.83, 0.56, 1.00, "r", "pants", "front", None)],
    "car": [(0.00, 1.00, 0.40, 0.88, "r", "main", "front", None),
            (0.10, 0.90, 0.00, 0.42, "r", "main", "top", None),
            (0.16, 0.84, 0.05, 0.38, "r", "glass", "front", None),
            (0.04, 0.18, 0.47, 0.57, "r", "redlight", "front", None),
            (0.82, 0.96, 0.47, 0.57, "r", "redlight", "front", None),
            (0.40, 0.60, 0.62, 0.71, "r", "white", "front", None),
            (0.00, 1.00, 0.76, 0.88, "r", "leg", "front", None),
            (0.06, 0.24, 0.86, 1.00, "r", "tyre", "front", None),
            (0.76, 0.94, 0.86, 1.00, "r", "tyre", "front", None)],
    "truck": [(0.00, 1.00, 0.00, 0.80, "r", "main", "front", "truckdoors"),
              (0.04, 0.96, 0.80, 0.88, "r", "leg", "front", None),
              (0.02, 0.10, 0.70, 0.76, "r", "redlight", "front", None),
              (0.90, 0.98, 0.70, 0.76, "r", "redlight", "front", None),
              (0.05, 0.25, 0.86, 1.00, "r", "tyre", "front", None),
              (0.75, 0.95, 0.86, 1.00, "r", "tyre", "front", None)],
}

# base colours (RGB 0..1) an instance picks from, before per-instance jitter
_COLOURS = {
    "floor": [(0.52, 0.37, 0.23), (0.74, 0.72, 0.68), (0.45, 0.42, 0.40), (0.60, 0.50, 0.38),
              (0.33, 0.29, 0.27)],
    "wall": [(0.86, 0.84, 0.79), (0.80, 0.77, 0.68), (0.70, 0.76, 0.79), (0.89, 0.87, 0.86),
             (0.76, 0.68, 0.60), (0.72, 0.78, 0.70)],
    "ceiling": [(0.93, 0.93, 0.91), (0.88, 0.87, 0.84)],
    "chair": [(0.45, 0.30, 0.18), (0.15, 0.15, 0.17), (0.62, 0.16, 0.12), (0.25, 0.35, 0.56),
              (0.80, 0.78, 0.72), (0.30, 0.45, 0.30)],
    "table": [(0.55, 0.38, 0.22), (0.86, 0.85, 0.82), (0.30, 0.22, 0.15), (0.22, 0.22, 0.22)],
    "sofa": [(0.35, 0.40, 0.52), (0.56, 0.50, 0.45), (0.20, 0.20, 0.22), (0.56, 0.25, 0.20),
             (0.40, 0.50, 0.35)],
    "cabinet": [(0.90, 0.88, 0.85), (0.50, 0.35, 0.22), (0.36, 0.36, 0.40), (0.66, 0.55, 0.40)],
    "lamp": [(0.75, 0.75, 0.72), (0.25, 0.25, 0.25), (0.70, 0.60, 0.40)],
    "box": [(0.70, 0.55, 0.35), (0.86, 0.82, 0.75), (0.40, 0.45, 0.62), (0.65, 0.62, 0.40)],
    "road": [(0.30, 0.30, 0.32), (0.36, 0.35, 0.35), (0.26, 0.27, 0.29)],
    "sidewalk": [(0.58, 0.56, 0.54), (0.62, 0.55, 0.50), (0.50, 0.50, 0.52)],
    "building": [(0.74, 0.68, 0.60), (0.60, 0.56, 0.52), (0.56, 0.34, 0.27), (0.82, 0.82, 0.80),
                 (0.46, 0.48, 0.52), (0.78, 0.72, 0.52)],
    "vegetation": [(0.20, 0.38, 0.14), (0.28, 0.45, 0.17), (0.36, 0.44, 0.20), (0.16, 0.30, 0.14)],
    "pole": [(0.46, 0.46, 0.46), (0.30, 0.33, 0.30), (0.62, 0.62, 0.60)],
    "traffic_sign": [(0.80, 0.10, 0.10), (0.10, 0.26, 0.66), (0.95, 0.80, 0.10), (0.12, 0.50, 0.25)],
    "person": [(0.70, 0.15, 0.15), (0.15, 0.25, 0.55), (0.85, 0.85, 0.82), (0.20, 0.20, 0.22),
               (0.35, 0.50, 0.30), (0.85, 0.65, 0.20)],
    "car": [(0.86, 0.86, 0.86), (0.10, 0.10, 0.12), (0.50, 0.50, 0.53), (0.62, 0.10, 0.10),
            (0.15, 0.25, 0.52), (0.70, 0.72, 0.76)],
    "truck": [(0.90, 0.90, 0.88), (0.76, 0.20, 0.15), (0.25, 0.40, 0.30), (0.86, 0.65, 0.15)],
    "clutter": [(0.60, 0.20, 0.50), (0.20, 0.55, 0.60), (0.85, 0.75, 0.30), (0.90, 0.90, 0.90),
                (0.30, 0.30, 0.30)],
}
_ROLE_COLOURS = {
    "leg": [(0.12, 0.11, 0.10), (0.30, 0.22, 0.15), (0.55, 0.55, 0.55)],
    "metal": [(0.62, 0.62, 0.60), (0.25, 0.25, 0.25), (0.72, 0.62, 0.40)],
    "shade": [(0.95, 0.90, 0.75), (0.90, 0.90, 0.88), (0.80, 0.55, 0.35)],
    "glass": [(0.16, 0.20, 0.26)],
    "redlight": [(0.82, 0.12, 0.10)],
    "white": [(0.93, 0.93, 0.92)],
    "tyre": [(0.07, 0.07, 0.08)],
    "skin": [(0.88, 0.70, 0.58), (0.62, 0.44, 0.32), (0.40, 0.27, 0.20)],
    "pants": [(0.15, 0.18, 0.30), (0.20, 0.20, 0.20), (0.45, 0.40, 0.32), (0.30, 0.30, 0.35)],
    "trunk": [(0.33, 0.24, 0.17)],
}
# pattern presets for object parts: (period_s, period_t, margin_s, margin_t, cell_var, line colour factor)
_PATTERNS = {
    "doors": None,       # set per object (number of doors)
    "cushions": (0.5, 1.0, 0.012, 0.0, 0.10, 0.6),
    "tape": (1.0, 1.0, 0.42, 0.0, 0.0, None),
    "leaves": None,
    "truckdoors": (0.5, 1.0, 0.006, 0.0, 0.0, 0.55),
}
# probability that a whole object has no depth returns (dark / glossy / transparent surfaces)
_P_HOLE = {"cabinet": 0.05, "lamp": 0.25, "sofa": 0.06, "chair": 0.04, "car": 0.03, "truck": 0.02}


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


def _size(rng, spec, name):
    c = spec.classes[spec.cid(name)]
    return _u(rng, *c.width), _u(rng, *c.height)


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


# ------------------------------------------------------------------------------------------------ indoor

def _build_indoor(rng, spec: PresetSpec, xr) -> _Scene:
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
            w, hh = _size(rng, spec, name)
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

def _build_street(rng, spec: PresetSpec, xr) -> _Scene:
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
            w, hh = _size(rng, spec, name)
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
        w, hh = _size(rng, spec, "person")
        for _ in range(20):
            d = logd(3.0)
            on_road = rng.random() < 0.12
            xc = _u(rng, -wl + 0.5, wr - 0.5) if on_road else sidewalk_x(w)
            if in_view(xc, d) and (not on_road or free(xc, d, w)):
                _add_object(sc, rng, spec, light, "person", xc, d, h if on_road else ysw, w, hh)
                break
    # poles near the curb, some carrying a traffic sign
    for _ in range(int(_i(rng, 1, 8))):
        w, hh = _size(rng, spec, "pole")
        for _ in range(20):
            d = logd(3.0)
            xc = sidewalk_x(w, (0.2, 0.8))
            if in_view(xc, d):
                _add_object(sc, rng, spec, light, "pole", xc, d, ysw, w, hh)
                if rng.random() < 0.45:
                    sw, sh = _size(rng, spec, "traffic_sign")
                    bottom = min(_u(rng, 2.0, 2.8), hh - sh - 0.05)
                    if bottom > 1.0:
                        _add_object(sc, rng, spec, light, "traffic_sign", xc, d - 0.04, ysw, sw, sh,
                                    template=_pick(rng, ["traffic_sign_r", "traffic_sign_e"]),
                                    y_bottom=ysw - bottom, grounded=False)
                break
    # trees on the sidewalks
    for _ in range(int(_i(rng, 0, 6))):
        w, hh = _size(rng, spec, "vegetation")
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


_BUILDERS = {"indoor": _build_indoor, "street": _build_street}


# --------------------------------------------------------------------------------------------- rendering

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


def render_scene(preset: str, seed: int, index: int, height: int | None = None, width: int | None = None,
                 focal_scale=(1.0, 1.0), return_objects: bool = False):
    """Render scene ``index`` of ``seed`` at (height, width) (default: the preset's native size).

    Returns a :class:`Sample`; with ``return_objects=True`` returns ``(sample, objects)``, one dict per
    object: ``class_id, class_name, width_m (ΔX), height_m (ΔY), depth_m (d), fill, area_m2 (= fill ΔX ΔY,
    its silhouette), du_px, dv_px`` (eq. 2), ``box_px`` (analytic u0,u1,v0,v1), ``visible_box_px``,
    ``visible_px`` (pixels where it is the front surface), ``unoccluded_px`` (its pixels in the image if
    nothing hid it), ``inside`` (box fully inside the image), ``unoccluded``, ``raster_bound_px`` (bound on
    the rasterisation error of its pixel count). For an object with ``inside and unoccluded``:
    ``|visible_px - fx fy area_m2 / d²| <= raster_bound_px`` (eq. 3). With ``return_objects`` the sample
    also carries ``extras["instances"]``: int32 (H, W) object index of each pixel (-1 = background)."""
    spec = preset_spec(preset)
    hn, wn = spec.native_hw
    height, width = int(height or hn), int(width or wn)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    lo, hi = (float(v) for v in focal_scale)
    if not (0 < lo <= hi):
        raise ValueError(f"focal_scale must be 0 < lo <= hi, got {focal_scale}")
    ss = np.random.SeedSequence([int(seed), int(index)])
    rng_scene, rng_cam, rng_px = (np.random.default_rng(s) for s in ss.spawn(3))
    m = float(rng_cam.uniform(lo, hi)) if hi > lo else lo
    fx, fy, cx, cy = (float(v) for v in native_intrinsics(preset, height, width, m))
    cam = _Camera(fx, fy, cx, cy, height, width)
    # placement frustum: the native camera, widened to the widest field of view of the range
    fxn, _, cxn, _ = spec.intrinsics
    mref = min(lo, 1.0)
    xr = (-(cxn + 0.5) / (fxn * mref), (wn - cxn - 0.5) / (fxn * mref))
    sc = _BUILDERS[preset](rng_scene, spec, xr)

    z, pid = (_ground_indoor if preset == "indoor" else _ground_street)(sc, cam)
    for i in sc.vquads:
        _paint_vquad(z, pid, cam, sc.parts[i].geom, i)
    for o in sorted(sc.objects, key=lambda o: -o.d):
        for i in o.parts:
            _paint_rect(z, pid, cam, sc.parts[i].geom, i)

    tabs = _tables(sc)
    label_tab, invalid_tab = tabs[2], tabs[3]
    image = _shade_image(sc, cam, z, pid, tabs, rng_px)
    labels = np.take(label_tab, pid)
    valid, disp = _valid_mask(sc, cam, spec, z, pid, invalid_tab, fx)
    depth_m = z if spec.target_kind == "depth" else np.where(np.isfinite(z), z, np.float32(0))
    target = (disp if spec.target_kind == "disparity" else depth_m) * valid   # 0 where invalid
    extras = {"depth_m": depth_m}
    if spec.target_kind == "disparity":
        extras["baseline"] = spec.baseline
    sample = Sample(image=image, target=target, valid=valid, labels=labels,
                    intrinsics=np.array([fx, fy, cx, cy], np.float32), id=f"{preset}-{seed}-{index:06d}",
                    index=int(index), target_kind=spec.target_kind, extras=extras)
    if return_objects:
        owner = np.array([p.obj for p in sc.parts], np.int32)
        sample.extras["instances"] = np.take(owner, pid)   # object index per pixel, -1 = background
        return sample, _object_records(sc, cam, spec, pid)
    return sample


# ------------------------------------------------------------------------------------------------ dataset

class SyntheticScenes(SceneDataset):
    """``size`` procedural scenes of ``preset`` ("indoor" | "street") for ``seed``, rendered at
    (height, width) (None: native size; one of them None: keep the native aspect ratio), each with a focal
    multiplier drawn from ``focal_scale``. ``sample(i)`` is deterministic; see the module docstring."""

    def __init__(self, preset: str = "indoor", size: int = 1000, seed: int = 0, height: int | None = None,
                 width: int | None = None, focal_scale=(1.0, 1.0), transform=None):
        super().__init__(transform)
        spec = preset_spec(preset)
        hn, wn = spec.native_hw
        if height and not width:
            width = max(1, round(int(height) * wn / hn))
        if width and not height:
            height = max(1, round(int(width) * hn / wn))
        self.preset, self.spec = preset, spec
        self.size, self.seed = int(size), int(seed)
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self.height, self.width = int(height or hn), int(width or wn)
        lo, hi = (float(v) for v in focal_scale)
        if not (0 < lo <= hi):
            raise ValueError(f"focal_scale must be 0 < lo <= hi, got {focal_scale}")
        self.focal_scale = (lo, hi)
        self.num_classes = spec.num_classes
        self.class_names = spec.class_names
        self.target_kind = spec.target_kind
        self.intrinsics = native_intrinsics(preset, self.height, self.width)  # at focal multiplier 1

    def __len__(self) -> int:
        return self.size

    def sample(self, i: int) -> Sample:
        i = int(i)
        if not 0 <= i < self.size:
            raise IndexError(f"scene {i} out of range 0..{self.size - 1}")
        return render_scene(self.preset, self.seed, i, self.height, self.width, self.focal_scale)

    def __repr__(self) -> str:
        return (f"SyntheticScenes(preset={self.preset!r}, size={self.size}, seed={self.seed}, "
                f"{self.height}x{self.width}, focal_scale={self.focal_scale})")
