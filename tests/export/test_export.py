"""ONNX / TorchScript export, BatchNorm folding, the ONNX Runtime predictor and `sosd export`.

Every variant on the small backbone with tiny channels; BatchNorm statistics calibrated on synthetic scenes
so that activations (and logits) are O(1), not the near-zero outputs of a freshly initialised network.
Exported vs PyTorch eval outputs, within sosd.export.TOLERANCES (max error 1e-4 of the largest depth and of
the largest |logit| (at least 1), argmax agreement >= 99.9 %), on random images and synthetic scenes, at
the export size (batch 1) and at another size (batch 2: dynamic batch, height and width).

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/export/test_export.py
"""
import functools
import json
import os

import numpy as np
import pytest
import torch

import sosd
from sosd.cli import main
from sosd.config import ModelConfig
from sosd.data.synthetic import SyntheticScenes
from sosd.errors import SOSDError
from sosd.export import TOLERANCES, compare_outputs
from sosd.export.fuse import conv_bn_pairs, count_batchnorms, fuse_bn
from sosd.export.onnx_export import export_metadata, export_onnx, read_metadata
from sosd.export.onnx_runtime import OnnxModel, OnnxPredictor, make_session
from sosd.export.torchscript import export_torchscript, load_torchscript
from sosd.models import SOSDNet
from sosd.models.sosd_net import InputSizeError
from sosd.train.loop import fit
from tests.conftest import tiny_config

VARIANTS = ("semantic_only", "depth_only", "mtl", "sosd")
FOCAL = "sosd_focal"  # sosd with focal_aware: the ONNX model has an `intrinsics` input (ONNX tests only)
EXPORT_HW = (32, 48)
SIZES = ((1, 32, 48), (2, 56, 40))  # (batch, H, W): the export size, then another one (not a multiple of 16)
NUM_CLASSES = 6


@pytest.fixture(scope="module", autouse=True)
def _threads_from_env():
    """tests/conftest.py sets 2 torch threads whatever OMP_NUM_THREADS says; on a shared 2-core machine
    two OpenMP threads wait on each other (10x slower here). Honour OMP_NUM_THREADS in this module."""
    before = torch.get_num_threads()
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
    yield
    torch.set_num_threads(before)


def tiny_model(variant: str) -> SOSDNet:
    torch.manual_seed(0)
    cfg = ModelConfig(variant=variant.replace("_focal", ""), backbone="xception_small", num_classes=NUM_CLASSES,
                      aspp_channels=16, decoder_channels=16, refined_channels=8,
                      focal_aware=variant.endswith("_focal"))
    m = SOSDNet(cfg)
    # calibrate BatchNorm on synthetic scenes (cumulative statistics), then perturb the affine parameters
    for bn in m.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.reset_running_stats()
            bn.momentum = None
            with torch.no_grad():
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.3, 0.3)
    # on both kinds of test input: a network calibrated on scenes blows up on uniform noise (depths of 1e-8
    # to 1e2 from a float32-sensitive tail), which no trained model would show
    image, k = scenes(2, *EXPORT_HW, seed=7)
    image = torch.cat([image, torch.rand(2, 3, *EXPORT_HW, generator=torch.Generator().manual_seed(7))])
    m.train()
    with torch.no_grad():
        m(image, torch.cat([k, k]))
    return m.eval()


@functools.lru_cache(maxsize=None)
def scenes(n, h, w, seed=0):
    ds = SyntheticScenes("indoor", size=n, seed=seed, height=h, width=w)
    samples = [ds.sample(i) for i in range(n)]
    image = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 255
    return image, torch.from_numpy(np.stack([s.intrinsics for s in samples])).float()


def inputs(model, kind, b, h, w):
    if kind == "synthetic":
        image, k = scenes(b, h, w, seed=11)
    else:
        g = torch.Generator().manual_seed(b * 1000 + h)
        image = torch.rand(b, 3, h, w, generator=g)
        k = torch.tensor([[520.0, 480.0, w / 2, h / 2]] * b)
    return (image, k) if model.cfg.focal_aware else (image,)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{variant: (model, onnx path, torchscript path)}."""
    tmp = tmp_path_factory.mktemp("export")
    out = {}
    for v in VARIANTS + (FOCAL,):
        m = tiny_model(v)
        onnx_path = export_onnx(m, tmp / f"{v}.onnx", *EXPORT_HW)
        ts_path = export_torchscript(m, tmp / f"{v}.pt", *EXPORT_HW) if v != FOCAL else None
        out[v] = (m, onnx_path, ts_path)
    return out


@pytest.mark.parametrize("variant,fmt", [(v, f) for v in VARIANTS for f in ("onnx", "torchscript")]
                         + [(FOCAL, "onnx")])
def test_exported_model_matches_pytorch(exported, variant, fmt):
    model, onnx_path, ts_path = exported[variant]
    if fmt == "onnx":
        run = OnnxModel(make_session(onnx_path, threads=1), model.cfg)
    else:
        module, meta = load_torchscript(ts_path)
        names = json.loads(meta["outputs"])
        run = lambda *a: dict(zip(names, module(*a)))  # noqa: E731
    for kind in ("random", "synthetic"):
        for b, h, w in SIZES:
            args = inputs(model, kind, b, h, w)
            with torch.no_grad():
                ref, got = model(*args), run(*args)
            assert set(got) == set(ref)
            for k in ref:
                assert got[k].shape == ref[k].shape == (b, 1 if k == "depth" else NUM_CLASSES, h, w)
            res = compare_outputs(ref, got)
            assert res["ok"], (kind, b, h, w, res, TOLERANCES)
            if "semantic" in ref:  # the comparison means something: logits are O(1), not ~0
                assert ref["semantic"].std() > 0.1


def test_onnx_graph_interface_and_metadata(exported, tmp_path):
    _, path, _ = exported[FOCAL]
    sess = make_session(path)
    ins = {i.name: i.shape for i in sess.get_inputs()}
    outs = {o.name: o.shape for o in sess.get_outputs()}
    assert ins == {"image": ["batch", 3, "height", "width"], "intrinsics": ["batch", 4]}
    assert outs == {"depth": ["batch", 1, "height", "width"], "semantic": ["batch", NUM_CLASSES, "height", "width"]}
    _, path, _ = exported["depth_only"]
    assert [i.name for i in make_session(path).get_inputs()] == ["image"]
    assert [o.name for o in make_session(path).get_outputs()] == ["depth"]
    meta = read_metadata(path)
    assert json.loads(meta["outputs"]) == ["depth"] and meta["export_size"] == "32x48"


def test_onnx_model_rejects_too_small_images(exported):
    model, path, _ = exported["mtl"]
    with pytest.raises(InputSizeError, match="at least 32"):
        OnnxModel(make_session(path), model.cfg)(torch.rand(1, 3, 16, 64))


# ------------------------------------------------------------------------------------------- BN folding

@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_model_matches_unfused(exported, variant):
    m = exported[variant][0]
    n_bn = count_batchnorms(m)
    fused = fuse_bn(m)
    assert count_batchnorms(fused) == 0 and len(fused.fused_bn_pairs) == n_bn  # every BatchNorm folded
    assert count_batchnorms(m) == n_bn  # the original is untouched
    for kind in ("random", "synthetic"):
        args = inputs(m, kind, *SIZES[1])
        with torch.no_grad():
            ref, got = m(*args), fused(*args)
        res = compare_outputs(ref, got)  # 1e-4 relative to the largest value, argmax agreement >= 99.9 %
        assert res["ok"], (kind, res)


def test_fuse_finds_the_backbone_timm_pairs(exported):
    pairs = dict((bn, conv) for conv, bn in conv_bn_pairs(exported["sosd"][0]))
    assert pairs["backbone.stem.0.bn"] == "backbone.stem.0.conv"                    # BatchNormAct2d
    assert pairs["backbone.blocks.1.stack.conv2.bn_dw"] == "backbone.blocks.1.stack.conv2.conv_dw"
    assert pairs["backbone.blocks.1.stack.conv2.bn_pw"] == "backbone.blocks.1.stack.conv2.conv_pw"
    assert pairs["backbone.blocks.0.shortcut.bn"] == "backbone.blocks.0.shortcut.conv"
    assert pairs["semantic_to_depth.area_3d.bn"] == "semantic_to_depth.area_3d.conv2"
    fused = fuse_bn(exported["sosd"][0])
    assert isinstance(fused.backbone.stem[0].bn, torch.nn.ReLU)  # BatchNormAct2d -> its activation


def test_fuse_skips_batchnorms_that_do_not_directly_follow_a_conv():
    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.relu = torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(inplace=True)
            self.bn_a = torch.nn.BatchNorm2d(4)
            self.b, self.bn_b, self.other = torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.Identity()
            self.c, self.bn_c = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.b(x)
            return self.bn_a(self.relu(self.a(x))), self.bn_b(y) + self.other(y), self.bn_c(self.c(x))

    toy = Toy().eval()
    for bn in (toy.bn_a, toy.bn_b, toy.bn_c):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.rand(1, 3, 8, 8)
    assert conv_bn_pairs(toy, (x,)) == [("c", "bn_c")]  # a: in-place ReLU between; b: output read twice
    fused = fuse_bn(toy, (x,))
    with torch.no_grad():
        for r, g in zip(toy(x), fused(x)):
            torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------- CLI and OnnxPredictor

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = tiny_config(tmp, steps=2)
    fit(cfg, progress=False)
    return tmp / "runs" / "tiny", tmp


@pytest.fixture(scope="module")
def cli_onnx(tiny_run):
    run, tmp = tiny_run
    out = tmp / "sosd.onnx"
    assert main(["export", "--checkpoint", str(run), "--format", "onnx", "--out", str(out)]) == 0
    return out


def test_cli_onnx_export_has_metadata(cli_onnx, tiny_run, capsys):
    run, _ = tiny_run
    meta = read_metadata(cli_onnx)
    ref = sosd.load(run)
    assert meta["target_kind"] == "depth" and meta["variant"] == "sosd"
    assert json.loads(meta["class_names"]) == ref.class_names
    assert json.loads(meta["sosd_config"])["data"]["height"] == 48
    assert meta["export_size"] == "48x64"  # the training size by default


def test_onnx_predictor_matches_torch_predictor(cli_onnx, tiny_run):
    run, _ = tiny_run
    onnx_p, torch_p = OnnxPredictor(cli_onnx, threads=1), sosd.load(run)
    assert (onnx_p.size, onnx_p.target_kind, onnx_p.class_names) == (torch_p.size, torch_p.target_kind,
                                                                      torch_p.class_names)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, hw + (3,), dtype=np.uint8) for hw in ((48, 64), (70, 90), (40, 100))]
    images.append(SyntheticScenes("indoor", size=1, seed=5, height=96, width=128).sample(0).image)
    for native in (False, True):
        onnx_p.native_size = torch_p.native_size = native
        for a, b in zip(onnx_p.predict_batch(images), torch_p.predict_batch(images)):
            assert a.depth.shape == b.depth.shape and a.labels.shape == b.labels.shape
            assert np.abs(a.depth - b.depth).max() <= TOLERANCES["depth_rel"] * np.abs(b.depth).max()
            assert (a.labels == b.labels).mean() >= TOLERANCES["argmax_agreement"]
    one = onnx_p.predict(images[1])
    assert one.depth.shape == (70, 90) and one.labels.dtype.kind in "iu"


def test_cli_torchscript_export_with_fused_bn(tiny_run, capsys):
    run, tmp = tiny_run
    out = tmp / "sosd.pt"
    assert main(["export", "--checkpoint", str(run), "--format", "torchscript", "--out", str(out),
                 "--fuse-bn", "--height", "40", "--width", "56"]) == 0
    assert "ok" in capsys.readouterr().out
    module, meta = load_torchscript(out)
    assert meta["export_size"] == "40x56" and meta["bn_folded"] == "True"
    ref = sosd.load(run).model
    x = torch.rand(2, 3, 50, 70)
    with torch.no_grad():
        got, want = dict(zip(json.loads(meta["outputs"]), module(x))), ref(x)
    assert compare_outputs(want, got)["ok"]


def test_cli_errors(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    assert main(["export", "--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert main(["export", "--checkpoint", str(run), "--out", str(tmp_path)]) == 2  # a folder
    assert main(["export", "--checkpoint", str(run), "--out", str(tmp_path / "m.onnx"), "--height", "16"]) == 2
    assert "at least 32" in capsys.readouterr().err
    with pytest.raises(SOSDError, match="sosd export"):
        OnnxPredictor(run / "config.yaml")  # a checkpoint's file instead of an exported model


def test_metadata_of_a_disparity_model():
    from sosd.config import load_config

    cfg = load_config(None, ["data.preset=street"])
    md = export_metadata(cfg, {}, 32, 64)
    assert md["target_kind"] == "disparity" and json.loads(md["class_names"]) == []
    md = export_metadata(cfg, {"class_names": ["a", "b"], "target_kind": "disparity"}, 32, 64)
    assert json.loads(md["class_names"]) == ["a", "b"]
