"""Training strategies by name (a plain dict; see base.py for the interface, gradients.py for the
multi-task methods' common part)."""
from sosd.train.strategies.aligned_mtl import AlignedMTL
from sosd.train.strategies.cagrad import CAGrad
from sosd.train.strategies.dwa import DWA
from sosd.train.strategies.em import EM
from sosd.train.strategies.equal import Equal
from sosd.train.strategies.gradnorm import GradNorm
from sosd.train.strategies.joint import Joint
from sosd.train.strategies.kendall import Kendall
from sosd.train.strategies.mgda import MGDA
from sosd.train.strategies.pcgrad import PCGrad

STRATEGIES = {
    "joint": Joint,
    "single": Joint,  # single-task variants: the joint sum has one term
    "em": EM,
    # multi-task baselines (mtl and sosd variants; settings in train.mtl)
    "equal": Equal,
    "kendall": Kendall,
    "gradnorm": GradNorm,
    "mgda": MGDA,
    "dwa": DWA,
    "pcgrad": PCGrad,
    "cagrad": CAGrad,
    "aligned_mtl": AlignedMTL,
}


def build_strategy(cfg):
    """The strategy named by ``cfg.strategy`` (a TrainConfig)."""
    from sosd.config import ConfigError

    if cfg.strategy not in STRATEGIES:
        raise ConfigError(f"unknown train.strategy '{cfg.strategy}'; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[cfg.strategy](cfg)
