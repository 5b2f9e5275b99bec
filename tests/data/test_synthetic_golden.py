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


@pytest.mark.parametrize("case", LARGE, ids=_key)
def test_large_scene_matches_golden_digest(golden, case):
    digests = json.loads(str(golden["digests"]))
    assert _digest(*_render(*case)) == digests[_key(case)]


def test_dataset_samples_match_golden_digest(golden):
    assert _dataset_digest() == json.loads(str(golden["digests"]))["dataset_street_seed3_h40"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: PYTHONPATH=src python tests/data/test_synthetic_golden.py --write")
    write_golden()
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")
