"""Hub-style folders: save_pretrained / from_pretrained round trip, model card, clear errors, and timm
Xception-65 ImageNet weights loading into the backbone from a local file.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_hub.py
"""
import json
import sys
import types

import numpy as np
import pytest
import torch

import sosd
from sosd.errors import SOSDError
from sosd.hub import from_pretrained, save_pretrained
from sosd.checkpoint import load_model
from sosd.train.loop import fit
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hub")
    cfg = tiny_config(tmp)
    summary = fit(cfg, progress=False)
    return tmp / "runs" / "tiny", cfg, summary["metrics"]


def _input(h=48, w=64):
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, h, w, generator=g)


def test_save_pretrained_round_trip_is_identical(tiny_run, tmp_path):
    run, cfg, metrics = tiny_run
    model, cfg_loaded, _ = load_model(run, with_meta=True)
    out = save_pretrained(model, tmp_path / "tiny-sosd", cfg_loaded, metrics=metrics)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    doc = json.loads((out / "config.json").read_text())
    assert doc["format_version"] == 1 and doc["target_kind"] == "depth"
    assert doc["config"]["model"]["variant"] == "sosd" and doc["config"]["data"]["height"] == 48
    assert doc["class_names"][:3] == ["floor", "wall", "ceiling"]

    pred = from_pretrained(out)
    assert pred.class_names == doc["class_names"] and pred.target_kind == "depth"
    x = _input()
    with torch.no_grad():
        a, b = model.eval()(x), pred.model(x)
    assert a.keys() == b.keys() == {"depth", "semantic"}
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the Predictor API gives the same maps as the run folder's, and sosd.load reads the folder too
    img = (np.random.default_rng(1).random((100, 150, 3)) * 255).astype(np.uint8)
    p0, p1, p2 = sosd.load(run).predict(img), pred.predict(img), sosd.load(out).predict(img)
    for p in (p1, p2):
        np.testing.assert_array_equal(p.depth, p0.depth)
        np.testing.assert_array_equal(p.labels, p0.labels)
    assert p2.class_names == p0.class_names


def test_save_a_predictor_and_reload_it(tiny_run, tmp_path):
    run, _, _ = tiny_run
    pred = sosd.load(run)
    out = save_pretrained(pred, tmp_path / "from-predictor")
    again = from_pretrained(str(out))
    x = _input()
    with torch.no_grad():
        assert torch.equal(pred.model(x)["depth"], again.model(x)["depth"])
    assert again.class_names == pred.class_names


def test_model_card_names_variant_training_and_metrics(tiny_run, tmp_path):
    run, _, metrics = tiny_run
    model, cfg = load_model(run)
    card = (save_pretrained(model, tmp_path / "card", cfg, metrics=metrics) / "README.md").read_text()
    front = card.split("---")[1]
    assert "library_name: sosd" in front and "datasets:" in front and "tags:" in front
    assert "semantic-segmentation" in front
    assert "**Variant:** `sosd`" in card and "SOSD-Net" in card
    assert "xception_small" in card and "48x64" in card and "joint" in card
    assert "## Metrics" in card
    for k in ("rel", "miou"):
        assert f"| {k}" in card and f"{metrics[k]:.4g}" in card
    assert "from_pretrained(" in card
    # without metrics there is no metrics table
    card2 = (save_pretrained(model, tmp_path / "card2", cfg) / "README.md").read_text()
    assert "## Metrics" not in card2


def test_street_model_defaults_to_disparity(tmp_path):
    cfg = tiny_config(tmp_path, **{"data.preset": "street"})
    model = sosd.build_model(cfg.model)
    out = save_pretrained(model, tmp_path / "street", cfg)
    doc = json.loads((out / "config.json").read_text())
    assert doc["target_kind"] == "disparity" and len(doc["class_names"]) == cfg.model.num_classes
    assert "disparity-estimation" in (out / "README.md").read_text()
    assert from_pretrained(out).target_kind == "disparity"


def test_wrong_config_or_class_count_is_refused(tiny_run, tmp_path):
    run, _, _ = tiny_run
    model, cfg = load_model(run)
    other = tiny_config(tmp_path, **{"model.decoder_channels": 32})
    with pytest.raises(SOSDError, match="does not describe this model"):
        save_pretrained(model, tmp_path / "x", other)
    with pytest.raises(SOSDError, match="class names"):
        save_pretrained(model, tmp_path / "y", cfg, class_names=["a", "b"])


def test_missing_folder_and_offline_hub_id_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(SOSDError, match="neither an existing local folder nor a Hugging Face Hub id"):
        from_pretrained(tmp_path / "no" / "such" / "folder")

    calls = []

    def offline(**kw):
        calls.append(kw)
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    fake = types.ModuleType("huggingface_hub")
    fake.snapshot_download = offline
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    with pytest.raises(SOSDError, match=r"downloading it from the Hugging Face Hub failed.*Offline\?") as e:
        from_pretrained("someone/sosd-indoor@v1")
    assert "someone/sosd-indoor" in str(e.value) and "couldn't connect" in str(e.value)
    assert calls and calls[0]["repo_id"] == "someone/sosd-indoor" and calls[0]["revision"] == "v1"

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    with pytest.raises(SOSDError, match=r"pip install 'sosd\[hub\]'"):
        from_pretrained("hf-hub:someone/sosd-indoor")


def test_hub_download_is_used_for_hub_ids(tiny_run, tmp_path, monkeypatch):
    run, _, _ = tiny_run
    model, cfg = load_model(run)
    folder = save_pretrained(model, tmp_path / "snap", cfg)
    fake = types.ModuleType("huggingface_hub")
    fake.snapshot_download = lambda **kw: str(folder)
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    pred = from_pretrained("someone/sosd-indoor")
    with torch.no_grad():
        assert torch.equal(pred.model(_input())["semantic"], model(_input())["semantic"])


def test_folder_that_is_not_sosd_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(SOSDError, match="not a sosd config"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SOSDError, match="cannot read"):
        from_pretrained(tmp_path)


def test_timm_xception65_weights_load_from_a_local_safetensors_file(tmp_path):
    """timm's ImageNet checkpoint layout (with the 1000-class head) loads into the model's backbone via
    ModelConfig.pretrained=<file>; the head is dropped, every backbone tensor is the file's."""
    from safetensors.torch import save_file

    from sosd.config import ModelConfig
    from sosd.models import build_model
    from sosd.models.backbone import XceptionAligned

    torch.manual_seed(123)
    timm_like = XceptionAligned("xception65", num_classes=1000)
    with torch.no_grad():  # make BatchNorm statistics non-default too
        for name, t in timm_like.state_dict().items():
            if name.endswith(("running_mean", "running_var")):
                t.copy_(torch.rand_like(t) + 0.5)
    sd = {k: v.contiguous() for k, v in timm_like.state_dict().items()}
    assert "head.fc.weight" in sd and sd["head.fc.weight"].shape == (1000, 2048)
    path = tmp_path / "xception65.safetensors"
    save_file(sd, str(path))

    model = build_model(ModelConfig(backbone="xception65", num_classes=5, aspp_channels=16,
                                    decoder_channels=16, refined_channels=8, pretrained=str(path)))
    got = model.backbone.state_dict()
    assert set(got) == {k for k in sd if not k.startswith("head.")}
    for k, v in got.items():
        assert torch.equal(v, sd[k]), k

    with pytest.raises(SOSDError, match="does not match"):  # the small backbone cannot take them
        build_model(ModelConfig(backbone="xception_small", num_classes=5, pretrained=str(path)))
    with pytest.raises(SOSDError, match="does not exist|neither"):
        build_model(ModelConfig(backbone="xception65", num_classes=5, pretrained=str(tmp_path / "nope.st")))
