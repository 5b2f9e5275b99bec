"""Training strategies by name (a plain dict; see base.py for the interface, gradients.py for the
multi-task methods' common part, jd.py for torchjd's methods)."""
from functools import partial

from sosd.train.strategies.cagrad import cagrad_strategy
from sosd.train.strategies.dwa import DWA
from sosd.train.strategies.em import EM
from sosd.train.strategies.equal import Equal
from sosd.train.strategies.gradnorm import GradNorm
from sosd.train.strategies.jd import JD
from sosd.train.strategies.joint import Joint
from sosd.train.strategies.kendall import Kendall
from sosd.train.strategies.mgda import MGDA


def _aligned_mtl(cfg):
    # torchjd's AlignedMTL with pref_vector (1, 1): the sum of the aligned gradients, alpha = B^T 1, as the
    # official code and our hand-computed test (torchjd's default pref_vector 1/T is the same halved)
    return JD(cfg, aggregator="AlignedMTL", name="aligned_mtl",
              kwargs={"pref_vector": [1.0, 1.0], "scale_mode": cfg.mtl.aligned_scale})


STRATEGIES = {
    "joint": Joint,
    "single": Joint,  # single-task variants: the joint sum has one term
    "em": EM,
    # every torchjd aggregator / scalarizer (settings in train.jd)
    "jd": JD,
    # multi-task baselines (mtl and sosd variants; settings in train.mtl). torchjd's where it agrees with
    # our hand-computed tests (tests/train/test_mtl_methods.py); ours where it has no such method or a
    # different one (the reason is in each module's docstring)
    "equal": Equal,
    "kendall": Kendall,        # ours: eq. 10's classification form for L_sem (torchjd's UW: 1/2 on both)
    "gradnorm": GradNorm,      # ours: torchjd has no GradNorm
    "mgda": MGDA,              # ours: MGDA-UB on the shared representation (jd MGDA: on theta^com)
    "dwa": DWA,                # ours: step windows and checkpointed state (jd DWA: epochs only)
    "pcgrad": partial(JD, aggregator="PCGrad", name="pcgrad"),
    "cagrad": cagrad_strategy,  # our exact 2-task solver, driven by jd (torchjd's: cvxpy, 1e-5 off)
    "aligned_mtl": _aligned_mtl,
}


def build_strategy(cfg):
    """The strategy named by ``cfg.strategy`` (a TrainConfig)."""
    from sosd.config import ConfigError

    if cfg.strategy not in STRATEGIES:
        raise ConfigError(f"unknown train.strategy '{cfg.strategy}'; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[cfg.strategy](cfg)
