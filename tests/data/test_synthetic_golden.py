"""Golden scenes: the procedural generator (sosd.data.synthetic) renders bit for bit what it rendered when
``tests/data/golden/synthetic_scenes.npz`` was written.

Run:  OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/data/test_synthetic_golden.py   (about 2 s)

The fixture was written once, from the single-file generator before it became a package (issue 18), by
``PYTHONPATH=src python tests/data/test_synthetic_golden.py --write``. It holds every output of a few
tiny scenes (image, target, valid mask, labels, intrinsics, id/index/target kind, dense depth, the stereo
baseline, the per-pixel instance map and the per-object records of eq. 2-3) for both presets, several
seeds/indices, an odd size and a focal-multiplier range, plus SHA-256 digests of the same outputs for
scenes at the native sizes (too large to store). Rewrite it only when a change of the rendered scenes is
intended, and say so in the commit.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sosd.data.synthetic import SyntheticScenes, render_scene

GOLDEN = Path(__file__).parent / "golden" / "synthetic_scenes.npz"

# (preset, seed, index, height, width, focal_scale): stored array by array
TINY = [
    ("indoor", 0, 0, 48, 64, (1.0, 1.0)),
    ("indoor", 1, 3, 48, 64, (1.0, 1.0)),
    ("indoor", 7, 11, 48, 64, (0.8, 1.25)),
    ("indoor", 3, 2, 37, 91, (1.0, 1.0)),
    ("street", 0, 0, 32, 64, (1.0, 1.0)),
    ("street", 2, 5, 32, 64, (1.0, 1.0)),
    ("street", 9, 1, 32, 64, (0.7, 1.1)),
    ("street", 4, 8, 37, 91, (1.0, 1.0)),
]
# rendered at the native size (None, None) or a mid size: only their digests are stored
LARGE = [
    ("indoor", 0, 1, None, None, (1.0, 1.0)),
    ("indoor", 5, 4, None, None, (0.75, 1.25)),
    ("street", 0, 2, None, None, (1.0, 1.0)),
    ("street", 6, 7, 128, 256, (0.8, 1.2)),
]
FIELDS = ["image", "target", "valid", "labels", "intrinsics", "depth_m", "instances"]


def _render(preset, seed, index, h, w, focal):
    sample, objects = render_scene(preset, seed, index, h, w, focal_scale=focal, return_objects=True)
    out = {"image": sample.image, "target": sample.target, "valid": sample.valid, "labels": sample.labels,
           "intrinsics": sample.intrinsics, "depth_m": sample.extras["depth_m"],
           "instances": sample.extras["instances"]}
    meta = {"id": sample.id, "index": sample.index, "target_kind": sample.target_kind,
            "baseline": sample.extras.get("baseline"), "extras": sorted(sample.extras),
            "objects": objects}
    # a JSON round trip turns tuples into lists; floats are written with repr, so they come back exact
    return out, json.loads(json.dumps(meta))


def _digest(arrays: dict, meta: dict) -> str:
    h = hashlib.sha256()
    for k in FIELDS:
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()


def _dataset_digest() -> str:
    """SyntheticScenes (native aspect from a height only, focal range) through the dataset class."""
    ds = SyntheticScenes("street", size=4, seed=3, height=40, focal_scale=(0.9, 1.1))
    h = hashlib.sha256(repr(ds).encode())
    for i in range(len(ds)):
        s = ds.sample(i)
        for a in (s.image, s.target, s.valid, s.labels, s.intrinsics, s.extras["depth_m"]):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(s.id.encode())
    return h.hexdigest()


def _key(case) -> str:
    preset, seed, index, h, w, focal = case
    return f"{preset}_s{seed}_i{index}_{h}x{w}_f{focal[0]}-{focal[1]}"


def write_golden(path: Path = GOLDEN) -> None:
    stored = {}
    for case in TINY:
        arrays, meta = _render(*case)
        for k, a in arrays.items():
            stored[f"{_key(case)}/{k}"] = a
        stored[f"{_key(case)}/meta"] = np.array(json.dumps(meta, sort_keys=True))
    digests = {_key(case): _digest(*_render(*case)) for case in LARGE}
    digests["dataset_street_seed3_h40"] = _dataset_digest()
    stored["digests"] = np.array(json.dumps(digests, sort_keys=True))
    stored["fingerprints"] = _fingerprints()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **stored)


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("case", TINY, ids=_key)
def test_tiny_scene_matches_golden_bit_for_bit(golden, case):
    arrays, meta = _render(*case)
    key = _key(case)
    for k in FIELDS:
        want = golden[f"{key}/{k}"]
        got = arrays[k]
        assert got.dtype == want.dtype and got.shape == want.shape, k
        # depth is inf in the sky (never NaN), so array_equal is exact; the bytes catch -0.0 vs 0.0
        assert np.array_equal(got, want), f"{key}: {k} differs at {np.argwhere(got != want)[:5].tolist()}"
        assert got.tobytes() == want.tobytes(), f"{key}: {k} differs in its bytes (e.g. -0.0 vs 0.0)"
    assert meta == json.loads(str(golden[f"{key}/meta"])), f"{key}: id, extras or object records differ"


def _fingerprint(arrays: dict, meta: dict) -> dict:
    """What a large scene must keep when its digest cannot: per field its dtype and shape, a histogram of its
    values (discrete fields) and the means of an 8x8 grid of blocks (where the values are). NumPy dispatches
    its transcendental functions per CPU (AVX512 and AVX2 round the last bit differently), so a scene
    rendered on another CPU can differ from the digest's by rounding, e.g. a uint8 pixel by 1."""
    out = {"objects": len(meta["objects"])}
    for k in FIELDS:
        a = np.asarray(arrays[k])
        f = {"dtype": a.dtype.str, "shape": list(a.shape)}
        if a.ndim >= 2:
            x = np.nan_to_num(a.astype(np.float64), posinf=-1.0)  # the sky's depth is inf: a value of its own
            h, w = x.shape[:2]
            f["blocks"] = [[float(x[i * h // 8:(i + 1) * h // 8, j * w // 8:(j + 1) * w // 8].mean())
                            for j in range(8)] for i in range(8)]
            if a.dtype.kind in "biu":
                values, counts = np.unique(a, return_counts=True)
                f["histogram"] = {str(int(v)): int(c) for v, c in zip(values, counts)}
        else:
            f["values"] = [float(v) for v in a.ravel()]
        out[k] = f
    return out


def _fingerprints() -> np.ndarray:
    return np.array(json.dumps({_key(c): _fingerprint(*_render(*c)) for c in LARGE}))


def _close_fingerprints(got: dict, want: dict) -> list[str]:
    """The fields of ``got`` that differ from ``want`` by more than rounding (empty: they agree)."""
    bad = [] if got["objects"] == want["objects"] else ["objects"]
    for k in FIELDS:
        g, w = got[k], want[k]
        if g["dtype"] != w["dtype"] or g["shape"] != w["shape"]:
            bad.append(f"{k}: dtype/shape")
            continue
        n = int(np.prod(g["shape"]))
        if "values" in w and not np.allclose(g["values"], w["values"], rtol=1e-5, atol=1e-6):
            bad.append(f"{k}: values")
        if "blocks" in w and not np.allclose(g["blocks"], w["blocks"], rtol=1e-4, atol=1e-3):
            bad.append(f"{k}: block means")
        if "histogram" in w:
            keys = set(g["histogram"]) | set(w["histogram"])
            moved = sum(abs(g["histogram"].get(v, 0) - w["histogram"].get(v, 0)) for v in keys)
            if moved > max(8, 1e-4 * n):  # a few values rounded the other way, not a changed scene
                bad.append(f"{k}: histogram ({moved} counts moved)")
    return bad


@pytest.mark.parametrize("case", LARGE, ids=_key)
def test_large_scene_matches_golden_digest(golden, case):
    """Bit for bit where the CPU rounds as the one that wrote the digest; else every field within rounding."""
    arrays, meta = _render(*case)
    if _digest(arrays, meta) == json.loads(str(golden["digests"]))[_key(case)]:
        return
    bad = _close_fingerprints(_fingerprint(arrays, meta), json.loads(str(golden["fingerprints"]))[_key(case)])
    assert not bad, bad


def test_dataset_samples_match_golden_digest(golden):
    assert _dataset_digest() == json.loads(str(golden["digests"]))["dataset_street_seed3_h40"]


def add_fingerprints(path: Path = GOLDEN) -> None:
    """Add the large scenes' fingerprints to a golden file written before they existed, keeping the rest."""
    with np.load(path) as z:
        stored = {k: z[k] for k in z.files}
    stored["fingerprints"] = _fingerprints()
    np.savez_compressed(path, **stored)


if __name__ == "__main__":
    if sys.argv[1:] not in (["--write"], ["--add-fingerprints"]):
        sys.exit("usage: PYTHONPATH=src python tests/data/test_synthetic_golden.py --write | --add-fingerprints")
    add_fingerprints() if sys.argv[1] == "--add-fingerprints" else write_golden()
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")
