"""Datasets: the procedural scene generator (default), NYU Depth v2, Cityscapes, and folder formats.

All return :class:`sosd.data.sample.Sample`; :func:`build_dataset` picks one by ``DataConfig.dataset``.
"""
from sosd.data.sample import IGNORE_INDEX, Sample, SceneDataset, to_tensors

__all__ = ["IGNORE_INDEX", "Sample", "SceneDataset", "to_tensors", "build_dataset"]


def build_dataset(cfg, split: str, train: bool = False, seed: int = 0):
    """The dataset named by ``cfg.dataset`` (a DataConfig) for ``split``; ``train`` turns augmentation on
    when ``cfg.augment`` is set. Dispatch is the plain dict in sosd.data.factory."""
    from sosd.data.factory import build

    return build(cfg, split, train=train, seed=seed)
