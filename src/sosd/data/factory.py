"""DataConfig -> dataset. One plain dict names every dataset (no registry)."""
from __future__ import annotations

from sosd.errors import DataError


SYNTHETIC_SPLIT_SEEDS = {"train": 0, "test": 1_000_003, "val": 2_000_029}


def _synthetic(cfg, split, train, seed):
    from sosd.data.synthetic import SyntheticScenes

    # each split is its own seed stream, so no scene repeats across them: "val" scenes pick budgets,
    # schedules and checkpoints, "test" scenes are the ones tables report (never used to choose anything)
    if split not in SYNTHETIC_SPLIT_SEEDS:
        raise DataError(f"synthetic scenes have the splits {', '.join(SYNTHETIC_SPLIT_SEEDS)}, not '{split}'")
    is_train = split == "train"
    return SyntheticScenes(
        preset=cfg.preset,
        size=cfg.train_size if is_train else cfg.val_size,
        seed=cfg.seed + SYNTHETIC_SPLIT_SEEDS[split],
        height=cfg.height,
        width=cfg.width,
        focal_scale=tuple(cfg.focal_scale),
        size_scale=tuple(cfg.size_scale),
        transform=_augment(cfg, train, seed),
    )


def _augment(cfg, train, seed):
    if not (train and cfg.augment):
        return None
    from sosd.data.transforms import PaperAugment

    return PaperAugment(scales=tuple(cfg.scales), seed=seed)


def _nyuv2(cfg, split, train, seed):
    from sosd.data.nyu import NYUDepthV2

    return NYUDepthV2(cfg.root, split=split, classes=cfg.nyu_classes, depth=cfg.nyu_depth,
                      height=cfg.height, width=cfg.width, transform=_augment(cfg, train, seed))


def _nyuv2_mtan(cfg, split, train, seed):
    from sosd.data.nyu_folders import NYUv2MTAN

    # always 13 classes (data.nyu_classes does not apply): set model.num_classes=13
    return NYUv2MTAN(cfg.root, split=split, height=cfg.height, width=cfg.width,
                     transform=_augment(cfg, train, seed))


def _nyud_mt(cfg, split, train, seed):
    from sosd.data.nyu_folders import NYUDMT

    # always 40 classes (data.nyu_classes does not apply)
    return NYUDMT(cfg.root, split=split, height=cfg.height, width=cfg.width,
                  transform=_augment(cfg, train, seed))


def _cityscapes(cfg, split, train, seed):
    from sosd.data.cityscapes import Cityscapes

    return Cityscapes(cfg.root, split=split, target="disparity", height=cfg.height, width=cfg.width,
                      transform=_augment(cfg, train, seed))


def _folder(cfg, split, train, seed):
    from sosd.data.folder import FolderDataset

    return FolderDataset(cfg.root, split=split, height=cfg.height, width=cfg.width,
                         transform=_augment(cfg, train, seed))


DATASETS = {
    "synthetic": _synthetic,    # splits train | val | test (three disjoint seed streams)
    "nyuv2": _nyuv2,            # official nyu_depth_v2_labeled.mat; splits train | test | val | train_no_val | all
    "nyuv2_mtan": _nyuv2_mtan,  # MTAN .npy folders (13 classes, 288x384); splits train | test (= val/)
    "nyud_mt": _nyud_mt,        # ASTMT NYUD_MT folders (40 classes); splits train | test (= gt_sets/val.txt)
    "cityscapes": _cityscapes,  # official release folders, disparity in px; splits train | val | test
    "folder": _folder,          # your own files, layout in sosd.data.folder; any split folder name
}


def build(cfg, split: str, train: bool = False, seed: int = 0):
    if cfg.dataset not in DATASETS:
        raise DataError(f"unknown dataset '{cfg.dataset}'; choose one of {', '.join(DATASETS)}")
    if cfg.dataset != "synthetic" and not str(cfg.root).strip():
        raise DataError(f"data.root is not set: the {cfg.dataset} dataset needs data.root=<path> "
                        "(see docs/data.md for the layout)")
    return DATASETS[cfg.dataset](cfg, split, train, seed)


def reported_split(cfg) -> str:
    """The split the tables and ``sosd eval`` report for a DataConfig: ``data.test_split``, or when empty the
    dataset's own (Cityscapes: val, its test labels are withheld; every other dataset: test)."""
    return cfg.test_split or ("val" if cfg.dataset == "cityscapes" else "test")
