"""The jd strategy: every torchjd aggregator and scalarizer trains the mtl and the sosd variant from a
config (2 steps on one shared tiny model and batch: finite losses, the trunk and the heads move), and
its config errors. Agreement of the aliases with the hand-computed cases: test_mtl_methods.py; 1 vs 2
processes: test_distributed.py.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/train/test_jd.py -q
"""
import copy
import math

import pytest
import torch

from sosd.config import ConfigError, load_config
from sosd.train.strategies import build_strategy
from sosd.train.strategies.jd import AGGREGATORS, SCALARIZERS
from tests.conftest import tiny_config

pytestmark = pytest.mark.filterwarnings("ignore:You are solving a parameterized problem that is not DPP")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny model per variant and one batch of 2 (32x32 images), shared by every method."""
    from torch.utils.data import DataLoader

    from sosd.data import build_dataset
    from sosd.models import build_model

    tmp = tmp_path_factory.mktemp("jd")
    out = {}
    for variant in ("mtl", "sosd"):
        cfg = tiny_config(tmp, variant=variant, **{"data.height": 32, "data.width": 32})
        torch.manual_seed(0)
        model = build_model(cfg.model)
        batch = next(iter(DataLoader(build_dataset(cfg.data, "train", train=True, seed=0), batch_size=2)))
        out[variant] = (cfg, model, batch)
    return tmp, out


def _train(tiny, variant, over, steps=2):
    """``steps`` optimiser steps of the strategy the overrides name, as the loop does them."""
    _, runs = tiny
    base, model0, batch = runs[variant]
    cfg = copy.deepcopy(base)
    for key, value in over.items():
        obj = cfg
        *path, leaf = key.split(".")
        for p in path:
            obj = getattr(obj, p)
        setattr(obj, leaf, value)
    model = copy.deepcopy(model0)
    strategy = build_strategy(cfg.train)
    opt = torch.optim.Adam(list(model.parameters()) + strategy.extra_parameters(), lr=1e-3)
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = []
    for step in range(steps):
        strategy.prepare(model, step, 0)
        opt.zero_grad(set_to_none=True)
        out = strategy.losses(model, batch)
        strategy.backward(out, 1.0)
        strategy.finish(model)
        opt.step()
        strategy.after_step(model, step)
        losses.append({k: float(v.detach()) for k, v in out.items()})
    return model, before, losses, strategy


def _check_trained(model, before, losses, strategy):
    for row in losses:
        assert all(math.isfinite(v) for v in row.values()), row
    groups = model.parameter_groups()
    names = {id(p): n for n, p in model.named_parameters()}
    moved = lambda ps: any(not torch.equal(p.detach(), before[names[id(p)]]) for p in ps)  # noqa: E731
    assert moved(groups["com"]), "the shared trunk did not move"
    assert moved(groups["sem"]) and moved(groups["dep"]), "a task head did not move"
    assert all(math.isfinite(v) for v in strategy.log_scalars().values())


@pytest.mark.parametrize("variant", ["mtl", "sosd"])
@pytest.mark.parametrize("name", list(AGGREGATORS))
def test_every_aggregator_trains(tiny, name, variant):
    _check_trained(*_train(tiny, variant, {"train.strategy": "jd", "train.jd.aggregator": name}))


@pytest.mark.parametrize("variant", ["mtl", "sosd"])
@pytest.mark.parametrize("name", list(SCALARIZERS))
def test_every_scalarizer_trains(tiny, name, variant):
    model, before, losses, strategy = _train(tiny, variant, {"train.strategy": "jd", "train.jd.scalarizer": name})
    _check_trained(model, before, losses, strategy)
    if name in ("UW", "IMTLL"):  # learned task weights: optimised with the network
        assert strategy.extra_parameters() and all(p.grad is not None for p in strategy.extra_parameters())
    if name == "FAMO":  # its logits stepped after each step from the re-evaluated losses
        assert not torch.equal(strategy.scalarizer._w.detach(), torch.zeros(2))


def test_aggregator_kwargs_from_the_config_and_the_global_rng_untouched(tiny):
    cfg = load_config(None, ["train.strategy=jd", "train.jd.aggregator=CAGrad", "train.jd.kwargs={c: 0.25}"])
    assert build_strategy(cfg.train).aggregator.c == 0.25
    cfg = load_config(None, ["train.strategy=jd", "train.jd.scalarizer=Constant",
                             "train.jd.kwargs={weights: [1, 2]}"])
    assert build_strategy(cfg.train).scalarizer.weights.tolist() == [1.0, 2.0]
    # PCGrad's task order and Random's weights come from the strategy's own generator
    state = torch.random.get_rng_state()
    _train(tiny, "mtl", {"train.strategy": "jd", "train.jd.aggregator": "Random"}, steps=1)
    _train(tiny, "mtl", {"train.strategy": "pcgrad"}, steps=1)
    assert torch.equal(state, torch.random.get_rng_state())
    # ... and are reproducible from train.seed
    a = _train(tiny, "mtl", {"train.strategy": "jd", "train.jd.aggregator": "Random"}, steps=1)[0]
    b = _train(tiny, "mtl", {"train.strategy": "jd", "train.jd.aggregator": "Random"}, steps=1)[0]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_config_errors():
    def strat(*over):
        return build_strategy(load_config(None, ["train.strategy=jd", *over]).train)

    with pytest.raises(ConfigError, match="unknown train.jd.aggregator 'UPgrad'.*UPGrad"):
        strat("train.jd.aggregator=UPgrad")
    with pytest.raises(ConfigError, match="unknown train.jd.scalarizer 'Famo'.*FAMO"):
        strat("train.jd.scalarizer=Famo")
    with pytest.raises(ConfigError, match="Krum needs at least 3 objectives"):
        strat("train.jd.aggregator=Krum")
    with pytest.raises(ConfigError, match="train.jd.kwargs .* do not fit torchjd's UPGrad"):
        strat("train.jd.kwargs={q: 1}")
    with pytest.raises(ConfigError, match="train.jd.kwargs.*mapping"):
        load_config(None, ["train.jd.kwargs=[1, 2]"])
    # per-process loss statistics: refused under torchrun; the gradient methods reduce their own gradients
    assert not strat("train.jd.scalarizer=FAMO").supports_ddp
    assert strat("train.jd.scalarizer=UW").supports_ddp and not strat("train.jd.scalarizer=UW").reduces_gradients
    assert strat("train.jd.aggregator=NashMTL").reduces_gradients


def test_without_torchjd_the_error_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torchjd.aggregation", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'sosd\[mtl\]'"):
        build_strategy(load_config(None, ["train.strategy=pcgrad"]).train)
    build_strategy(load_config(None, ["train.strategy=cagrad"]).train)  # ours: needs no torchjd


def test_jd_through_the_training_loop(tmp_path):
    from sosd.train.loop import Trainer

    cfg = tiny_config(tmp_path, variant="sosd", strategy="jd", steps=2, **{"train.jd.aggregator": "UPGrad"})
    t = Trainer(cfg, tmp_path / "r", progress=False)
    t.train_steps()
    assert len(t.state.history) == 2 and all(math.isfinite(h["loss"]) for h in t.state.history)
    assert "mtl/grad_cos" in t.strategy.log_scalars()
