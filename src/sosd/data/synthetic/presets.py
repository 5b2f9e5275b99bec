"""Presets of the procedural scenes: classes and their physical size distributions, native image size and
camera, target kind (depth / disparity), simulated sensor range and baseline.

A preset's ``ClassSpec`` widths ``ΔX`` and heights ``ΔY`` are the object sizes of eq. 2-3 (§3.1). Adding a
preset: a ``PresetSpec`` here, a builder in :mod:`sosd.data.synthetic.layout` and its entry in ``_BUILDERS``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sosd.errors import DataError


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
