"""The dataset of procedural scenes: ``size`` deterministic renders of one preset and seed."""
from __future__ import annotations

from sosd.data.sample import Sample, SceneDataset
from sosd.data.synthetic.presets import native_intrinsics, preset_spec
from sosd.data.synthetic.render import render_scene


class SyntheticScenes(SceneDataset):
    """``size`` procedural scenes of ``preset`` ("indoor" | "street") for ``seed``, rendered at
    (height, width) (None: native size; one of them None: keep the native aspect ratio), each with a focal
    multiplier drawn from ``focal_scale`` and, if ``size_scale`` is not (1, 1), each object's physical size
    multiplied by a factor drawn from it. ``sample(i)`` is deterministic; see the module docstring."""

    def __init__(self, preset: str = "indoor", size: int = 1000, seed: int = 0, height: int | None = None,
                 width: int | None = None, focal_scale=(1.0, 1.0), transform=None, size_scale=(1.0, 1.0)):
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
        self.size_scale = tuple(float(v) for v in size_scale)
        if not (len(self.size_scale) == 2 and 0 < self.size_scale[0] <= self.size_scale[1]):
            raise ValueError(f"size_scale must be (lo, hi) with 0 < lo <= hi, got {size_scale}")
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
        return render_scene(self.preset, self.seed, i, self.height, self.width, self.focal_scale,
                            size_scale=self.size_scale)

    def __repr__(self) -> str:
        return (f"SyntheticScenes(preset={self.preset!r}, size={self.size}, seed={self.seed}, "
                f"{self.height}x{self.width}, focal_scale={self.focal_scale}"
                + (f", size_scale={self.size_scale})" if self.size_scale != (1.0, 1.0) else ")"))
