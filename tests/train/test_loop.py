"""The training loop: resume exactness, determinism, checkpoints, non-finite losses, the CLI.

Run: .venv/bin/python -m pytest tests/train/test_loop.py -q
"""
import json

import pytest
import torch

from sosd import checkpoint as ckpt
from sosd.cli import main
from sosd.config import dump_config, load_config
from sosd.errors import SOSDError
from sosd.train.loop import NonFiniteLoss, Trainer, fit
from tests.conftest import tiny_config


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("strategy,variant", [("em", "sosd"), ("joint", "mtl")])
def test_resume_is_bit_identical(tmp_path, strategy, variant):
    # 2N steps in one go vs N, checkpoint, fresh process state, resume, N more (N crosses an epoch: 16/2=8)
    n = 5
    cfg = tiny_config(tmp_path, variant=variant, strategy=strategy, steps=2 * n, **{"data.augment": "true"})
    a = Trainer(cfg, tmp_path / "a", progress=False)
    a.train_steps()
    b = Trainer(cfg, tmp_path / "b", progress=False)
    b.train_steps(until=n)
    path = b.save(f"step_{n:07d}")
    torch.manual_seed(1234)  # disturb the global RNG: resume must restore it
    c = Trainer(cfg, tmp_path / "b", progress=False)
    c.resume(path)
    assert c.state.step == n
    c.train_steps()
    wa, wc = _weights(a), _weights(c)
    assert wa.keys() == wc.keys()
    for k in wa:
        assert torch.equal(wa[k], wc[k]), k
    assert [h["loss"] for h in a.state.history] == [h["loss"] for h in c.state.history]


def test_same_config_and_seed_give_identical_losses(tmp_path):
    cfg = tiny_config(tmp_path, steps=3)
    runs = []
    for name in ("x", "y"):
        t = Trainer(cfg, tmp_path / name, progress=False)
        t.train_steps()
        runs.append([h["loss"] for h in t.state.history])
    assert runs[0] == runs[1] and len(runs[0]) == 3
    cfg2 = tiny_config(tmp_path, steps=3, **{"train.seed": 1})
    t = Trainer(cfg2, tmp_path / "z", progress=False)
    t.train_steps()
    assert [h["loss"] for h in t.state.history] != runs[0]


def test_fit_writes_the_run_folder_and_resumes_from_it(tmp_path):
    cfg = tiny_config(tmp_path, steps=4, **{"train.ckpt_every": 2, "train.val_every": 2,
                                            "train.best_metric": "rel", "data.val_split": "val"})
    summary = fit(cfg, progress=False)
    run = tmp_path / "runs" / "tiny"
    for f in ("config.yaml", "metrics.json", "predictions.png", "checkpoints/latest", "checkpoints/best/model.safetensors"):
        assert (run / f).exists(), f
    assert list((run / "tensorboard").iterdir())
    assert not list((run / "checkpoints").glob(".*tmp*"))  # no half-written checkpoint left behind
    m = json.loads((run / "metrics.json").read_text())
    assert m["steps"] == 4 and 0 <= m["metrics"]["miou"] <= 1 and m["metrics"]["rel"] > 0
    assert summary["metrics"]["n_images"] == 4
    # the saved config reloads to the same config (round trip)
    assert load_config(run / "config.yaml") == cfg
    # weights alone rebuild the model
    model, cfg_back = ckpt.load_model(run)
    assert cfg_back.model == cfg.model
    with pytest.raises(SOSDError, match="already holds checkpoints"):
        fit(cfg, progress=False)
    cfg.train.steps = 6  # extend the run
    fit(cfg, resume=str(run), progress=False)
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6


def test_checkpoint_of_another_variant_is_a_clear_error(tmp_path):
    cfg = tiny_config(tmp_path, variant="mtl", steps=1)
    fit(cfg, progress=False)
    other = tiny_config(tmp_path, variant="sosd", steps=2, **{"train.name": "other"})
    t = Trainer(other, tmp_path / "o", progress=False)
    with pytest.raises(SOSDError, match="does not fit the model.*variant sosd"):
        t.resume(tmp_path / "runs" / "tiny")


def test_non_finite_loss_stops_with_step_and_samples(tmp_path):
    cfg = tiny_config(tmp_path, steps=3, **{"train.lr": 1e30, "train.ckpt_every": 1})
    t = Trainer(cfg, tmp_path / "r", progress=False)
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss at step \d+ .* on samples \[\d+, \d+\]"):
        t.train_steps()
    last = ckpt.resolve(tmp_path / "r")  # the last good checkpoint is still readable
    ckpt.read_weights(last)
    cfg.train.nonfinite = "skip"
    t = Trainer(cfg, tmp_path / "s", progress=False)
    t.train_steps()
    assert t.state.skipped >= 1


def test_cli_smoke(tmp_path, capsys):
    cfg = tiny_config(tmp_path, steps=2)
    dump_config(cfg, tmp_path / "c.yaml")
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--no-progress", "train.name=cli"]) == 0
    out = capsys.readouterr().out
    assert "Mean IoU" in out and "wrote" in out
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "train.stpes=3"]) == 2
    assert "did you mean 'steps'" in capsys.readouterr().err


def test_every_shipped_config_loads():
    from pathlib import Path

    files = sorted(Path(__file__).resolve().parents[2].glob("configs/**/*.yaml"))
    assert len(files) >= 20
    for f in files:
        load_config(f)


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [1.0] * 10),
    ("cosine", None),  # checked below: falls from 1 towards 0
    # warm-up, stable, decay: full rate, then linear over the last 4 steps (never 0: step 9 still learns)
    ("wsd", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25]),
])
def test_learning_rate_schedules(schedule, expected):
    from sosd.config import load_config
    from sosd.train.loop import lr_factor

    cfg = load_config(None, ["train.steps=10", f"train.schedule={schedule}", "train.decay_steps=4"])
    got = [lr_factor(cfg, s) for s in range(10)]
    if expected is None:
        assert got[0] == 1.0 and all(a > b for a, b in zip(got, got[1:])) and got[-1] < 0.05
    else:
        assert got == pytest.approx(expected)


def test_wsd_needs_its_decay_steps():
    from sosd.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="train.decay_steps"):
        load_config(None, ["train.steps=10", "train.schedule=wsd"])
    with pytest.raises(ConfigError, match="train.decay_steps"):
        load_config(None, ["train.steps=10", "train.schedule=wsd", "train.decay_steps=11"])
