"""DataConfig -> dataset. One plain dict names every dataset (no registry)."""
from __future__ import annotations

from sosd.errors import DataError


def _synthetic(cfg, split, train, seed):
    from sosd.data.synthetic import SyntheticScenes

    # held-out scenes come from other seed streams, so they never repeat a training scene; "val" (model
    # selection) and "test" (what tables report) are disjoint too
    is_train = split == "train"
    held_out = {"val": 2_000_003}.get(split, 1_000_003)
    return SyntheticScenes(
        preset=cfg.preset,
        size=cfg.train_size if is_train else cfg.val_size,
        seed=cfg.seed if is_train else cfg.seed + held_out,
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


MIN_SIDE = 32  # the network's smallest input side (sosd.models.sosd_net.MIN_INPUT_SIZE)


def check_first_sample(ds, what: str, num_classes: int | None = None) -> None:
    """Read sample 0 of ``ds`` and raise a DataError naming ``what`` (e.g. "the training set (folder,
    split 'train')") and the file if it cannot be read, is malformed (the checks of ``sosd data check``),
    or is smaller than the network accepts. For a check before any work starts: the rest of the set is
    read during training (``sosd data check`` reads every sample)."""
    from sosd.data.command import sample_problems
    from sosd.errors import SOSDError

    if len(ds) == 0:
        raise DataError(f"{what} is empty")
    try:
        s = ds.sample(0)
    except SOSDError as e:
        raise DataError(f"{what}, first sample: {e}") from None
    k = int(num_classes if num_classes is not None else ds.num_classes)
    problems = sample_problems(s, k)
    if problems:
        raise DataError(f"{what}, first sample (id {s.id or 0}): {'; '.join(problems)}")
    h, w = s.image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DataError(f"{what}, first sample (id {s.id or 0}): {h}x{w} px is too small for the network "
                        f"(each side must be at least {MIN_SIDE} px); set data.height and data.width")


def reported_split(cfg) -> str:
    """The split the tables and ``sosd eval`` report for a DataConfig: ``data.test_split``, or when empty the
    dataset's own (Cityscapes: val, its test labels are withheld; every other dataset: test)."""
    return cfg.test_split or ("val" if cfg.dataset == "cityscapes" else "test")
