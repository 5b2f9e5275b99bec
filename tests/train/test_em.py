"""EM training (§3.3, Algorithm 1): what moves and what stays frozen in each phase.

Run: .venv/bin/python -m pytest tests/train/test_em.py -q
"""
import pytest
import torch

from sosd.train.loop import Trainer
from sosd.train.strategies.em import EM
from tests.conftest import tiny_config


def _snapshot(trainer):
    model_state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    opt_state = {id(p): {k: v.clone() for k, v in st.items()} for p, st in trainer.optimizer.state.items()}
    return model_state, opt_state


def _names(model, groups):
    ids = {id(p) for g in groups for p in model.parameter_groups()[g]}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def _buffers_of(model, side):
    return {f"{n}" for n, _ in model.named_buffers()
            if any(n.startswith(prefix) for prefix in _module_prefixes(model, side))}


def _module_prefixes(model, side):
    mods = {id(m) for m in model.side_modules(side)}
    return [n + "." for n, m in model.named_modules() if id(m) in mods]


@pytest.mark.parametrize("phase_step", [0, 1])
def test_frozen_side_and_its_optimizer_state_do_not_change(tmp_path, phase_step):
    cfg = tiny_config(tmp_path, strategy="em", steps=4)
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    tr.train_steps(until=2)  # both phases have run once: every Adam state exists
    assert tr.state.step == 2
    # step 2 is a depth phase, step 3 a semantic phase (alternate every step, depth first)
    tr.train_steps(until=2 + phase_step)
    phase = tr.strategy.phase_at(tr.state.step, 0)
    frozen_side = "semantic" if phase == "depth" else "depth"
    frozen_groups = ("sem", "d2s_3d", "d2s_inv_depth") if frozen_side == "semantic" else ("dep", "s2d_3d", "s2d_2d")
    live_groups = ("dep", "s2d_3d", "s2d_2d") if frozen_side == "semantic" else ("sem", "d2s_3d", "d2s_inv_depth")
    before, opt_before = _snapshot(tr)
    tr.train_steps(until=tr.state.step + 1)
    after, opt_after = _snapshot(tr)
    frozen, live, trunk = _names(tr.model, frozen_groups), _names(tr.model, live_groups), _names(tr.model, ["com"])
    assert frozen and live and trunk
    for n in frozen:  # parameters of the frozen side: bit-identical
        assert torch.equal(before[n], after[n]), f"{n} changed in the {phase} phase"
    for n in _buffers_of(tr.model, frozen_side):  # BatchNorm running statistics too
        assert torch.equal(before[n], after[n]), f"buffer {n} changed in the {phase} phase"
    params = dict(tr.model.named_parameters())
    for n in frozen:  # Adam moments and step count of frozen parameters do not advance
        for k, v in opt_before[id(params[n])].items():
            assert torch.equal(v, opt_after[id(params[n])][k]), f"Adam {k} of {n} advanced"
    for g in live_groups + ("com",):  # every live group of Algorithm 1 steps in its phase, not just one
        names = _names(tr.model, [g])
        assert names, g
        assert any(not torch.equal(before[n], after[n]) for n in names), f"group {g} did not move in the {phase} phase"


def test_phase_schedule():
    from sosd.config import TrainConfig, EMConfig

    em = EM(TrainConfig(strategy="em"))
    assert [em.phase_at(s, 0) for s in range(4)] == ["depth", "semantic", "depth", "semantic"]
    em = EM(TrainConfig(strategy="em", em=EMConfig(switch_every=3)))
    assert [em.phase_at(s, 0) for s in range(7)] == ["depth"] * 3 + ["semantic"] * 3 + ["depth"]
    em = EM(TrainConfig(strategy="em", em=EMConfig(switch_unit="epoch", first_phase="semantic")))
    assert [em.phase_at(100, e) for e in range(3)] == ["semantic", "depth", "semantic"]


@pytest.mark.parametrize("phase_step", [0, 1])
def test_alpha_weights_the_trunk_gradient_per_branch(tmp_path, phase_step):
    """eq. (5): with alpha = (a, b, c) the trunk gradient is a*g_1 + b*g_2 + c*g_3 (linearity), in the depth
    phase (dep, 3d, 2d) and in the semantic phase (sem, 3d, d^-2)."""
    cfg = tiny_config(tmp_path, strategy="em")
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    model = tr.model
    batch = next(iter(tr._loader(0, 0)))
    em = tr.strategy

    def trunk_grad(alpha):
        cfg.train.em.alpha = list(alpha)
        em.prepare(model, phase_step, 0)  # step 0: depth phase, step 1: semantic phase
        assert em.phase == ("depth", "semantic")[phase_step]
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        em.losses(model, batch)["loss"].backward()
        return torch.cat([p.grad.flatten() for p in model.parameter_groups()["com"] if p.grad is not None])

    model.eval()  # BatchNorm in eval mode: the forward is identical across the calls below
    g = {a: trunk_grad(a) for a in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (0.5, 2, 3)]}
    torch.testing.assert_close(g[(1, 1, 1)], g[(1, 0, 0)] + g[(0, 1, 0)] + g[(0, 0, 1)], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(g[(0.5, 2, 3)], 0.5 * g[(1, 0, 0)] + 2 * g[(0, 1, 0)] + 3 * g[(0, 0, 1)],
                               rtol=1e-4, atol=1e-6)
    # each branch reaches the trunk (the 2d branch through theta^sem, the d^-2 branch through theta^dep),
    # and the three contributions are different (a mutant applying one alpha to all would make them equal)
    for a in [(1, 0, 0), (0, 1, 0), (0, 0, 1)]:
        assert g[a].abs().sum() > 0, a
    assert not torch.allclose(g[(1, 0, 0)], g[(0, 1, 0)]) and not torch.allclose(g[(0, 1, 0)], g[(0, 0, 1)])
    # only this phase's side is weighted: the other side's alphas stay at 1
    other = "semantic" if phase_step == 0 else "depth"
    assert model.alphas[other] == (1.0, 1.0, 1.0)
    assert model.alphas["depth" if phase_step == 0 else "semantic"] == (0.5, 2.0, 3.0)


def test_skipping_the_frozen_head_trains_the_same_weights(tmp_path):
    """EM computes the frozen side's output only on logged steps (it is reported, never optimised): five
    steps logged every step and five logged at steps 4 and 5 (the last) give bit-identical weights,
    BatchNorm statistics and logged losses."""
    runs = {}
    for log_every in (1, 4):
        cfg = tiny_config(tmp_path / str(log_every), strategy="em", steps=5, **{"train.log_every": log_every})
        tr = Trainer(cfg, tmp_path / str(log_every) / "run", progress=False)
        tr.train_steps()
        runs[log_every] = tr
    assert [r["step"] for r in runs[4].state.history] == [4, 5]
    for row in runs[4].state.history:
        assert {"sem", "dep"} <= set(row)
        assert row == runs[1].state.history[row["step"] - 1]
    a, b = runs[1].model.state_dict(), runs[4].model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_the_frozen_head_is_skipped_off_the_logged_steps(tmp_path):
    cfg = tiny_config(tmp_path, strategy="em", steps=6, **{"train.log_every": 3})
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    seen = []
    tr.model.depth_to_semantic.register_forward_hook(lambda *a: seen.append(("sem", tr.state.step)))
    tr.model.semantic_to_depth.register_forward_hook(lambda *a: seen.append(("dep", tr.state.step)))
    tr.train_steps()
    # steps 0..5 alternate depth, semantic; steps 2 and 5 are logged (after them the step count is 3, 6)
    assert seen == [("dep", 0), ("sem", 1), ("dep", 2), ("sem", 2), ("sem", 3), ("dep", 4),
                    ("dep", 5), ("sem", 5)]
