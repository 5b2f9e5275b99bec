"""Training strategies by name (a plain dict; see base.py for the interface)."""
from sosd.train.strategies.em import EM
from sosd.train.strategies.joint import Joint

STRATEGIES = {
    "joint": Joint,
    "single": Joint,  # single-task variants: the joint sum has one term
    "em": EM,
}


def build_strategy(cfg):
    """The strategy named by ``cfg.strategy`` (a TrainConfig)."""
    from sosd.config import ConfigError

    if cfg.strategy not in STRATEGIES:
        raise ConfigError(f"unknown train.strategy '{cfg.strategy}'; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[cfg.strategy](cfg)
