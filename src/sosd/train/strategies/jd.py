"""torchjd's multi-task methods, by name: ``train.strategy=jd`` with ``train.jd.aggregator=UPGrad`` (any
gradient aggregator: combines the task gradients of theta^com) or ``train.jd.scalarizer=FAMO`` (any loss
scalarizer: combines the task losses). torchjd: V. Quinton, V. Rey, "Jacobian descent for multi-objective
optimization" (2024), https://github.com/TorchJD/torchjd (MIT); the method behind each name is cited in
README.md's method table.

Aggregators (the gradient methods). Per micro-batch, :meth:`JD.backward` takes one backward per task
loss through the whole network, ``torch.autograd.grad(L_t, theta^com + rest)``: row t of the Jacobian
G (T, n) is the gradient of theta^com, and the rest (task-specific parameters) get sum_t dL_t (their
ordinary gradient: "task heads updated from their own losses", torchjd's ``mtl_backward`` semantics;
in the sosd variant the cross-task branches are reached by both losses, as in ``joint``). G and the rest
are accumulated over the micro-batches of the step (scaled 1/accum_steps); :meth:`JD.finish`, after the
last micro-batch, averages them over the processes (torchrun) and only then aggregates G into the
``.grad`` of theta^com. So the aggregation sees the gradient of the whole global batch, the same on
every rank, and N processes x accum a train as 1 process x accum N*a (tests/train/test_distributed.py).

Why not torchjd's ``mtl_backward`` / ``jac_to_grad``: mtl_backward differentiates w.r.t. "features" (one
shared representation), but theta^com of the sosd variant includes the Common Representation, which
sits after the decoder's inputs, and its Jacobian lives in ``.jac`` fields per process; our G is one
flat tensor that a single all-reduce averages. Why not the autogram Gramian engine: its efficient mode
(``batch_dim``) refuses BatchNorm, which the trunk uses everywhere; with ``batch_dim=None`` it costs a
vmapped backward for the Gramian plus a weighted backward, far more than the two plain backwards here
for two tasks (benchmarks/jd_backward.py, forward + backward at 64x128: 2.7x joint vs 1.4x; a batched
vmap backward: 1.6x), and a Gramian cannot be averaged across processes (the Gramian of a mean is not
the mean of Gramians).

Scalarizers (loss weighting) backpropagate ``scalarizer(stack(L_sem, L_dep))`` with the ordinary backward
(under torchrun: ordinary DDP). Their learned parameters (UW's log-variances, IMTL-L's scales) are
optimised with the network (``extra_parameters``); FAMO steps its own logits after each optimiser step
from the losses of the same batch re-evaluated (``after_step``: one extra forward without gradient, as
the official code). DWA and FAMO keep per-process loss statistics: refused under torchrun.

Randomness (PCGrad's task order, Random, GradDrop) comes from a generator seeded with ``train.seed``
and checkpointed; the global RNG is untouched (``torch.random.fork_rng``), so data order and
augmentation are the same as with any other strategy, and every rank draws the same.

Resume is exact (tests/train/test_mtl_methods.py): the generator, and of every torchjd module and
submodule its buffers and the plain attributes torchjd keeps its state in (GradVac's targets with their
state key, PCD/MoDo/SDMGrad/CR-MOGM/ExcessMTL statistics, DWA's averages, Nash-MTL's step and last
weights), plus FAMO's internal Adam, are checkpointed (``module_state``).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from sosd.train import distributed
from sosd.train.strategies.base import task_losses
from sosd.train.strategies.gradients import (TASKS, MTLStrategy, add_flat_gradient, gram, shared_parameters,
                                             specific_parameters)

N_TASKS = len(TASKS)


def _torchjd():
    try:
        import torchjd.aggregation as A
        import torchjd.scalarization as S
    except ImportError:  # pragma: no cover - depends on the environment
        from sosd.config import ConfigError

        raise ConfigError("train.strategy=jd (and pcgrad, aligned_mtl) need torchjd: "
                          "pip install 'sosd[mtl]'", "train.strategy") from None
    return A, S


def _tensors(kw: dict) -> dict:
    """Config kwargs -> constructor kwargs: lists (weights, pref_vector, reference...) become tensors."""
    return {k: torch.tensor(v, dtype=torch.float32) if isinstance(v, (list, tuple)) else v for k, v in kw.items()}


def _agg(name: str, **defaults) -> Callable:
    def make(kw):
        A, _ = _torchjd()
        return getattr(A, name)(**_tensors({**defaults, **kw}))
    return make


def _weighting(name: str, wrap: bool = False) -> Callable:
    """Weightings torchjd offers without an Aggregator class: applied to the Gramian G G^T."""
    def make(kw):
        A, _ = _torchjd()
        w = getattr(A, name)
        # CR-MOGM smooths another method's weights (an EMA); MGDA's, its paper's main case
        inner = w(A.MGDAWeighting(), **_tensors(kw)) if wrap else w(**_tensors(kw))
        return A.GramianWeightedAggregator(inner)
    return make


# torchjd's aggregators by the name ``train.jd.aggregator`` takes (its class names), with the defaults of
# required arguments; train.jd.kwargs override/add constructor arguments (lists -> tensors).
AGGREGATORS: dict[str, Callable] = {
    "UPGrad": _agg("UPGrad"),
    "DualProj": _agg("DualProj"),
    "MGDA": _agg("MGDA"),
    "PCGrad": _agg("PCGrad"),
    "CAGrad": _agg("CAGrad", c=0.5),
    "AlignedMTL": _agg("AlignedMTL"),
    "NashMTL": _agg("NashMTL", n_tasks=N_TASKS),
    "IMTLG": _agg("IMTLG"),
    "GradVac": _agg("GradVac"),
    "GradDrop": _agg("GradDrop"),
    "ConFIG": _agg("ConFIG"),
    "FairGrad": _agg("FairGrad", alpha=1.0),
    "ExcessMTL": _agg("ExcessMTL"),
    "PCD": _agg("PCD"),
    # MoDo and SDMGrad expect J_1 J_2^T from two independent batches; here they get the batch's own
    # Gramian G G^T (their convergence guarantee assumes the former; the update rule is theirs)
    "MoDo": _weighting("MoDoWeighting"),
    "SDMGrad": _weighting("SDMGradWeighting"),
    "CRMOGM": _weighting("CRMOGMWeighting", wrap=True),
    "Mean": _agg("Mean"),
    "Sum": _agg("Sum"),
    "Random": _agg("Random"),
    "Constant": _agg("Constant", weights=[1.0] * N_TASKS),
    "TrimmedMean": _agg("TrimmedMean", trim_number=0),  # 2 rows: only 0 can be trimmed (= Mean)
}
# Krum (a Byzantine-robust aggregator) needs at least n_byzantine + 3 rows: with two tasks it cannot run.
UNSUPPORTED = {"Krum": "needs at least 3 objectives (n_byzantine + 3 rows); sosd has 2 tasks"}


def _sca(name: str, **defaults) -> Callable:
    def make(kw):
        _, S = _torchjd()
        return getattr(S, name)(**_tensors({**defaults, **kw}))
    return make


SCALARIZERS: dict[str, Callable] = {
    "Sum": _sca("Sum"),
    "Mean": _sca("Mean"),
    "Constant": _sca("Constant", weights=[1.0] * N_TASKS),
    "UW": _sca("UW", shape=N_TASKS),
    "IMTLL": _sca("IMTLL", shape=N_TASKS),
    "DWA": _sca("DWA"),
    "FAMO": _sca("FAMO", shape=N_TASKS),
    "Random": _sca("Random"),
    "GeometricMean": _sca("GeometricMean"),
    "STCH": _sca("STCH", mu=0.1),                                  # a small mu, as its paper advises
    "COSMOS": _sca("COSMOS", lambda_=1.0, weights=[0.5] * N_TASKS),
    "PBI": _sca("PBI", theta=5.0, weights=[1.0] * N_TASKS),       # theta = 5: MOEA/D's usual value
}
PER_PROCESS_STATE = ("DWA", "FAMO")  # loss statistics of this process only: refused under torchrun


class JD(MTLStrategy):
    """One torchjd aggregator or scalarizer (``train.jd``), or, for the aliases, a given one."""

    name = "jd"

    def __init__(self, cfg, aggregator: str | None = None, scalarizer: str | None = None,
                 kwargs: dict | None = None, combine: Callable | None = None, name: str | None = None):
        from sosd.config import ConfigError

        super().__init__(cfg)
        jd = cfg.jd
        if aggregator is None and scalarizer is None and combine is None:
            aggregator, scalarizer, kwargs = jd.aggregator or "UPGrad", jd.scalarizer or None, jd.kwargs
            if scalarizer:
                aggregator = None
        self.name = name or self.name
        self.generator = torch.Generator().manual_seed(int(cfg.seed))
        self.method_name = scalarizer or aggregator or self.name
        self.scalarizer = self.aggregator = None
        self._combine = combine
        kwargs = dict(kwargs or {})
        try:
            if scalarizer:
                if scalarizer not in SCALARIZERS:
                    raise ConfigError(f"unknown train.jd.scalarizer '{scalarizer}'; choose one of "
                                      f"{', '.join(SCALARIZERS)}", "train.jd.scalarizer")
                self.scalarizer = SCALARIZERS[scalarizer](kwargs).to(torch.device(cfg.device))
            elif aggregator:
                if aggregator in UNSUPPORTED:
                    raise ConfigError(f"train.jd.aggregator={aggregator} {UNSUPPORTED[aggregator]}",
                                      "train.jd.aggregator")
                if aggregator not in AGGREGATORS:
                    raise ConfigError(f"unknown train.jd.aggregator '{aggregator}'; choose one of "
                                      f"{', '.join(AGGREGATORS)}", "train.jd.aggregator")
                self.aggregator = AGGREGATORS[aggregator](kwargs)
        except (TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"train.jd.kwargs {kwargs} do not fit torchjd's {self.method_name}: {e}",
                              "train.jd.kwargs") from None
        except ImportError as e:  # solvers of CAGrad / NashMTL / FairGrad
            raise ConfigError(f"torchjd's {self.method_name} needs extra solvers: {e} "
                              "(pip install 'sosd[mtl]' installs torchjd[full])", "train.strategy") from None
        self.uses_gradients = self.scalarizer is None
        self._acc = None        # G accumulated over the step's micro-batches (T, n)
        self._last_batch = None  # FAMO's re-evaluation batch

    # ------------------------------------------------------------------------------------ properties
    @property
    def supports_ddp(self) -> bool:
        return not (self.scalarizer is not None and self.method_name in PER_PROCESS_STATE)

    @property
    def reduces_gradients(self) -> bool:
        """Aggregator mode: the loop runs the bare model (no DDP wrapper) and calls :meth:`finish`."""
        return self.uses_gradients

    def _random(self):
        """A forked global RNG seeded from our generator: torchjd's randperm/randn draw from it."""
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=self.generator))
        ctx = torch.random.fork_rng(devices=[])
        return seed, ctx

    # ----------------------------------------------------------------------------------- scalarizer
    def prepare(self, model, step, epoch):
        super().prepare(model, step, epoch)
        if self.uses_gradients:
            distributed.broadcast_buffers(model)  # as DDP does before each forward: rank 0's BN statistics
        elif self.method_name == "DWA":
            if getattr(self, "_epoch", epoch) != epoch:
                self.scalarizer.step()  # torchjd's DWA averages over epochs (Liu et al.)
            self._epoch = epoch

    def total(self, losses):
        if self.scalarizer is None:
            return losses["sem"] + losses["dep"]
        values = torch.stack([losses[t] for t in TASKS])
        seed, ctx = self._random()
        with ctx:
            torch.manual_seed(seed)
            return self.scalarizer(values)

    def losses(self, model, batch):
        out = super().losses(model, batch)
        if self.method_name == "FAMO":
            self._last_batch = (model, batch)
        return out

    def after_step(self, model, step):
        if self.method_name == "FAMO" and self._last_batch is not None:
            # FAMO's update: the change of each loss across the step, on the same batch (official code)
            net, batch = self._last_batch
            bufs = [b.clone() for b in model.buffers()]
            with torch.no_grad():
                out = task_losses(net, batch)
                for b, v in zip(model.buffers(), bufs):  # the re-evaluation must not move BN statistics
                    b.copy_(v)
                self.scalarizer.update(torch.stack([out[t] for t in TASKS]).detach())
            self._last_batch = None

    def extra_parameters(self):
        if self.scalarizer is None or self.method_name == "FAMO":  # FAMO steps its own logits
            return []
        return list(self.scalarizer.parameters())

    # ----------------------------------------------------------------------------------- aggregator
    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        """The update of theta^com from the task gradients ``grads`` (T, n)."""
        if self._combine is not None:
            return self._combine(grads)
        seed, ctx = self._random()
        with ctx:
            torch.manual_seed(seed)
            return self.aggregator(grads)

    def backward(self, out, scale=1.0):
        if self.scalarizer is not None:
            return super().backward(out, scale)
        p = self.take_pending()
        shared, specific = shared_parameters(p.model), specific_parameters(p.model)
        self._shared, self._specific = shared, specific
        params = shared + specific
        rows = []
        losses = [p.losses[t] for t in TASKS]
        for i, loss in enumerate(losses):
            grads = torch.autograd.grad(loss * scale, params, retain_graph=i < len(losses) - 1,
                                        allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(x)).reshape(-1)
                                   for g, x in zip(grads[:len(shared)], shared)]))
            for g, x in zip(grads[len(shared):], specific):  # their ordinary gradient: the sum over tasks
                if g is not None:
                    x.grad = g if x.grad is None else x.grad + g
        G = torch.stack(rows)
        self._acc = G if self._acc is None else self._acc + G

    def finish(self, model) -> None:
        """After the step's last micro-batch: average G and the rest over processes, then aggregate."""
        if self.scalarizer is not None or self._acc is None:
            return
        G, self._acc = self._acc, None
        if distributed.is_distributed():
            import torch.distributed as dist

            spec = [x for x in self._specific if x.grad is not None]  # the same set on every rank (graph)
            flat = torch.cat([G.reshape(-1)] + [x.grad.reshape(-1) for x in spec])
            dist.all_reduce(flat)
            flat /= distributed.world_size()
            G = flat[:G.numel()].view_as(G)
            i = G.numel()
            for x in spec:
                x.grad.copy_(flat[i:i + x.numel()].view_as(x))
                i += x.numel()
        if not bool(torch.isfinite(G).all()):
            # the loop skips or stops on this step (its losses are non-finite too); the solvers must not
            # see NaN (cvxpy raises) nor their state absorb it
            add_flat_gradient(self._shared, G.sum(0))
            return
        combined = self.combine(G).to(G.dtype)
        add_flat_gradient(self._shared, combined)
        gg = gram(G)
        self._diag = {"mtl/grad_norm_sem": math.sqrt(gg[0, 0]), "mtl/grad_norm_dep": math.sqrt(gg[1, 1]),
                      "mtl/grad_cos": float(gg[0, 1] / (gg[0, 0] * gg[1, 1]).sqrt().clamp(min=1e-30))}

    def log_scalars(self):
        return dict(getattr(self, "_diag", {}))

    # ----------------------------------------------------------------------------------- checkpoint
    def _modules(self):
        return [m for m in (self.aggregator, self.scalarizer) if isinstance(m, torch.nn.Module)]

    def state_dict(self):
        state = {"generator": self.generator.get_state()}
        for i, m in enumerate(self._modules()):
            state[f"module{i}"] = module_state(m)
        if self.method_name == "FAMO":
            state["famo_w"] = self.scalarizer._w.detach().clone()
            opt = self.scalarizer._optimizer
            state["famo_adam"] = opt.state_dict() if opt is not None else None
        return state

    def load_state_dict(self, state):
        if state.get("generator") is not None:
            self.generator.set_state(state["generator"])
        for i, m in enumerate(self._modules()):
            if f"module{i}" in state:
                load_module_state(m, state[f"module{i}"])
            for k, v in state.get(f"buffers{i}", {}).items():  # checkpoints written before: buffers only
                mod, _, leaf = k.rpartition(".")
                setattr(m.get_submodule(mod) if mod else m, leaf, v.clone())
        if "famo_w" in state:
            with torch.no_grad():
                self.scalarizer._w.copy_(state["famo_w"])
            if state.get("famo_adam") is not None:
                f = self.scalarizer
                f._optimizer = torch.optim.Adam([f._w], lr=f.lr, weight_decay=f.weight_decay)
                f._optimizer.load_state_dict(state["famo_adam"])


# torchjd keeps the state of its stateful methods in buffers and in plain attributes (numbers, tuples,
# tensors, numpy arrays, and Nash-MTL's cvxpy problem); torchjd has no state_dict for the latter, so we
# save what ``torch.load(weights_only=True)`` can read back and rebuild the rest
_PLAIN = (type(None), bool, int, float, str, torch.dtype, torch.device, torch.Tensor)
_MODULE_FIELDS = {"_parameters", "_buffers", "_modules", "training"}


def _plain(v) -> bool:
    return isinstance(v, _PLAIN) or (isinstance(v, (tuple, list)) and all(_plain(x) for x in v))


def module_state(module: torch.nn.Module) -> dict:
    """Buffers and plain attributes of a module and its submodules (numpy arrays as tensors)."""
    import numpy as np

    out = {}
    for name, sub in module.named_modules():
        buffers = {k: (v.detach().clone() if v is not None else None) for k, v in sub._buffers.items()}
        attrs, arrays = {}, {}
        for k, v in vars(sub).items():
            if k in _MODULE_FIELDS or k.startswith("__") or isinstance(v, torch.nn.Parameter):
                continue
            if isinstance(v, np.ndarray):
                arrays[k] = torch.from_numpy(v.copy())
            elif _plain(v):
                attrs[k] = v.detach().clone() if isinstance(v, torch.Tensor) else v
        out[name] = {"buffers": buffers, "attrs": attrs, "arrays": arrays}
    return out


def load_module_state(module: torch.nn.Module, state: dict) -> None:
    for name, sub in module.named_modules():
        st = state.get(name)
        if st is None:
            continue
        for k, v in st["buffers"].items():
            sub._buffers[k] = v.clone() if v is not None else None
        for k, v in st["attrs"].items():
            object.__setattr__(sub, k, v.clone() if isinstance(v, torch.Tensor) else v)
        for k, v in st["arrays"].items():
            object.__setattr__(sub, k, v.numpy().copy())
        if getattr(sub, "step", 0) and hasattr(sub, "_init_optim_problem"):
            # Nash-MTL builds its cvxpy problem on its first step, warm-started from its last weights
            sub._init_optim_problem()
