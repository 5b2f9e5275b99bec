"""The claims study's design: which runs, at which budget, and which claims of the paper they test.

Every run is an ordinary training run of the small-backbone configs on the scene generator, with a cosine
learning rate that anneals to zero within the budget (as the segmentation literature trains; a constant
rate needs thousands of steps to stop improving), scored every budget/``val_points`` steps on the
generator's **val** scenes (the learning curve), and evaluated once at the end on its **test** scenes (the
numbers the tables report). Budgets and the EM schedule are chosen on val, never on test.

Parts (each resumable run by run):
- ``street``: Tables 1 and 4 rows, and ESOSD-Net under every EM phase schedule of the sweep;
- ``indoor``: Tables 2 and 3 rows;
- ``em``: ESOSD-Net with equal updates per task (twice the steps: each phase gets as many steps as joint
  training gives each task), with the schedule chosen on val;
- ``double``: the rows of every claim resolved at the budget, again at twice the budget (a verdict that
  flips is "not resolved"; a claim not resolved at the budget stays so whatever twice the budget says, so
  its rows need no second run);
- ``counterfactual``: MTL, SOSD-Net and ESOSD-Net on street scenes whose object sizes no longer follow
  their class (``data.size_scale``): if semantic objectness is why SOSD-Net helps, its gain must shrink;
- ``focal``: SOSD-Net with the paper's BatchNorm-only unit and with the focal-aware one (indoor), trained
  at one focal length and evaluated at ×0.7, ×1 and ×1.4;
- ``methods`` (not in the default study: ~150 more runs): Table 4 extended to every multi-task method sosd
  runs (our DWA, PCGrad, CAGrad, Aligned-MTL, and every torchjd aggregator and scalarizer), each against MTL
  and ESOSD-Net.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sosd.ablation.tables import DATASETS, TABLES, Row

PRESET_DATASET = {"street": "synthetic-street", "indoor": "synthetic-indoor"}
# the metrics a row is judged (and its convergence checked) on, per preset; direction: True = higher
MAIN_METRICS = {"street": {"miou": True, "disparity_mae_px": False},
                "indoor": {"miou": True, "rel": False}}
SEG_METRICS = {"miou", "mean_acc", "pixel_acc"}


@dataclass(frozen=True)
class StudyConfig:
    """What the study trains. The defaults are the full study; ``quick()`` is the test suite's."""
    seeds: int = 5
    budget: int = 1000                            # optimiser steps of every run (``double``: 2x)
    street_size: tuple = (64, 128)                # H, W: cars and people stay >= ~8x8 px (eq. 3 needs area)
    indoor_size: tuple = (72, 96)
    train_size: int = 4000                        # scenes of the training split
    eval_size: int = 96                           # scenes of each of val and test
    val_points: int = 8                           # learning-curve points per run
    ckpt_points: int = 4                          # checkpoints per run (what an interrupted run resumes from)
    tolerance: float = 0.02                       # converged: < 2 % relative gain over the last quarter
    em_schedules: tuple = ("step:1", "step:10", "step:100", "epoch:1")
    table4: tuple = ("mtl_kendall", "mtl_gradnorm", "mtl_mgda")   # Table 4 methods with published figures
    lr: float = 1e-3
    parts: tuple = ("street", "indoor", "em", "double", "counterfactual", "focal")   # the claims study
    # with ``methods`` and ``double``: these Table 4 rows at twice the budget as well, against MTL there. The
    # two rows ahead of MTL on both tasks by the widest margin at B (claims.md): is their lead a faster start?
    methods_double: tuple = ("mtl_jd_nashmtl", "mtl_jd_fairgrad")
    size_scale: tuple = (0.5, 2.0)                # counterfactual: object size factor, independent of class
    focal_evals: tuple = (0.7, 1.0, 1.4)          # focal: evaluation focal multipliers
    extra: tuple = ()                             # more "section.key=value" overrides for every run

    @staticmethod
    def quick() -> "StudyConfig":
        return StudyConfig(seeds=2, budget=4, street_size=(32, 64), indoor_size=(36, 48), train_size=32,
                           eval_size=4, val_points=2, ckpt_points=1, em_schedules=("step:1", "step:2"), table4=("mtl_kendall",),
                           extra=("model.aspp_channels=16", "model.decoder_channels=16", "model.refined_channels=8",
                                  "train.batch_size=2", "eval.num_pictures=1"))


ALL_PARTS = ("street", "indoor", "em", "double", "counterfactual", "focal", "methods")
# Table 4 rows the methods part skips: torchjd methods whose update is joint training's up to a constant
# factor (Adam is invariant to it), and torchjd rows that the pcgrad / aligned_mtl rows already run
METHODS_SKIPPED = {"mtl_jd_mean", "mtl_jd_sum", "mtl_jd_constant", "mtl_jd_trimmedmean", "mtl_jd_loss_sum",
                   "mtl_jd_loss_mean", "mtl_jd_loss_constant", "mtl_jd_pcgrad", "mtl_jd_alignedmtl"}


def method_rows() -> list[Row]:
    """Table 4's rows without published figures (the paper's are in the street part), less the skipped."""
    t4 = TABLES["4"]
    return [r for r in t4.rows if r.key not in t4.paper and r.key not in METHODS_SKIPPED]


@dataclass(frozen=True)
class RunSpec:
    """One training run of the study (``evals``: extra test evaluations, (label, data overrides))."""
    preset: str
    row: Row
    steps: int
    seed: int
    overrides: tuple = field(default=())
    evals: tuple = field(default=())

    @property
    def name(self) -> str:
        return f"{self.preset}-{self.row.key}-b{self.steps}-seed{self.seed}"


def schedule_row(schedule: str) -> Row:
    """ESOSD-Net under one EM phase schedule, e.g. "step:10" = switch phases every 10 steps."""
    unit, k = schedule.split(":")
    key = "esosd" if schedule == "step:1" else f"esosd_{unit}{k}"
    return Row(f"ESOSD-Net (switch every {k} {unit}{'s' if k != '1' else ''})", key, "sosd", "em",
               (f"train.em.switch_unit={unit}", f"train.em.switch_every={k}"))


def street_rows(sc: StudyConfig) -> list[Row]:
    t1, t4 = TABLES["1"], TABLES["4"]
    paper_t4 = [r for r in t4.rows if r.key in sc.table4]
    return [r for r in t1.rows if r.key != "esosd"] + paper_t4 + [schedule_row(s) for s in sc.em_schedules]


def indoor_rows(chosen: Row) -> list[Row]:
    return [r for r in TABLES["2"].rows + TABLES["3"].rows if r.strategy != "em"] + [chosen]


def unique(rows):
    seen, out = set(), []
    for r in rows:
        if r.key not in seen:
            seen.add(r.key)
            out.append(r)
    return out


def base_overrides(sc: StudyConfig, preset: str, spec_steps: int, seed: int, name: str, out_dir: str) -> list:
    h, w = sc.street_size if preset == "street" else sc.indoor_size
    return [f"data.height={h}", f"data.width={w}", f"data.train_size={sc.train_size}",
            f"data.val_size={sc.eval_size}", "data.val_split=val", f"train.lr={sc.lr}", "train.schedule=cosine",
            f"train.steps={spec_steps}", f"train.seed={seed}", f"train.name={name}", f"train.out_dir={out_dir}",
            f"train.val_every={max(1, spec_steps // sc.val_points)}", "train.best_metric=",
            f"train.ckpt_every={max(1, spec_steps // sc.ckpt_points)}", "train.threads=1", "train.log_every=10",
            # the committed runs trained in NCHW, before channels_last became the default: it changes float
            # rounding, so pinning it keeps them reusable (finished runs match their config) and bit-reproducible
            "train.channels_last=false"]


def run_config(sc: StudyConfig, spec: RunSpec, out_dir: str):
    from sosd.config import load_config

    r = spec.row
    ov = [f"model.variant={r.variant}", f"train.strategy={r.strategy}", *r.overrides,
          *base_overrides(sc, spec.preset, spec.steps, spec.seed, spec.name, out_dir), *spec.overrides, *sc.extra]
    return load_config(DATASETS[PRESET_DATASET[spec.preset]], ov)


def phase_one(sc: StudyConfig) -> list[RunSpec]:
    """Runs that need no choice made on val first: the street rows with the EM schedule sweep."""
    if "street" not in sc.parts:
        return []
    # seed-major: an interrupted study holds every row of its first seeds (complete pairs), not all seeds of a few rows
    return [RunSpec("street", r, sc.budget, s) for s in range(sc.seeds) for r in street_rows(sc)]


def phase_two(sc: StudyConfig, chosen: Row) -> list[RunSpec]:
    """Runs that use the EM schedule chosen on val: counterfactual, focal, indoor rows, equal updates, methods,
    in that order (the cheapest whole questions first) and seed-major, so a study cut short by the machine's
    time still answers whole questions with complete pairs. The doubled budgets come after (:func:`doubled`)."""
    specs = []
    if "counterfactual" in sc.parts:
        specs += [RunSpec("street", r, sc.budget, s) for s in range(sc.seeds) for r in counterfactual_rows(sc, chosen)]
    if "focal" in sc.parts:
        paper_unit = TABLES["1"].rows[3]
        specs += [RunSpec("indoor", r, sc.budget, s, evals=focal_evals(sc)) for s in range(sc.seeds)
                  for r in (paper_unit, FOCAL_AWARE)]
    if "indoor" in sc.parts:
        specs += [RunSpec("indoor", r, sc.budget, s) for s in range(sc.seeds) for r in indoor_rows(chosen)]
    if "em" in sc.parts:
        specs += [RunSpec("street", equal_updates_row(chosen), 2 * sc.budget, s) for s in range(sc.seeds)]
    if "methods" in sc.parts:
        specs += [RunSpec("street", r, sc.budget, s) for s in range(sc.seeds) for r in method_rows()]
    return dedupe(specs)


def claim_rows(chosen: Row) -> set[tuple[str, str]]:
    """(preset, row key) of every row some claim compares."""
    return {(c["preset"], k) for c in claims(chosen) for k in (c["better"], c["worse"])}


def equal_updates_row(chosen: Row) -> Row:
    """ESOSD-Net with each phase given as many steps as joint training gives each task: the chosen schedule at
    twice the budget (the ``em`` part)."""
    return Row(f"{chosen.name}, equal updates per task", chosen.key + "_equal", "sosd", "em", chosen.overrides)


def double_key(preset: str, key: str, chosen: Row) -> str:
    """The row key under which ``key`` runs at twice the budget: on street the chosen EM row at 2B is the ``em``
    part's equal-updates run (the same config but for its name), so both parts share that one run."""
    return equal_updates_row(chosen).key if (preset, key) == ("street", chosen.key) else key


def doubled(sc: StudyConfig, chosen: Row, rows: set[tuple[str, str]]) -> list[RunSpec]:
    """The ``double`` part: the given (preset, row key) pairs at twice the budget, seed-major, street first."""
    if "double" not in sc.parts:
        return []
    by_preset = {"street": unique([r for r in street_rows(sc) if r.strategy != "em"] + [chosen]),
                 "indoor": unique(indoor_rows(chosen))}

    def run_row(p, r):
        return equal_updates_row(chosen) if double_key(p, r.key, chosen) != r.key else r
    specs = [RunSpec(p, run_row(p, r), 2 * sc.budget, s) for p in ("street", "indoor") for s in range(sc.seeds)
             for r in by_preset[p] if (p, r.key) in rows]
    if "methods" in sc.parts:  # paired with MTL at 2B, a row of the claims above
        specs += [RunSpec("street", r, 2 * sc.budget, s) for s in range(sc.seeds) for r in method_rows()
                  if r.key in sc.methods_double]
    return specs


def prioritise(specs: list[RunSpec], first: list[str]) -> list[RunSpec]:
    """``specs`` with the rows named in ``first`` ("preset:row", e.g. "street:sosd") first, in that order and
    row by row (every seed of one row before the next: a partial run of the study then has whole claims at
    n seeds, not every claim at fewer), then the rest in their planned order. The runs are the same."""
    order = []
    for item in first:
        preset, _, key = item.partition(":")
        order += [s for s in specs if s.preset == preset and s.row.key == key and s not in order]
    return order + [s for s in specs if s not in order]


def counterfactual_rows(sc: StudyConfig, chosen: Row) -> list[Row]:
    """MTL, SOSD-Net and ESOSD-Net on the counterfactual scenes (rows keyed ``<row>_cf``)."""
    lo, hi = sc.size_scale
    mtl, sosd = TABLES["1"].rows[2], TABLES["1"].rows[3]
    return [Row(f"{r.name}, sizes independent of class", r.key + "_cf", r.variant, r.strategy,
                r.overrides + (f"data.size_scale=[{lo},{hi}]",)) for r in (mtl, sosd, chosen)]


FOCAL_AWARE = Row("SOSD-Net (focal-aware)", "sosd_focal", "sosd", "joint", ("model.focal_aware=true",))


def focal_evals(sc: StudyConfig) -> tuple:
    return tuple((f"f×{f}", (f"data.focal_scale=[{f},{f}]",)) for f in sc.focal_evals)


def dedupe(specs: list[RunSpec]) -> list[RunSpec]:
    """One spec per run folder (a run asked for by two parts trains once, with every evaluation asked for)."""
    out: dict[str, RunSpec] = {}
    for s in specs:
        if s.name in out:
            prev = out[s.name]
            out[s.name] = RunSpec(prev.preset, prev.row, prev.steps, prev.seed, prev.overrides,
                                  prev.evals + tuple(e for e in s.evals if e not in prev.evals))
        else:
            out[s.name] = s
    return list(out.values())


def claims(chosen: Row) -> list[dict]:
    """Every ordering the paper's Tables 1-4 state: for each metric, each pair of rows with published
    figures (Table 4: each method against ESOSD-Net), "better" being the row the paper ranks ahead."""
    out = []
    for num, preset in (("1", "street"), ("2", "indoor"), ("3", "indoor"), ("4", "street")):
        t = TABLES[num]
        keys = [r.key for r in t.rows if r.key in t.paper]
        for c in t.columns:
            ks = [k for k in keys if c.key in t.paper[k]]
            for i, a in enumerate(ks):
                for b in ks[i + 1:]:
                    if num == "4" and "esosd" not in (a, b):
                        continue
                    pa, pb = t.paper[a][c.key], t.paper[b][c.key]
                    if pa == pb:
                        continue
                    better, worse = (a, b) if (pa > pb) == c.higher_is_better else (b, a)
                    out.append({"table": num, "preset": preset, "metric": c.key, "title": c.title,
                                "higher_is_better": c.higher_is_better, "scale": c.scale, "digits": c.digits,
                                "better": chosen.key if better == "esosd" else better,
                                "worse": chosen.key if worse == "esosd" else worse,
                                "paper": (t.paper[better][c.key], t.paper[worse][c.key])})
    return out
