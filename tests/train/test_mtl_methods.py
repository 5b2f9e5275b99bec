"""The multi-task baselines (strategies kendall, gradnorm, mgda, equal, dwa, pcgrad, cagrad, aligned_mtl):
each method on a case whose answer is computed by hand, then 2 training steps of each on the mtl and the
sosd variant, and bit-exact resume of the stateful ones. pcgrad and aligned_mtl are torchjd's (their
hand-computed cases run on torchjd's aggregators); the others are ours, and the cases below show where
torchjd's version differs (CAGrad's solver tolerance, UW's semantic term).

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/train/test_mtl_methods.py -q
"""
import math
from types import SimpleNamespace

import pytest
import torch

from sosd.config import ConfigError, TrainConfig, load_config
from sosd.train.loop import Trainer
from sosd.train.strategies import STRATEGIES, build_strategy
from sosd.train.strategies.cagrad import cagrad, solve_2task
from sosd.train.strategies.dwa import DWA, dwa_weights
from sosd.train.strategies.gradients import GradientMethod, gram
from sosd.train.strategies.gradnorm import GradNorm
from sosd.train.strategies.kendall import Kendall
from sosd.train.strategies.mgda import mgda_weights
from sosd.train.strategies.jd import AGGREGATORS, SCALARIZERS
from tests.conftest import tiny_config

METHODS = ("equal", "kendall", "gradnorm", "mgda", "dwa", "pcgrad", "cagrad", "aligned_mtl")
TWO_TASK_MODEL = SimpleNamespace(has_semantic=True, has_depth=True, cfg=SimpleNamespace(variant="mtl"))


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def G(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def pcgrad(grads, generator=None):
    """What train.strategy=pcgrad runs: torchjd's PCGrad (the sum of the projected gradients)."""
    return AGGREGATORS["PCGrad"]({})(grads)


def aligned_weights(gg, scale="min"):
    """What train.strategy=aligned_mtl runs: torchjd's AlignedMTLWeighting with pref_vector (1, 1)."""
    return AGGREGATORS["AlignedMTL"]({"pref_vector": [1.0, 1.0], "scale_mode": scale}).gramian_weighting(
        gg.float()).double()  # float32 like the training gradients (the preference vector's dtype)


# ----------------------------------------------------------------------------------------------- MGDA
def test_mgda_min_norm_by_hand():
    # gamma = (g2 - g1).g2 / ||g1 - g2||^2, clipped to [0, 1]; weights (gamma, 1 - gamma)
    # g1=(1,0), g2=(0,1): (-1,1).(0,1) = 1, ||(1,-1)||^2 = 2 -> gamma = 1/2: the midpoint (1/2, 1/2)
    assert mgda_weights(G((1, 0), (0, 1))) == pytest.approx((0.5, 0.5))
    # g1=(1,0), g2=(2,0): (1,0).(2,0) = 2, ||(-1,0)||^2 = 1 -> gamma = 2 -> 1: all weight on the shorter g1
    assert mgda_weights(G((1, 0), (2, 0))) == pytest.approx((1.0, 0.0))
    # g1=(3,0), g2=(0,1): (-3,1).(0,1) = 1, ||(3,-1)||^2 = 10 -> gamma = 0.1; 0.1*(3,0)+0.9*(0,1) = (0.3,0.9),
    # orthogonal to g1 - g2 = (3,-1): the foot of the perpendicular from 0 on the segment
    assert mgda_weights(G((3, 0), (0, 1))) == pytest.approx((0.1, 0.9))
    # identical gradients: every combination is the same vector -> 1/2, 1/2
    assert mgda_weights(G((1, 1), (1, 1))) == pytest.approx((0.5, 0.5))


def test_mgda_normalisation():
    # "loss": g_i / L_i; L = (1, 2): g1=(1,0), g2=(0,1/2): (-1,1/2).(0,1/2) = 1/4, ||(1,-1/2)||^2 = 5/4 -> 1/5
    assert mgda_weights(G((1, 0), (0, 1)), [1.0, 2.0], "loss") == pytest.approx((0.2, 0.8))
    # "l2": both become (1,0): identical -> 1/2 (unnormalised it was all on g1)
    assert mgda_weights(G((1, 0), (2, 0)), [1.0, 1.0], "l2") == pytest.approx((0.5, 0.5))
    # "loss+": g_i / (L_i ||g_i||); L = (1, 1) is l2
    assert mgda_weights(G((1, 0), (2, 0)), [1.0, 1.0], "loss+") == pytest.approx((0.5, 0.5))
    assert mgda_weights(G((1, 0), (0, 1)), [1.0, 2.0], "none") == pytest.approx((0.5, 0.5))


# --------------------------------------------------------------------------------------------- PCGrad
def test_pcgrad_projects_conflicts_by_hand():
    # g1=(1,0), g2=(-1,1): g1.g2 = -1 < 0
    # g1' = g1 - (g1.g2)/||g2||^2 g2 = (1,0) + 1/2 (-1,1) = (1/2, 1/2)   (g1'.g2 = 0)
    # g2' = g2 - (g2.g1)/||g1||^2 g1 = (-1,1) + (1,0) = (0, 1)          (g2'.g1 = 0)
    gen = torch.Generator().manual_seed(0)
    assert torch.allclose(pcgrad(G((1, 0), (-1, 1)), gen), G((0.5, 1.5))[0])
    # no conflict (g1.g2 = 1 > 0): unchanged, the plain sum
    assert torch.allclose(pcgrad(G((1, 0), (1, 1)), gen), G((2, 1))[0])
    # orthogonal (g1.g2 = 0): no conflict either
    assert torch.allclose(pcgrad(G((1, 0), (0, 3)), gen), G((1, 3))[0])


def test_pcgrad_order_generator_is_checkpointed():
    a, b = STRATEGIES["pcgrad"](TrainConfig()), STRATEGIES["pcgrad"](TrainConfig())
    a.combine(G((1, 0), (-1, 1)))  # draws task orders (from its own generator, not the global RNG)
    b.load_state_dict(a.state_dict())
    assert torch.equal(torch.randperm(5, generator=a.generator), torch.randperm(5, generator=b.generator))


# --------------------------------------------------------------------------------------------- CAGrad
def test_cagrad_solves_its_defining_problem():
    grads = G((1.0, 0.0), (-0.8, 1.5))  # conflicting: g1.g2 < 0
    c = 0.5
    g0 = grads.mean(0)
    d = cagrad(grads, c, rescale=False)
    radius = c * g0.norm()
    # d lies on the ball ||d - g0|| <= c ||g0|| ...
    assert float((d - g0).norm()) == pytest.approx(float(radius), rel=1e-9)
    # ... and maximises the worst task's improvement min_i g_i.d over it (boundary and interior)
    best = float((grads @ d).min())
    ang = torch.linspace(0, 2 * math.pi, 20001, dtype=torch.float64)
    for rr in (1.0, 0.7, 0.3):
        ring = g0 + rr * radius * torch.stack([ang.cos(), ang.sin()], 1)
        assert float((ring @ grads.T).min(1).values.max()) <= best + 1e-9
    assert best > float((grads @ g0).min())  # better than the average gradient in the worst task
    # the dual variable minimises F(x) = g_w.g0 + c||g0|| ||g_w|| on the simplex (checked on a grid)
    x = solve_2task(gram(grads), c)
    xs = torch.linspace(0, 1, 10001, dtype=torch.float64)
    gw = xs[:, None] * grads[0] + (1 - xs[:, None]) * grads[1]
    f = gw @ g0 + radius * gw.norm(dim=1)
    fx = float((x * grads[0] + (1 - x) * grads[1]) @ g0 + radius * (x * grads[0] + (1 - x) * grads[1]).norm())
    assert fx <= float(f.min()) + 1e-12
    # rescale (the official default) divides by 1 + c^2; c = 0 is the average gradient
    assert torch.allclose(cagrad(grads, c), d / (1 + c * c))
    assert torch.allclose(cagrad(grads, 0.0), g0)


def test_torchjd_cagrad_is_ours_up_to_its_solver_tolerance():
    # why cagrad stays ours: torchjd's CAGrad (cvxpy CLARABEL) is the same update without the 1/(1+c^2)
    # rescale, but only to the solver's tolerance - not to the 1e-9 our defining-problem test demands
    grads = G((1.0, 0.0), (-0.8, 1.5))
    theirs = AGGREGATORS["CAGrad"]({"c": 0.5})(grads)
    ours = cagrad(grads, 0.5, rescale=False)
    err = float((theirs - ours).norm() / ours.norm())
    assert err < 1e-4
    torch.manual_seed(0)
    grads = torch.randn(2, 50, dtype=torch.float64)
    ours = cagrad(grads, 0.5, rescale=False)
    assert float((AGGREGATORS["CAGrad"]({"c": 0.5})(grads) - ours).norm() / ours.norm()) > 1e-9


# ----------------------------------------------------------------------------------------- Aligned-MTL
def test_aligned_mtl_by_hand():
    # orthogonal, equal norms: already aligned -> equal weights 1, 1 (the plain sum)
    assert torch.allclose(aligned_weights(gram(G((2, 0), (0, 2)))), G((1, 1))[0])
    assert torch.allclose(aligned_weights(gram(G((0, 5, 0), (3, 0, 4)))),
                          G((1, 1))[0])
    # orthogonal, norms 3 and 1: lambda = (9, 1), V = I: B = sqrt(1) diag(1/3, 1) -> alpha = (1/3, 1):
    # both scaled to the smallest norm
    assert torch.allclose(aligned_weights(gram(G((3, 0), (0, 1)))), G((1 / 3, 1))[0])
    # in general the aligned gradients B G are orthogonal with equal norms sqrt(lambda_min)
    grads = G((1.0, 0.2), (-0.6, 1.3))
    gg = gram(grads)
    lam, vec = torch.linalg.eigh(gg)
    b = lam.min().sqrt() * (vec / lam.sqrt()) @ vec.T
    aligned = b @ grads
    assert torch.allclose(aligned @ aligned.T, lam.min() * torch.eye(2, dtype=torch.float64))
    assert torch.allclose(aligned_weights(gg) @ grads, aligned.sum(0))


# --------------------------------------------------------------------------------------------- Kendall
@pytest.mark.parametrize("form", ["gaussian", "laplace"])
def test_kendall_gradient_vanishes_at_the_optimum(form):
    cfg = TrainConfig()
    cfg.mtl.kendall_depth_form = form
    k = Kendall(cfg)
    losses = {"sem": torch.tensor(0.7), "dep": torch.tensor(3.0)}
    # classification: exp(-s) L + s/2 -> -exp(-s) L + 1/2 = 0 -> s* = log(2L)
    # regression: exp(-s) L / 2 + s/2 (gaussian) or exp(-s) L + s (laplace) -> s* = log L
    with torch.no_grad():
        k.log_vars.copy_(torch.tensor([math.log(2 * 0.7), math.log(3.0)]))
    k.total(losses).backward()
    assert torch.allclose(k.log_vars.grad, torch.zeros(2), atol=1e-6)
    # why kendall stays ours: torchjd's UW writes 1/2 exp(-s) L + s/2 for every task, the regression form;
    # at our semantic optimum s* = log(2 L_sem) its gradient does not vanish (its s* is log L_sem)
    uw = SCALARIZERS["UW"]({})
    with torch.no_grad():
        uw.log_var.copy_(k.log_vars.detach())
    uw(torch.stack([losses["sem"], losses["dep"]])).backward()
    assert abs(float(uw.log_var.grad[0])) > 0.2
    if form == "gaussian":  # the depth term is the same
        assert abs(float(uw.log_var.grad[1])) < 1e-6
    # away from it the gradient points back to it (loss too small for sigma = 1 -> s decreases)
    k.log_vars.grad = None
    with torch.no_grad():
        k.log_vars.zero_()
    k.total({"sem": torch.tensor(0.1), "dep": torch.tensor(0.1)}).backward()
    assert (k.log_vars.grad > 0).all()
    logs = k.log_scalars()
    assert logs["kendall/sigma_sem"] == 1.0 and logs["kendall/sigma_dep"] == 1.0
    assert logs["mtl/w_dep"] == (1.0 if form == "laplace" else 0.5)


# -------------------------------------------------------------------------------------------- GradNorm
def test_gradnorm_favours_the_slower_task_and_keeps_the_sum():
    g = GradNorm(TrainConfig())
    g.load_state_dict({"initial": [2.0, 2.0]})
    w_layer = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    l_sem = w_layer[0] + 1.0   # 2: no decrease since t = 0 (L/L0 = 1), ||dL/dW|| = 1
    l_dep = w_layer[1] * 1.0   # 1: halved (L/L0 = 1/2), ||dL/dW|| = 1
    # G = (1, 1), mean 1; r = (1, 1/2) / 3/4 = (4/3, 2/3); targets (4/3)^1.5 = 1.54 > 1 > (2/3)^1.5 = 0.54
    # dL_grad/dw = sign(G - target) * ||dL/dW|| = (-1, +1)
    g.weight_backward([l_sem, l_dep], w_layer)
    assert torch.allclose(g.weights.grad, torch.tensor([-1.0, 1.0]))
    torch.optim.SGD([g.weights], lr=0.1).step()
    g.after_step(None, 0)
    assert torch.allclose(g.weights.detach(), torch.tensor([1.1, 0.9]))  # the slower task gains weight
    assert float(g.weights.detach().sum()) == pytest.approx(2.0)
    # renormalisation after an unbalanced update: back to sum T = 2
    with torch.no_grad():
        g.weights.copy_(torch.tensor([3.0, 1.0]))
    g.after_step(None, 1)
    assert torch.allclose(g.weights.detach(), torch.tensor([1.5, 0.5]))
    assert g.state_dict() == {"initial": [2.0, 2.0]}


# ------------------------------------------------------------------------------------------------- DWA
def test_dwa_weights_by_hand():
    # r = L(t-1)/L(t-2) = (0.5/1, 2/2) = (0.5, 1); w = 2 exp(r/2) / sum exp(r/2)
    e1, e2 = math.exp(0.25), math.exp(0.5)
    want = [2 * e1 / (e1 + e2), 2 * e2 / (e1 + e2)]  # (0.8757, 1.1243)
    assert dwa_weights([[1.0, 2.0], [0.5, 2.0]], 2.0) == pytest.approx(want)
    assert dwa_weights([[1.0, 2.0]], 2.0) == [1.0, 1.0]  # fewer than two windows: 1, 1
    # through the strategy, 2-step windows: window 0 averages (1, 2), window 1 (0.5, 2)
    cfg = TrainConfig()
    cfg.mtl.dwa_window = 2
    d = DWA(cfg)
    feed = [(1.0, 2.0), (1.0, 2.0), (0.25, 2.5), (0.75, 1.5)]
    for step, (a, b) in enumerate(feed):
        d.prepare(TWO_TASK_MODEL, step, 0)
        assert d.w == [1.0, 1.0]
        d.total({"sem": torch.tensor(a), "dep": torch.tensor(b)})
    d.prepare(TWO_TASK_MODEL, 4, 0)
    assert d.w == pytest.approx(want)
    assert d.state_dict()["history"] == [[1.0, 2.0], [0.5, 2.0]]


# ------------------------------------------------------------------------------- the shared machinery
class _Sum(GradientMethod):
    name = "sum"

    def combine(self, grads):
        return grads.sum(0)


@pytest.mark.parametrize("variant", ["mtl", "sosd"])
def test_gradient_helper_with_the_sum_is_the_joint_gradient(tmp_path, variant):
    from sosd.data import build_dataset
    from sosd.models import build_model
    from torch.utils.data import DataLoader

    cfg = tiny_config(tmp_path, variant=variant)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    batch = next(iter(DataLoader(build_dataset(cfg.data, "train", train=True, seed=0), batch_size=2)))
    grads = []
    for strategy in (build_strategy(cfg.train), _Sum(cfg.train)):  # joint, then per-task grads combined
        model.zero_grad(set_to_none=True)
        strategy.backward(strategy.losses(model, batch), 0.5)
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    scale = max(float(g.abs().max()) for g in grads[0].values())
    for n in grads[0]:  # float32 sums in another order: equal up to rounding
        assert float((grads[0][n] - grads[1][n]).abs().max()) <= 1e-5 * scale, n
    # MGDA-UB's Z: the decoder's two inputs, only when asked for
    out = model(batch["image"], return_shared=True)
    refined, aspp_out = out["shared"]
    assert refined.shape[1] == model.backbone.refined_channels
    assert aspp_out.shape[1] == cfg.model.aspp_channels
    assert "shared" not in model(batch["image"])


# ------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("variant", ["mtl", "sosd"])
@pytest.mark.parametrize("name", METHODS)
def test_each_method_trains_both_variants(tmp_path, name, variant):
    assert name in STRATEGIES
    cfg = tiny_config(tmp_path, variant=variant, strategy=name, steps=2)
    t = Trainer(cfg, tmp_path / "r", progress=False)
    com = [p.detach().clone() for p in t.model.parameter_groups()["com"]]
    heads = [p.detach().clone() for k in ("sem", "dep") for p in t.model.parameter_groups()[k]]
    t.train_steps()
    assert len(t.state.history) == 2
    for row in t.state.history:
        assert all(math.isfinite(row[k]) for k in ("loss", "sem", "dep")), row
    after = t.model.parameter_groups()
    assert any(not torch.equal(a, b) for a, b in zip(com, after["com"])), "the shared trunk did not move"
    assert any(not torch.equal(a, b) for a, b in zip(heads, after["sem"] + after["dep"]))
    logs = t.strategy.log_scalars()
    assert all(math.isfinite(v) for v in logs.values())
    if name == "gradnorm":
        assert float(t.strategy.weights.detach().sum()) == pytest.approx(2.0)
        assert t.strategy.initial is not None
    if name == "mgda":
        assert sum((logs["mtl/w_sem"], logs["mtl/w_dep"])) == pytest.approx(1.0)


def test_equal_is_joint(tmp_path):
    hist = []
    for name in ("joint", "equal"):
        cfg = tiny_config(tmp_path, variant="mtl", strategy=name, steps=2)
        t = Trainer(cfg, tmp_path / name, progress=False)
        t.train_steps()
        hist.append([h["loss"] for h in t.state.history])
    assert hist[0] == hist[1]


def test_methods_refuse_single_task_variants(tmp_path):
    t = Trainer(tiny_config(tmp_path, variant="depth_only", strategy="pcgrad", steps=1), tmp_path / "r",
                progress=False)
    with pytest.raises(ValueError, match="two tasks"):
        t.train_steps()


def test_gradient_methods_declare_ddp_support_and_keep_fp16_out():
    from sosd.train.strategies.base import Strategy

    for name in METHODS:
        s = STRATEGIES[name](TrainConfig())
        uses_grad = name in ("gradnorm", "mgda", "pcgrad", "cagrad", "aligned_mtl")
        reduces = name in ("pcgrad", "cagrad", "aligned_mtl")  # jd: all-reduce per-task gradients
        assert s.reduces_gradients is reduces, name
        # gradnorm / mgda: autograd.grad without the reduction; dwa: per-process loss windows
        assert s.supports_ddp is (name not in ("gradnorm", "mgda", "dwa")), name
        # the loop's fp16 loss scaling needs the ordinary backward (loss weighting keeps it)
        assert (type(s).backward is not Strategy.backward) is uses_grad, name


def test_config_checks():
    with pytest.raises(ConfigError, match="mgda_normalization"):
        load_config(None, ["train.mtl.mgda_normalization=l3"])
    with pytest.raises(ConfigError, match="kendall_depth_form"):
        load_config(None, ["train.mtl.kendall_depth_form=cauchy"])
    cfg = load_config(None, ["train.strategy=cagrad", "train.mtl.cagrad_c=0.4"])
    assert cfg.train.mtl.cagrad_c == 0.4 and cfg.train.mtl.gradnorm_alpha == 1.5


@pytest.mark.parametrize("name,over", [("gradnorm", {}), ("dwa", {"train.mtl.dwa_window": 2}),
                                       ("jd", {"train.jd.aggregator": "Random"}),  # its generator
                                       # torchjd's state in plain attributes: EMA targets with a state key,
                                       # step counters, numpy weights, FAMO's own Adam
                                       ("jd", {"train.jd.aggregator": "GradVac"}),
                                       ("jd", {"train.jd.aggregator": "PCD"}),
                                       ("jd", {"train.jd.aggregator": "SDMGrad"}),
                                       ("jd", {"train.jd.aggregator": "NashMTL",
                                               "train.jd.kwargs": "{update_weights_every: 2}"}),
                                       ("jd", {"train.jd.scalarizer": "FAMO"})])
def test_resume_is_bit_identical(tmp_path, name, over):
    # 2N steps in one go vs N, checkpoint, disturbed global RNG, resume, N more (16/2 = 8 steps an epoch)
    n = 5
    cfg = tiny_config(tmp_path, variant="mtl", strategy=name, steps=2 * n, **{"data.augment": "true", **over})
    a = Trainer(cfg, tmp_path / "a", progress=False)
    a.train_steps()
    b = Trainer(cfg, tmp_path / "b", progress=False)
    b.train_steps(until=n)
    path = b.save(f"step_{n:07d}")
    torch.manual_seed(1234)
    c = Trainer(cfg, tmp_path / "b", progress=False)
    c.resume(path)
    c.train_steps()
    wa, wc = a.model.state_dict(), c.model.state_dict()
    for k in wa:
        assert torch.equal(wa[k], wc[k]), k
    assert [h["loss"] for h in a.state.history] == [h["loss"] for h in c.state.history]
    for pa, pc in zip(a.strategy.extra_parameters(), c.strategy.extra_parameters()):
        assert torch.equal(pa, pc)
    assert a.strategy.log_scalars() == c.strategy.log_scalars()
    if name == "dwa":  # the weights did move away from 1 (two complete windows before the end)
        assert a.strategy.w != [1.0, 1.0]
    if name == "gradnorm":
        assert a.strategy.initial == c.strategy.initial
