"""Aligned Xception-65: timm name/shape parity and numeric parity with timm's implementation.

Run: .venv/bin/python -m pytest tests/models/test_backbone.py -q

The golden files were produced once from timm 1.0.31's own ``timm/models/xception_aligned.py`` (run from
its wheel with torchvision stubbed out, since timm cannot be imported here):
- ``golden/timm_xception65_state_dict.tsv``: every state-dict key of ``timm.create_model('xception65')``
  with its shape;
- ``golden/timm_xception65_outputs.json``: our seeded backbone's state dict (see ``_seeded_backbone``)
  loaded into timm's model with ``strict=True``, and timm's stride-4 feature tap, final feature and logits
  on a fixed 67x93 input at output stride 16 and 8.
"""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sosd.errors import SOSDError
from sosd.models.backbone import XceptionAligned
from sosd.models.pretrained import load_timm_xception

GOLDEN = Path(__file__).parent / "golden"


def _seeded_backbone(output_stride=16):
    torch.manual_seed(0)
    m = XceptionAligned("xception65", output_stride=output_stride, num_classes=1000)
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
    return m.eval()


def test_state_dict_names_and_shapes_equal_timm():
    expected = []
    for line in (GOLDEN / "timm_xception65_state_dict.tsv").read_text().splitlines():
        name, shape = line.split("\t")
        expected.append((name, tuple(json.loads(shape.replace("(", "[").replace(")", "]").replace(",]", "]")))))
    ours = [(k, tuple(v.shape)) for k, v in XceptionAligned("xception65", num_classes=1000).state_dict().items()]
    assert len(expected) == 794
    assert ours == expected  # same names, same order, same shapes


@pytest.mark.parametrize("output_stride", [16, 8])
def test_outputs_equal_timm_with_the_same_weights(output_stride):
    gold = json.loads((GOLDEN / "timm_xception65_outputs.json").read_text())[str(output_stride)]
    m = _seeded_backbone(output_stride)
    x = torch.rand(1, 3, 67, 93, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        refined, deep = m(x)
        logits = m.head(deep)
    assert list(refined.shape) == gold["refined_shape"]  # stride 4 (ceil), 256 channels
    assert list(deep.shape) == gold["deep_shape"]
    assert refined.double().sum().item() == pytest.approx(gold["refined_sum"], rel=1e-4)
    assert deep.double().sum().item() == pytest.approx(gold["deep_sum"], rel=1e-4)
    assert deep[0, :5, 1, 1].tolist() == pytest.approx(gold["deep_sample"], abs=1e-4)
    assert logits[0, :5].tolist() == pytest.approx(gold["logits_sample"], abs=1e-4)


def test_timm_weights_file_loads_strict_into_headless_backbone(tmp_path):
    src = _seeded_backbone()
    f = tmp_path / "xception65.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(f))  # a timm-style file, head included
    dst = XceptionAligned("xception65", num_classes=0)
    load_timm_xception(dst, str(f))
    for k, v in dst.state_dict().items():
        assert torch.equal(v, src.state_dict()[k]), k


def test_wrong_weights_file_gives_clear_error(tmp_path):
    f = tmp_path / "small.safetensors"
    save_file({k: v.contiguous() for k, v in XceptionAligned("xception_small").state_dict().items()}, str(f))
    with pytest.raises(SOSDError, match="does not match.*missing keys"):
        load_timm_xception(XceptionAligned("xception65"), str(f))
    with pytest.raises(SOSDError, match="does not exist|neither an existing file"):
        load_timm_xception(XceptionAligned("xception65"), str(tmp_path / "absent.safetensors"))


def test_output_stride_8_dilates_instead_of_striding():
    m = XceptionAligned("xception_small", output_stride=8).eval()
    refined, deep = m(torch.rand(1, 3, 64, 96))
    assert refined.shape[-2:] == (16, 24) and deep.shape[-2:] == (8, 12)
