"""DataConfig -> dataset. One plain dict names every dataset (no registry)."""
from __future__ import annotations

from sosd.errors import DataError


def _synthetic(cfg, split, train, seed):
    from sosd.data.synthetic import SyntheticScenes

    # held-out scenes come from a different seed stream, so they never repeat a training scene
    is_train = split == "train"
    return SyntheticScenes(
        preset=cfg.preset,
        size=cfg.train_size if is_train else cfg.val_size,
        seed=cfg.seed if is_train else cfg.seed + 1_000_003,
        height=cfg.height,
        width=cfg.width,
        focal_scale=tuple(cfg.focal_scale),
        transform=_augment(cfg, train, seed),
    )


def _augment(cfg, train, seed):
    if not (train and cfg.augment):
        return None
    from sosd.data.transforms import PaperAugment

    return PaperAugment(scales=tuple(cfg.scales), seed=seed)


DATASETS = {
    "synthetic": _synthetic,
}


def build(cfg, split: str, train: bool = False, seed: int = 0):
    if cfg.dataset not in DATASETS:
        raise DataError(f"unknown dataset '{cfg.dataset}'; choose one of {', '.join(DATASETS)}")
    return DATASETS[cfg.dataset](cfg, split, train, seed)
