"""Materials of the procedural scenes: object templates (silhouettes as parts), colour palettes, surface
patterns and the chance that an object returns no depth.

Appearance depends on class, instance and light, never on depth (see :mod:`sosd.data.synthetic`).
"""
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
