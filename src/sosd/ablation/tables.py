"""The rows, columns and published figures of the paper's Tables 1-4, plus our focal-length table.

A row is a variant + training strategy (+ config overrides); a table lists rows and the metric columns
it reports. The paper's numbers are kept here verbatim so every generated table prints them beside ours.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    name: str                 # as printed in the paper's table
    key: str                  # run-folder name
    variant: str
    strategy: str
    overrides: tuple = ()     # extra "section.key=value" overrides


@dataclass(frozen=True)
class Column:
    key: str                  # metric key of sosd.eval.metrics
    title: str
    higher_is_better: bool
    scale: float = 1.0        # printed value = metric * scale (e.g. mIoU in %)
    digits: int = 3


@dataclass(frozen=True)
class Table:
    number: str
    title: str
    default_dataset: str
    rows: tuple
    columns: tuple
    paper: dict = field(default_factory=dict)   # row key -> {column key: paper figure}
    timing: bool = False                        # add inference time and parameter columns (Table 1)
    cost: bool = False                          # add training-step time and memory ratios to joint (Table 4)
    eval_overrides: tuple = ()                  # extra evaluation sets: (label, data overrides)


SEMANTIC_ONLY = Row("Semantic only", "semantic_only", "semantic_only", "single")
DEPTH_ONLY = Row("Depth only", "depth_only", "depth_only", "single")
MTL = Row("MTL", "mtl", "mtl", "joint")
SOSD = Row("SOSD-Net", "sosd", "sosd", "joint")
ESOSD = Row("ESOSD-Net", "esosd", "sosd", "em")
SINGLE_TASK = {"semantic": SEMANTIC_ONLY, "depth": DEPTH_ONLY}

MIOU_PCT = Column("miou", "Segmentation mIoU [%]", True, 100.0, 1)
DISP = Column("disparity_mae_px", "Disparity error [px]", False, 1.0, 2)


def _torchjd_rows() -> tuple:
    """Table 4's torchjd rows: every aggregator and scalarizer of train.strategy=jd on the mtl variant."""
    from sosd.train.strategies.jd import AGGREGATORS, SCALARIZERS

    return tuple([Row(f"{m} (torchjd)", f"mtl_jd_{m.lower()}", "mtl", "jd", (f"train.jd.aggregator={m}",))
                  for m in AGGREGATORS] +
                 [Row(f"{m} (torchjd, loss)", f"mtl_jd_loss_{m.lower()}", "mtl", "jd", (f"train.jd.scalarizer={m}",))
                  for m in SCALARIZERS])

TABLES = {
    "1": Table("1", "Quantitative improvement of SOSD-Net and EM-style learning (Cityscapes layout)",
               "synthetic-street", (SEMANTIC_ONLY, DEPTH_ONLY, MTL, SOSD, ESOSD), (MIOU_PCT, DISP),
               paper={"semantic_only": {"miou": 62.0, "ms": 139.1, "params_m": 23.4},
                      "depth_only": {"disparity_mae_px": 2.47, "ms": 140.7, "params_m": 23.4},
                      "mtl": {"miou": 65.6, "disparity_mae_px": 2.64, "ms": 142.2, "params_m": 23.6},
                      "sosd": {"miou": 67.2, "disparity_mae_px": 2.58, "ms": 159.0, "params_m": 24.0},
                      "esosd": {"miou": 68.2, "disparity_mae_px": 2.41, "ms": 159.0, "params_m": 24.0}},
               timing=True),
    "2": Table("2", "Semantic segmentation with the proposed model (NYU layout)", "synthetic-indoor",
               (SEMANTIC_ONLY, MTL, SOSD, ESOSD),
               (Column("miou", "Mean IoU", True), Column("mean_acc", "Mean Accuracy", True),
                Column("pixel_acc", "Pixel Accuracy", True)),
               paper={"semantic_only": {"miou": 0.385, "mean_acc": 0.591, "pixel_acc": 0.687},
                      "mtl": {"miou": 0.417, "mean_acc": 0.610, "pixel_acc": 0.710},
                      "sosd": {"miou": 0.433, "mean_acc": 0.625, "pixel_acc": 0.722},
                      "esosd": {"miou": 0.450, "mean_acc": 0.647, "pixel_acc": 0.733}}),
    "3": Table("3", "Monocular depth with the proposed model (NYU layout)", "synthetic-indoor",
               (DEPTH_ONLY, MTL, SOSD, ESOSD),
               (Column("rel", "rel", False), Column("rms", "rms", False), Column("log10", "log10", False),
                Column("delta1", "δ1", True), Column("delta2", "δ2", True), Column("delta3", "δ3", True)),
               paper={"depth_only": dict(rel=0.167, rms=0.637, log10=0.078, delta1=0.713, delta2=0.935, delta3=0.984),
                      "mtl": dict(rel=0.159, rms=0.567, log10=0.067, delta1=0.775, delta2=0.949, delta3=0.986),
                      "sosd": dict(rel=0.149, rms=0.527, log10=0.064, delta1=0.797, delta2=0.957, delta3=0.991),
                      "esosd": dict(rel=0.145, rms=0.514, log10=0.062, delta1=0.805, delta2=0.962, delta3=0.992)}),
    "4": Table("4", "Multi-task algorithms (Cityscapes layout)", "synthetic-street",
               (Row("Kendall", "mtl_kendall", "mtl", "kendall"),
                Row("GradNorm", "mtl_gradnorm", "mtl", "gradnorm"),
                Row("Ozan (MGDA-UB)", "mtl_mgda", "mtl", "mgda"),
                # DWA weighs tasks by the ratio of their last two windows' losses: with epoch windows a
                # CPU budget of a few hundred steps never completes two, so the row uses 30-step windows
                Row("DWA", "mtl_dwa", "mtl", "dwa", ("train.mtl.dwa_window=30",)),
                Row("PCGrad", "mtl_pcgrad", "mtl", "pcgrad"),
                Row("CAGrad", "mtl_cagrad", "mtl", "cagrad"),
                Row("Aligned-MTL", "mtl_aligned_mtl", "mtl", "aligned_mtl"),
                Row("PCGrad on SOSD-Net", "sosd_pcgrad", "sosd", "pcgrad"),
                # the methods part's strongest optimiser on the paper's units: do the two gains add up?
                Row("Nash-MTL on SOSD-Net", "sosd_jd_nashmtl", "sosd", "jd", ("train.jd.aggregator=NashMTL",)),
                ESOSD) + _torchjd_rows(),
               (MIOU_PCT, DISP), cost=True,
               paper={"mtl_kendall": {"miou": 64.2, "disparity_mae_px": 2.65},
                      "mtl_gradnorm": {"miou": 64.8, "disparity_mae_px": 2.57},
                      "mtl_mgda": {"miou": 66.6, "disparity_mae_px": 2.54},
                      "esosd": {"miou": 68.2, "disparity_mae_px": 2.41}}),
    "focal": Table("focal", "Focal-length-aware semantic-to-depth vs the paper's BatchNorm-only unit "
                   "(trained at one focal length, evaluated at others)", "synthetic-indoor",
                   (Row("SOSD-Net (BatchNorm only, paper)", "sosd", "sosd", "joint"),
                    Row("SOSD-Net (focal-aware)", "sosd_focal", "sosd", "joint", ("model.focal_aware=true",))),
                   (Column("rel", "rel", False), Column("delta1", "δ1", True), Column("miou", "mIoU", True)),
                   eval_overrides=(("f×1.0 (seen)", ("data.focal_scale=[1.0,1.0]",)),
                                   ("f×0.7", ("data.focal_scale=[0.7,0.7]",)),
                                   ("f×1.4", ("data.focal_scale=[1.4,1.4]",)))),
}

DATASETS = {
    # name -> base config (small backbone, CPU-sized) whose variant/strategy each row overrides
    "synthetic-indoor": "configs/synthetic/mtl_indoor_small.yaml",
    "synthetic-street": "configs/synthetic/mtl_street_small.yaml",
    "nyuv2": "configs/nyuv2/mtl.yaml",
    "cityscapes": "configs/cityscapes/mtl.yaml",
}
