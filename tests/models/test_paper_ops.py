"""The operations of §3.2.3-3.2.4 and §4.1's initialisation, pinned from the units' own maps.

``tests/models/base.py`` checks shapes, gradients and finiteness; these tests check *what* is computed, so
a changed operation (a sum for the eq. (3) product, a missing square root, no task-specific init) fails.

Run: .venv/bin/python -m pytest tests/models/test_paper_ops.py -q
"""
import pytest
import torch
import torch.nn as nn

from sosd.config import ModelConfig
from sosd.models import SOSDNet
from sosd.models.semantic_to_depth import SQRT_EPS
from sosd.models.sosd_net import DEPTH_SIDE, SEMANTIC_SIDE
from tests.models.base import SMALL


def _model(**kw):
    torch.manual_seed(0)
    return SOSDNet(ModelConfig(variant="sosd", **{**SMALL, **kw}))


class _Recorder:
    """Forward hooks that keep each module's inputs and output (by name) for one forward pass."""

    def __init__(self, model, names):
        self.inputs, self.outputs, self.handles = {}, {}, []
        mods = dict(model.named_modules())
        for n in names:
            self.handles.append(mods[n].register_forward_hook(self._hook(n)))

    def _hook(self, name):
        def hook(mod, args, out):
            self.inputs[name] = tuple(a.detach().clone() for a in args if torch.is_tensor(a))
            self.outputs[name] = out.detach().clone()
        return hook

    def close(self):
        for h in self.handles:
            h.remove()


@pytest.fixture(scope="module")
def recorded():
    """One train-mode and one eval-mode forward of a small sosd model, with the units' maps recorded."""
    m = _model()
    names = ["semantic_to_depth.area_3d", "semantic_to_depth.area_2d", "semantic_to_depth.fuse",
             "semantic_to_depth.area_3d.conv1", "semantic_to_depth.area_2d.conv1",
             "depth_to_semantic.inverse_depth", "depth_to_semantic.area_3d", "depth_to_semantic.semantic_cue",
             "depth_to_semantic.inverse_depth.conv1", "depth_to_semantic.area_3d.conv1",
             "depth_to_semantic.classifier", "decoder.semantic_feature", "decoder.common_representation",
             "decoder.depth_feature"]
    torch.manual_seed(1)
    x = torch.rand(2, 3, 64, 96)
    rec = _Recorder(m, names)
    with torch.no_grad():
        out = m.train()(x, return_aux=True)
    rec.close()
    return m, rec, out, x


def test_semantic_to_depth_cue_is_the_square_root_of_the_area_product(recorded):
    """§3.2.3, eq. (3): cue = sqrt(theta^3d-map * theta^2d-map + eps), and that cue is what the fusion sees."""
    _, rec, out, x = recorded
    a3, a2 = rec.outputs["semantic_to_depth.area_3d"], rec.outputs["semantic_to_depth.area_2d"]
    assert a3.shape[1] == a2.shape[1] == 1 and (a3 > 0).all() and (a2 > 0).all()
    # the two heatmaps must differ, else sqrt(a*a) = a and a sum would also look plausible
    assert not torch.allclose(a3, a2)
    expected = torch.sqrt(a3 * a2 + SQRT_EPS)
    torch.testing.assert_close(out["aux"]["cue"], expected)
    torch.testing.assert_close(out["aux"]["area_3d"], a3)
    fuse_in = rec.inputs["semantic_to_depth.fuse"][0]
    torch.testing.assert_close(fuse_in[:, -1:], expected)   # theta^dep fuses [Depth Feature, cue]
    assert fuse_in.shape[1] == SMALL["decoder_channels"] + 1
    # the output: softplus of the bilinearly upsampled fusion (positive by construction, §3.2.3)
    fused = rec.outputs["semantic_to_depth.fuse"]
    up = torch.nn.functional.interpolate(fused, size=x.shape[-2:], mode="bilinear", align_corners=False)
    torch.testing.assert_close(out["depth"], torch.nn.functional.softplus(up))


def test_units_read_the_decoder_outputs_of_the_paper(recorded):
    """Fig. 6: theta^3d reads the Common Representation, theta^2d the Semantic Feature; Fig. 7: theta^{d^-2}
    reads the Depth Feature and theta^3d (semantic side) the Common Representation."""
    _, rec, _, _ = recorded
    sem, com, dep = (rec.outputs[f"decoder.{k}"] for k in ("semantic_feature", "common_representation",
                                                            "depth_feature"))
    assert not torch.allclose(sem, com) and not torch.allclose(com, dep)
    torch.testing.assert_close(rec.inputs["semantic_to_depth.area_3d"][0], com)
    torch.testing.assert_close(rec.inputs["semantic_to_depth.area_2d"][0], sem)
    torch.testing.assert_close(rec.inputs["semantic_to_depth.fuse"][0][:, :-1], dep)
    torch.testing.assert_close(rec.inputs["depth_to_semantic.inverse_depth"][0], dep)
    torch.testing.assert_close(rec.inputs["depth_to_semantic.area_3d"][0], com)
    torch.testing.assert_close(rec.inputs["depth_to_semantic.classifier"][0][:, :-32], sem)


def test_focal_aware_cue_scales_with_the_geometric_mean_focal():
    """eq. (3) (focal_aware, beyond the paper): cue * sqrt(fx fy) / focal_ref."""
    m = _model(focal_aware=True, focal_ref=500.0).eval()
    x = torch.rand(2, 3, 64, 64)
    k = torch.tensor([[400.0, 900.0, 32.0, 32.0], [500.0, 500.0, 32.0, 32.0]])
    with torch.no_grad():
        out = m(x, k, return_aux=True)
    a3, a2 = out["aux"]["area_3d"], out["aux"]["area_2d"]
    base = torch.sqrt(a3 * a2 + SQRT_EPS)
    factor = torch.tensor([600.0 / 500.0, 1.0]).view(2, 1, 1, 1)
    torch.testing.assert_close(out["aux"]["cue"], base * factor)


def test_depth_to_semantic_latent_is_the_pixel_product(recorded):
    """§3.2.4: the semantic cue convolution reads theta^{d^-2}-latent * theta^3d-latent (pixel product)."""
    _, rec, _, _ = recorded
    inv = rec.outputs["depth_to_semantic.inverse_depth"]
    a3 = rec.outputs["depth_to_semantic.area_3d"]
    latent = rec.inputs["depth_to_semantic.semantic_cue"][0]
    assert inv.shape[1] == a3.shape[1] == 32
    torch.testing.assert_close(latent, inv * a3)
    assert not torch.allclose(latent, inv + a3)
    cls_in = rec.inputs["depth_to_semantic.classifier"][0]
    assert cls_in.shape[1] == SMALL["decoder_channels"] + 32   # [Semantic Feature, cue]


def test_branch_widths(recorded):
    """Fig. 6: the area branches are 2 -> 1 channels; Fig. 7: the latent branches are 64 -> 32 channels."""
    m, rec, _, _ = recorded
    for side in ("area_3d", "area_2d"):
        assert rec.outputs[f"semantic_to_depth.{side}.conv1"].shape[1] == 2
        assert rec.outputs[f"semantic_to_depth.{side}"].shape[1] == 1
        br = getattr(m.semantic_to_depth, side)
        assert (br.conv1.conv.out_channels, br.conv2.in_channels, br.conv2.out_channels) == (2, 2, 1)
    for side in ("inverse_depth", "area_3d"):
        assert rec.outputs[f"depth_to_semantic.{side}.conv1"].shape[1] == 64
        assert rec.outputs[f"depth_to_semantic.{side}"].shape[1] == 32
        br = getattr(m.depth_to_semantic, side)
        assert (br.conv1.conv.out_channels, br.conv2.conv.out_channels) == (64, 32)


def _convs(modules):
    return [c for m in modules for c in m.modules() if isinstance(c, nn.Conv2d)]


def test_task_layers_get_the_configured_init_and_the_trunk_does_not():
    """§4.1: task-specific layers from N(0, std^2), biases 0 (the last depth layer: softplus^-1 of the
    prior); the trunk keeps its own init, whatever init_std says."""
    a, b = _model(init_std=0.02), _model(init_std=0.3)
    for m, std in ((a, 0.02), (b, 0.3)):
        g = m.module_groups()
        task = _convs([mod for k in DEPTH_SIDE + SEMANTIC_SIDE for mod in g[k]])
        assert len(task) > 10
        w = torch.cat([c.weight.detach().flatten() for c in task])
        assert abs(w.mean().item()) < 0.1 * std
        assert w.std().item() == pytest.approx(std, rel=0.05)
        for c in task:  # every layer, not only the pooled statistics
            assert c.weight.std().item() == pytest.approx(std, rel=0.5 if c.weight.numel() < 200 else 0.2), c
            if c.bias is not None and c is not m.semantic_to_depth.fuse:
                assert torch.count_nonzero(c.bias) == 0
        prior = m.cfg.depth_prior
        assert torch.nn.functional.softplus(m.semantic_to_depth.fuse.bias).item() == pytest.approx(prior, rel=1e-5)
    # the trunk (backbone, ASPP, Common Representation) is the same with either init_std
    trunk_a = {n: p for mod in a.module_groups()["com"] for n, p in mod.named_parameters()}
    trunk_b = {n: p for mod in b.module_groups()["com"] for n, p in mod.named_parameters()}
    assert trunk_a and trunk_a.keys() == trunk_b.keys()
    for n, p in trunk_a.items():
        assert torch.equal(p, trunk_b[n]), n


def test_default_init_std_is_the_papers():
    """§4.1: variance 0.01 -> std 0.1."""
    assert ModelConfig().init_std == 0.1


@pytest.mark.parametrize("fill", [0.0, 1.0, 1e4, -1e4])
def test_eval_path_is_finite_on_extreme_inputs(fill):
    """Inference uses the BatchNorm running statistics (not the batch's): still finite, and each sample's
    output does not depend on the rest of the batch."""
    m = _model()
    m.train()
    with torch.no_grad():  # a few batches so running statistics are not the defaults
        for i in range(3):
            torch.manual_seed(10 + i)
            m(torch.rand(2, 3, 64, 64))
    m.eval()
    x = torch.full((2, 3, 64, 64), fill)
    x[0, :, :10] = 0.5
    with torch.no_grad():
        out = m(x, return_aux=True)
        alone = m(x[1:])
    assert torch.isfinite(out["depth"]).all() and (out["depth"] > 0).all()
    assert torch.isfinite(out["semantic"]).all()
    assert all(torch.isfinite(v).all() for v in out["aux"].values())
    torch.testing.assert_close(alone["depth"], out["depth"][1:])
    torch.testing.assert_close(alone["semantic"], out["semantic"][1:])
