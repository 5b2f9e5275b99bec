"""Resizing and the paper's augmentation (sosd.data.transforms), pinned with values.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/data/test_transforms.py -q
"""
import numpy as np
import pytest

from sosd.data.sample import IGNORE_INDEX, Sample
from sosd.data.transforms import (PaperAugment, color_jitter, crop_or_pad, hflip_sample, nearest_indices,
                                  resize_sample)

H, W = 24, 32
K = np.array([100.0, 110.0, 15.5, 11.5], np.float32)


def make(kind="depth", value=4.0, holes=False):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    target = np.full((H, W), value, np.float32)
    valid = np.ones((H, W), bool)
    if holes:
        valid[::3, ::2] = False
        target[~valid] = 0
    labels = (np.arange(W)[None, :] // 4 + np.zeros((H, 1), int)).astype(np.int64)  # column stripes 0..7
    labels[0, 0] = IGNORE_INDEX
    return Sample(image=image, target=target, valid=valid, labels=labels, intrinsics=K.copy(), id="x",
                  target_kind=kind)


def test_nearest_indices_pixel_centres():
    assert nearest_indices(4, 2).tolist() == [1, 3]
    assert nearest_indices(2, 4).tolist() == [0, 0, 1, 1]
    assert nearest_indices(5, 5).tolist() == [0, 1, 2, 3, 4]


def test_resize_sample_rules():
    s = make("depth", 3.0, holes=True)
    r = resize_sample(s, 12, 16)
    assert r.image.shape == (12, 16, 3) and r.image.dtype == np.uint8
    assert r.labels.dtype == np.int64 and set(np.unique(r.labels)) <= set(np.unique(s.labels))
    # depth unchanged in value by a resize; valid mask exactly where target > 0 (no blending)
    assert set(np.unique(r.target)) <= {0.0, 3.0}
    assert np.array_equal(r.valid, r.target > 0)
    fx, fy, cx, cy = r.intrinsics
    assert fx == pytest.approx(50.0) and fy == pytest.approx(55.0)
    assert cx == pytest.approx((15.5 + 0.5) * 0.5 - 0.5) and cy == pytest.approx((11.5 + 0.5) * 0.5 - 0.5)


def test_resize_disparity_scales_with_width():
    s = make("disparity", 8.0)
    r = resize_sample(s, 6, 8)  # width / 4
    assert np.allclose(r.target, 2.0)
    r2 = resize_sample(s, 48, 64)
    assert np.allclose(r2.target, 16.0)
    assert resize_sample(s, None, 0) is s


@pytest.mark.parametrize("s_", [1.5, 0.5, 1.25])
def test_augment_scale_divides_depth_multiplies_disparity(s_):
    aug = PaperAugment(scales=[s_], seed=0, flip_p=0.0, color=False)
    d = aug(make("depth", 3.0), 0)
    p = aug(make("disparity", 8.0), 0)
    assert d.image.shape == (H, W, 3) and p.image.shape == (H, W, 3)
    assert np.allclose(d.target[d.valid], 3.0 / s_)
    assert np.allclose(p.target[p.valid], 8.0 * s_)
    # same camera, scene s times closer: the focal lengths do not change (eq. 2 stays consistent)
    assert d.intrinsics[0] == pytest.approx(100.0) and d.intrinsics[1] == pytest.approx(110.0)
    if s_ < 1:  # padding: labels 255, valid False, image 0 outside the scaled image
        assert (~d.valid).sum() == H * W - (H * s_) * (W * s_)
        assert np.all(d.labels[~d.valid] == IGNORE_INDEX) and np.all(d.image[~d.valid] == 0)
        assert np.all(d.target[~d.valid] == 0)
    else:
        assert d.valid.all()


def test_augment_crop_shifts_principal_point():
    # s = 2: scaled pixel j comes from source pixel j // 2; the crop offset (y0, x0) is read back from
    # the principal point and must explain the cropped labels exactly
    aug = PaperAugment(scales=[2.0], seed=3, flip_p=0.0, color=False)
    s = make()
    s = s.replace(labels=(np.arange(H)[:, None] * 100 + np.arange(W)[None, :]).astype(np.int64))
    out = aug(s, 5)
    x0 = (s.intrinsics[2] + 0.5) * 2 - 0.5 - out.intrinsics[2]
    y0 = (s.intrinsics[3] + 0.5) * 2 - 0.5 - out.intrinsics[3]
    assert x0 == pytest.approx(round(x0), abs=1e-4) and y0 == pytest.approx(round(y0), abs=1e-4)
    x0, y0 = int(round(x0)), int(round(y0))
    assert 0 <= x0 <= W and 0 <= y0 <= H
    rows, cols = (np.arange(H) + y0) // 2, (np.arange(W) + x0) // 2
    assert np.array_equal(out.labels, s.labels[rows[:, None], cols[None, :]])


def test_flip_flips_labels_depth_and_cx():
    s = make(holes=True)
    s = s.replace(target=np.where(s.valid, np.arange(W, dtype=np.float32)[None, :] + 1, 0).astype(np.float32))
    f = hflip_sample(s)
    assert np.array_equal(f.labels, s.labels[:, ::-1])
    assert np.array_equal(f.target, s.target[:, ::-1]) and np.array_equal(f.valid, s.valid[:, ::-1])
    assert np.array_equal(f.image, s.image[:, ::-1])
    assert f.intrinsics[2] == pytest.approx(W - 1 - 15.5) and f.intrinsics[3] == pytest.approx(11.5)
    # PaperAugment with flip_p=1 and scale 1 is exactly the flip
    a = PaperAugment(scales=[1.0], seed=0, flip_p=1.0, color=False)(s, 0)
    assert np.array_equal(a.labels, f.labels) and np.array_equal(a.target, f.target)
    assert np.allclose(a.intrinsics, f.intrinsics)


def test_determinism_per_seed_epoch_index():
    s = make("depth", 2.0, holes=True)
    aug = PaperAugment(scales=[0.5, 1.0, 1.5], seed=7)

    def run(a, i):
        o = a(s, i)
        return o.image.tobytes() + o.target.tobytes() + o.labels.tobytes() + o.intrinsics.tobytes()

    a1 = run(aug, 3)
    assert run(PaperAugment(scales=[0.5, 1.0, 1.5], seed=7), 3) == a1
    outs = {run(aug, i) for i in range(6)}
    assert len(outs) > 1  # different indices -> different draws
    aug.set_epoch(1)
    assert len({run(aug, 3) for _ in range(2)}) == 1
    other_epochs = set()
    for e in range(6):
        aug.set_epoch(e)
        other_epochs.add(run(aug, 3))
    assert len(other_epochs) > 1
    other_seeds = {run(PaperAugment(scales=[0.5, 1.0, 1.5], seed=sd), 3) for sd in range(6)}
    assert len(other_seeds) > 1


def test_color_jitter_identity_and_effect():
    img = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(color_jitter(img, 1, 1, 1, 0), img)
    assert color_jitter(img, 1.2, 1, 1, 0).mean() > img.mean()
    grey = color_jitter(img, 1, 1, 0.0, 0)
    assert np.abs(grey[..., 0].astype(int) - grey[..., 1]).max() <= 1  # saturation 0 -> grey
    # colour never touches the geometry
    s = make()
    o = PaperAugment(scales=[1.0], seed=0, flip_p=0.0, color=True)(s, 0)
    assert np.array_equal(o.labels, s.labels) and np.array_equal(o.target, s.target)


def test_crop_or_pad_offsets():
    s = make()
    c = crop_or_pad(s, 10, 10, 2, 3)
    assert np.array_equal(c.labels, s.labels[2:12, 3:13])
    assert c.intrinsics[2] == pytest.approx(15.5 - 3) and c.intrinsics[3] == pytest.approx(11.5 - 2)
    p = crop_or_pad(s, H + 4, W + 4, -2, -2)
    assert np.all(p.labels[:2] == IGNORE_INDEX) and not p.valid[:, :2].any()
    assert np.array_equal(p.labels[2:-2, 2:-2], s.labels)
    assert p.intrinsics[2] == pytest.approx(17.5)


def test_property_augment_keeps_size_and_mask_consistent():
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hyp.settings(max_examples=25, deadline=None)
    @hyp.given(st.integers(0, 10_000), st.sampled_from([0.5, 0.75, 1.0, 1.25, 1.5, 1.75]),
               st.sampled_from(["depth", "disparity"]))
    def prop(index, scale, kind):
        s = make(kind, 5.0, holes=True)
        o = PaperAugment(scales=[scale], seed=1)(s, index)
        assert o.image.shape == s.image.shape and o.labels.shape == s.labels.shape
        assert o.target.dtype == np.float32 and o.labels.dtype == np.int64 and o.valid.dtype == bool
        # no blending: every valid target is the one scaled value, every invalid one is 0
        ratio = round(W * scale) / W
        expect = 5.0 / ratio if kind == "depth" else 5.0 * ratio
        assert np.allclose(o.target[o.valid], expect) and np.all(o.target[~o.valid] == 0)
        assert set(np.unique(o.labels)) <= set(np.unique(s.labels)) | {IGNORE_INDEX}

    prop()


@pytest.mark.parametrize("preset,s_", [("indoor", 1.2), ("indoor", 0.75), ("street", 1.25)])
def test_augmented_generator_objects_satisfy_eq3(preset, s_):
    """After scale augmentation, eq. (3) holds with the augmented sample's own intrinsics and target: for a
    generator object of known physical area (planar, fronto-parallel), d'^2 = fx' fy' area / pixels', with
    d' the object's depth in the augmented target (disparity: fx' B / disparity'). A scale that changes the
    focal lengths *and* the depth is off by a factor s."""
    from sosd.data.synthetic import render_scene

    checked = 0
    for index in range(30):
        if checked >= 4:
            break
        sample, objects = render_scene(preset, 0, index, 120, 160, return_objects=True)
        inst = sample.extras["instances"]
        # carry the object index through the same nearest resampling as the labels
        s = sample.replace(labels=np.where(inst >= 0, inst, IGNORE_INDEX).astype(np.int64), extras={})
        out = PaperAugment(scales=[s_], seed=index, flip_p=0.5, color=False)(s, index)
        fx, fy = (float(v) for v in out.intrinsics[:2])
        for o in objects:
            k = o["instance"]
            before, after = int((inst == k).sum()), out.labels == k
            # objects whole before and after (not occluded, not cut by the image border or the crop)
            if not (o["inside"] and o["unoccluded"] and before >= 300):
                continue
            if abs(after.sum() - before * s_ * s_) > 0.1 * before * s_ * s_:
                continue
            vals = out.target[after & out.valid]
            if vals.size < 50:
                continue
            d_eq3 = np.sqrt(fx * fy * o["area_m2"] / after.sum())
            if out.target_kind == "disparity":
                d_target = fx * sample.extras["baseline"] / float(np.median(vals))
            else:
                d_target = float(np.median(vals))
            assert d_target == pytest.approx(o["depth_m"] / s_, rel=1e-3)   # the scene s times closer
            assert d_eq3 == pytest.approx(d_target, rel=0.08), (index, o["class_name"])
            checked += 1
    assert checked >= 3
