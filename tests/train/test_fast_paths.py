"""The training loop's speed options (train.optimizer_impl, train.channels_last, train.compile): the same
losses as the plain eager fp32 path (torch's per-parameter Adam loop, contiguous tensors) to float
tolerance, and resume stays bit-exact with them on.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/train/test_fast_paths.py -q
"""
import pytest
import torch

from sosd.errors import SOSDError
from sosd.train.loop import Trainer
from tests.conftest import tiny_config

STEPS = 4
EAGER = {"train.optimizer_impl": "loop", "train.channels_last": "false", "train.compile": "false"}


def _losses(tmp_path, name, strategy="joint", variant="sosd", nudge=False, **over):
    # lr 1e-4 (the paper's, §4.1): less chaotic than the tiny config's 1e-3, so the yardstick below is tighter
    cfg = tiny_config(tmp_path, variant=variant, strategy=strategy, steps=STEPS, **{"train.lr": 1e-4, **over})
    t = Trainer(cfg, tmp_path / name, progress=False)
    if nudge:  # every weight one float32 ulp up: a rounding-level perturbation of the eager path itself
        with torch.no_grad():
            for p in t.model.parameters():
                p.copy_(torch.nextafter(p, torch.full_like(p, float("inf"))))
    t.train_steps()
    return torch.tensor([[h["loss"], h.get("sem", 0.0), h.get("dep", 0.0)] for h in t.state.history]), t


@pytest.mark.parametrize("strategy", ["joint", "em"])
@pytest.mark.parametrize("fast", [{"train.optimizer_impl": "fused"}, {"train.channels_last": "true"},
                                  {"train.optimizer_impl": "fused", "train.channels_last": "true"}],
                         ids=["fused", "channels_last", "fused+channels_last"])
def test_fast_path_losses_match_eager_fp32(tmp_path, strategy, fast):
    """"Float tolerance" over several steps is the eager path's own sensitivity to rounding: this network's
    training amplifies rounding-level differences (Adam's first updates are ~lr * sign(g) per weight, and the
    1-channel BatchNorm of the semantic-to-depth unit divides by a small variance), so after 3 updates two
    eager runs whose weights differ by one ulp differ by ~1e-3 in the losses. The fast path must stay within
    a few times that, and match exactly where no update has happened yet (step 1)."""
    ref, _ = _losses(tmp_path, "eager", strategy, **EAGER)
    nudged, _ = _losses(tmp_path, "nudged", strategy, nudge=True, **EAGER)
    got, b = _losses(tmp_path, "fast", strategy, **{**EAGER, **fast})
    assert ref.shape == got.shape == (STEPS, 3)
    assert torch.allclose(got[0], ref[0], rtol=1e-5, atol=0)
    noise = (nudged - ref).abs().max().item()
    print(f"rounding yardstick {noise:.2e}, fast path off by {(got - ref).abs().max().item():.2e}")
    assert 0 < noise < 0.05  # the yardstick itself is small
    dev = (got - ref).abs().max().item()
    assert dev <= 4 * noise + 1e-6, (dev, noise)
    if fast.get("train.channels_last") == "true":
        conv = next(m for m in b.model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("fast", [{"train.optimizer_impl": "fused"}, {"train.channels_last": "true"}],
                         ids=["fused", "channels_last"])
def test_first_step_gradient_and_update_match_eager(tmp_path, fast):
    """One step, before chaos sets in: the gradient to float rounding, and (same gradient) fused Adam's
    update to ~1 ulp of the weights (a 10 % wrong learning rate would be ~1e-5 off)."""
    def one(name, over):
        cfg = tiny_config(tmp_path, strategy="em", steps=1, **{"train.lr": 1e-4, **over})
        t = Trainer(cfg, tmp_path / name, progress=False)
        t.train_steps()
        params = [p for p in t.model.parameters() if p.grad is not None]
        return torch.cat([p.grad.flatten() for p in params]), torch.cat([p.detach().flatten() for p in params])
    g_ref, w_ref = one("eager", EAGER)
    g, w = one("fast", {**EAGER, **fast})
    # channels_last: other convolution kernels, other summation orders; measured 1.0e-4 relative (the
    # 1-channel BatchNorm of the semantic-to-depth unit amplifies rounding), bounded at 1e-3
    assert ((g - g_ref).norm() / g_ref.norm()).item() < 1e-3
    if "train.optimizer_impl" in fast:
        assert torch.equal(g, g_ref)  # the forward and backward are the eager ones
        assert (w - w_ref).abs().max().item() < 1e-6


def test_foreach_adam_is_bit_identical_to_the_loop(tmp_path):
    ref, a = _losses(tmp_path, "eager", "em", **EAGER)
    got, b = _losses(tmp_path, "foreach", "em", **{**EAGER, "train.optimizer_impl": "foreach"})
    assert torch.equal(ref, got)
    for (k, wa), wb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(wa, wb), k


def test_fused_is_the_default_and_is_used(tmp_path):
    cfg = tiny_config(tmp_path)
    assert cfg.train.optimizer_impl == "fused"
    t = Trainer(cfg, tmp_path / "x", progress=False)
    assert t.optimizer.defaults["fused"] is True


@pytest.mark.parametrize("over", [{"train.channels_last": "true"}, {"train.optimizer_impl": "foreach"}])
def test_resume_is_bit_identical_with_fast_paths(tmp_path, over):
    n = 3
    cfg = tiny_config(tmp_path, strategy="em", steps=2 * n, **over)
    a = Trainer(cfg, tmp_path / "a", progress=False)
    a.train_steps()
    b = Trainer(cfg, tmp_path / "b", progress=False)
    b.train_steps(until=n)
    path = b.save(f"step_{n:07d}")
    c = Trainer(cfg, tmp_path / "b", progress=False)
    c.resume(path)
    c.train_steps()
    for (k, wa), wc in zip(a.model.state_dict().items(), c.model.state_dict().values()):
        assert torch.equal(wa, wc), k
    assert [h["loss"] for h in a.state.history] == [h["loss"] for h in c.state.history]


def test_resume_runs_the_configured_optimizer_impl(tmp_path):
    cfg = tiny_config(tmp_path, steps=2, **{"train.optimizer_impl": "loop"})
    b = Trainer(cfg, tmp_path / "b", progress=False)
    b.train_steps()
    path = b.save("step_0000002")
    cfg.train.optimizer_impl = "fused"
    c = Trainer(cfg, tmp_path / "b", progress=False)
    c.resume(path)
    assert all(g["fused"] is True for g in c.optimizer.param_groups)


def test_unknown_optimizer_impl_is_a_clear_error(tmp_path):
    cfg = tiny_config(tmp_path, **{"train.optimizer_impl": "sgd"})
    with pytest.raises(SOSDError, match="train.optimizer_impl"):
        Trainer(cfg, tmp_path / "x", progress=False)


@pytest.mark.slow  # inductor compiles the forward and backward: minutes on 2 CPU cores
def test_compiled_losses_match_eager_fp32(tmp_path):
    ref, _ = _losses(tmp_path, "eager", **EAGER)
    nudged, _ = _losses(tmp_path, "nudged", nudge=True, **EAGER)
    got, _ = _losses(tmp_path, "compiled", **{**EAGER, "train.compile": "true"})
    assert torch.allclose(got[0], ref[0], rtol=1e-5, atol=0)
    assert (got - ref).abs().max() <= 4 * (nudged - ref).abs().max() + 1e-6


def test_loader_worker_prefetch_is_bit_identical(tmp_path):
    """data.num_workers=1 (the main job's prefetch) trains on exactly the batches of the in-process loader,
    augmentation included (seeded per (seed, epoch, index)), across an epoch boundary (16 / 2 = 8 steps)."""
    runs = []
    for w in (0, 1):
        cfg = tiny_config(tmp_path, steps=9, **{"data.num_workers": w, "data.augment": "true"})
        t = Trainer(cfg, tmp_path / f"w{w}", progress=False)
        t.train_steps()
        runs.append(([h["loss"] for h in t.state.history], t.model.state_dict()))
    assert runs[0][0] == runs[1][0]
    for k, v in runs[0][1].items():
        assert torch.equal(v, runs[1][1][k]), k
