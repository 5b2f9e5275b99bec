"""Rendering of one scene, stage by stage: layout (:mod:`.layout`), background geometry (:mod:`.camera`),
z-buffer painting (:mod:`.raster`), shading (:mod:`.shading`), labels, depth-validity holes
(:mod:`.holes`) and, on request, object records (:mod:`.records`).
"""
from __future__ import annotations

import numpy as np

from sosd.data.sample import Sample
from sosd.data.synthetic.camera import _Camera, _ground_indoor, _ground_street
from sosd.data.synthetic.holes import _valid_mask
from sosd.data.synthetic.layout import _BUILDERS
from sosd.data.synthetic.presets import native_intrinsics, preset_spec
from sosd.data.synthetic.raster import _paint_rect, _paint_vquad
from sosd.data.synthetic.records import _object_records
from sosd.data.synthetic.scene import SizeScale
from sosd.data.synthetic.shading import _shade_image, _tables


def render_scene(preset: str, seed: int, index: int, height: int | None = None, width: int | None = None,
                 focal_scale=(1.0, 1.0), return_objects: bool = False, size_scale=(1.0, 1.0)):
    """Render scene ``index`` of ``seed`` at (height, width) (default: the preset's native size).

    Returns a :class:`Sample`; with ``return_objects=True`` returns ``(sample, objects)``, one dict per
    object: ``class_id, class_name, width_m (ΔX), height_m (ΔY), depth_m (d), fill, area_m2 (= fill ΔX ΔY,
    its silhouette), du_px, dv_px`` (eq. 2), ``box_px`` (analytic u0,u1,v0,v1), ``visible_box_px``,
    ``visible_px`` (pixels where it is the front surface), ``unoccluded_px`` (its pixels in the image if
    nothing hid it), ``inside`` (box fully inside the image), ``unoccluded``, ``raster_bound_px`` (bound on
    the rasterisation error of its pixel count). For an object with ``inside and unoccluded``:
    ``|visible_px - fx fy area_m2 / d²| <= raster_bound_px`` (eq. 3). With ``return_objects`` the sample
    also carries ``extras["instances"]``: int32 (H, W) object index of each pixel (-1 = background).
    ``size_scale`` (lo, hi): multiply every object's ΔX, ΔY by a log-uniform factor from this range, drawn
    independently of its class (eq. 3 stays exact: the records hold the scaled sizes)."""
    spec = preset_spec(preset)
    hn, wn = spec.native_hw
    height, width = int(height or hn), int(width or wn)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    lo, hi = (float(v) for v in focal_scale)
    if not (0 < lo <= hi):
        raise ValueError(f"focal_scale must be 0 < lo <= hi, got {focal_scale}")
    ss = np.random.SeedSequence([int(seed), int(index)])
    # a 4th child stream for size factors: spawn(4)[:3] == spawn(3), the other draws do not move
    rng_scene, rng_cam, rng_px, rng_size = (np.random.default_rng(s) for s in ss.spawn(4))
    s_lo, s_hi = (float(v) for v in size_scale)
    if not (0 < s_lo <= s_hi):
        raise ValueError(f"size_scale must be 0 < lo <= hi, got {size_scale}")
    scale = SizeScale(rng_size, s_lo, s_hi) if (s_lo, s_hi) != (1.0, 1.0) else None
    m = float(rng_cam.uniform(lo, hi)) if hi > lo else lo
    fx, fy, cx, cy = (float(v) for v in native_intrinsics(preset, height, width, m))
    cam = _Camera(fx, fy, cx, cy, height, width)
    # placement frustum: the native camera, widened to the widest field of view of the range
    fxn, _, cxn, _ = spec.intrinsics
    mref = min(lo, 1.0)
    xr = (-(cxn + 0.5) / (fxn * mref), (wn - cxn - 0.5) / (fxn * mref))
    sc = _BUILDERS[preset](rng_scene, spec, xr, scale)

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
