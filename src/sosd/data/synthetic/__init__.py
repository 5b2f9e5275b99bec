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

Modules, one per stage: :mod:`.presets` (classes, size distributions, cameras), :mod:`.materials`
(object templates, colours, patterns), :mod:`.scene` (parts, objects, light, random draws),
:mod:`.layout` (indoor rooms, streets), :mod:`.camera` (rays, background depth), :mod:`.raster` (z-buffer
painting), :mod:`.shading` (textures, light, sensor), :mod:`.holes` (depth-validity holes),
:mod:`.records` (per-object ground truth), :mod:`.render` (:func:`render_scene`) and :mod:`.dataset`
(:class:`SyntheticScenes`).
"""
from sosd.data.synthetic.dataset import SyntheticScenes
from sosd.data.synthetic.presets import PRESETS, ClassSpec, PresetSpec, native_intrinsics, preset_spec
from sosd.data.synthetic.render import render_scene

__all__ = ["PRESETS", "ClassSpec", "PresetSpec", "SyntheticScenes", "render_scene", "preset_spec",
           "native_intrinsics"]
