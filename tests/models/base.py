"""One tester for every variant of SOSD-Net; each variant's file only sets ``variant``.

Run: .venv/bin/python -m pytest tests/models -q
"""
import pytest
import torch

from sosd.config import ModelConfig
from sosd.losses import depth_l1, semantic_ce
from sosd.models import SOSDNet
from sosd.models.sosd_net import InputSizeError

SMALL = dict(backbone="xception_small", num_classes=5, aspp_channels=32, decoder_channels=32,
             refined_channels=16)


class ModelTester:
    variant = "sosd"

    def model(self, **kw):
        torch.manual_seed(0)
        return SOSDNet(ModelConfig(variant=self.variant, **{**SMALL, **kw}))

    def keys(self):
        return {"semantic_only": {"semantic"}, "depth_only": {"depth"}}.get(self.variant, {"semantic", "depth"})

    @pytest.mark.parametrize("hw", [(64, 64), (100, 150), (33, 47), (96, 128)])
    def test_shapes_at_several_sizes(self, hw):
        m = self.model().eval()
        with torch.no_grad():
            out = m(torch.rand(2, 3, *hw))
        assert set(out) == self.keys()
        if "depth" in out:
            assert out["depth"].shape == (2, 1, *hw)
            assert (out["depth"] > 0).all()  # positive by construction
        if "semantic" in out:
            assert out["semantic"].shape == (2, 5, *hw)

    def test_every_parameter_gets_a_gradient(self):
        m = self.model().train()
        x = torch.rand(2, 3, 64, 80)
        out = m(x)
        loss = 0
        if "depth" in out:
            target = torch.rand(2, 1, 64, 80) * 5 + 0.5
            loss = loss + depth_l1(out["depth"], target, torch.ones_like(target, dtype=torch.bool))
        if "semantic" in out:
            loss = loss + semantic_ce(out["semantic"], torch.randint(0, 5, (2, 64, 80)))
        loss.backward()
        missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not missing
        zero = [n for n, p in m.named_parameters() if p.grad.abs().sum() == 0]
        assert not zero, zero

    @pytest.mark.parametrize("fill", [0.0, 1.0, 1e4, -1e4])
    def test_finite_for_extreme_inputs(self, fill):
        m = self.model().train()
        x = torch.full((2, 3, 64, 64), fill)
        x[0, :, :10] = 0.5
        out = m(x)
        loss = sum(o.float().mean() for o in out.values())
        loss.backward()
        assert all(torch.isfinite(o).all() for o in out.values())
        assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)

    def test_parameter_groups_partition_the_parameters(self):
        m = self.model()
        groups = m.parameter_groups()
        ids = [id(p) for ps in groups.values() for p in ps]
        assert len(ids) == len(set(ids)) == len(list(m.parameters()))
        assert groups["com"]  # the shared trunk always exists

    def test_too_small_image_is_a_clear_error(self):
        with pytest.raises(InputSizeError, match="too small.*at least 32"):
            self.model()(torch.rand(1, 3, 16, 64))
