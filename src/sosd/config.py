"""Explicit configuration dataclasses, YAML loading, ``key=value`` overrides, and field help.

A YAML file mirrors :class:`Config` one to one (``model:``, ``data:``, ``train:``, ``eval:`` sections);
``section.field=value`` overrides on the command line win over the file. Unknown keys are errors that
suggest the closest valid key. The resolved config is written beside every run (``config.yaml``).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key and the problem.
    ``key``: the dotted key concerned, when there is one (load_config adds its line in the YAML file)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def _f(default: Any, help: str, **kw):
    """A dataclass field with its help text (shown by ``sosd train --help``)."""
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


VARIANTS = ("semantic_only", "depth_only", "mtl", "sosd")
MIN_INPUT_SIDE = 32  # = sosd.models.sosd_net.MIN_INPUT_SIZE (not imported: this module does not need torch)
BACKBONES = ("xception65", "xception_small")


@dataclass
class ModelConfig:
    variant: str = _f("sosd", "semantic_only | depth_only | mtl (shared trunk, two plain heads) | sosd "
                              "(semantic-to-depth + depth-to-semantic units, §3.2.3-3.2.4)")
    backbone: str = _f("xception65", "xception65 (the paper's aligned Xception-65, timm's names) | "
                                     "xception_small (same family: 2 middle blocks, about 1/2-1/6 of the widths, for CPU work)")
    output_stride: int = _f(16, "backbone output stride, 16 or 8 (through dilation, §3.2.1)")
    num_classes: int = _f(40, "number of semantic classes (NYU: 40, Cityscapes: 19)")
    aspp_channels: int = _f(256, "channels of each ASPP branch and of its projection")
    atrous_rates: list = _f([6, 12, 18], "dilation rates of the ASPP atrous branches at output stride 16 "
                                         "(doubled at output stride 8)")
    refined_channels: int = _f(48, "channels each task projects the stride-4 refined feature to (§3.2.2)")
    decoder_channels: int = _f(256, "channels of Semantic Feature, Common Representation and Depth Feature")
    focal_aware: bool = _f(False, "feed each sample's sqrt(fx*fy) into semantic-to-depth per eq. (3) "
                                  "(beyond the paper; off = the paper's BatchNorm-only unit)")
    focal_ref: float = _f(500.0, "reference focal length in px that focal_aware divides sqrt(fx*fy) by")
    depth_prior: float = _f(3.0, "initial value of the depth output (metres, or px for disparity): the "
                                 "bias of the last depth layer starts at softplus^-1(depth_prior)")
    init_std: float = _f(0.1, "std of the Gaussian that initialises task-specific layers "
                              "(§4.1: variance 0.01 -> std 0.1)")
    pretrained: str = _f("", "path to timm xception65 ImageNet weights (.safetensors/.pth) or a hub id "
                             "like timm/xception65.ra3_in1k; empty = random init")


@dataclass
class DataConfig:
    dataset: str = _f("synthetic", "synthetic | nyuv2 | nyuv2_mtan | nyud_mt | cityscapes | folder")
    root: str = _f("", "dataset root (unused for synthetic)")
    preset: str = _f("indoor", "synthetic preset: indoor (NYU-like, metric depth) | street "
                               "(Cityscapes-like, disparity in px)")
    height: int = _f(480, "training/evaluation image height")
    width: int = _f(640, "training/evaluation image width")
    train_size: int = _f(2000, "synthetic: number of training scenes")
    val_size: int = _f(64, "synthetic: number of held-out scenes (drawn from a different seed)")
    seed: int = _f(0, "synthetic: scene seed (test scenes use seed + 1_000_003, val scenes seed + 2_000_029)")
    focal_scale: list = _f([1.0, 1.0], "synthetic: range of a per-scene focal-length multiplier "
                                       "(1,1 = fixed intrinsics as in the public datasets)")
    size_scale: list = _f([1.0, 1.0], "synthetic: range of a log-uniform factor on each object's physical size, "
                                      "drawn independently of its class ([0.5, 2.0]: the counterfactual where "
                                      "size no longer follows class; 1,1 = the class's own sizes)")
    train_split: str = _f("train", "split used for training")
    val_split: str = _f("test", "split validated on during training, and that train.best_metric selects on "
                                "(never the reported split when best_metric is set: NYU val, synthetic val)")
    test_split: str = _f("", "split the tables and `sosd eval` report (empty = the dataset's: Cityscapes val, "
                             "else test); model selection never uses it")
    nyu_depth: str = _f("depths", "NYU depth source: depths (inpainted) | rawDepths")
    nyu_classes: int = _f(40, "NYU class set: 40 (Gupta et al.) | 13 (MTAN-family)")
    augment: bool = _f(False, "paper augmentation: random scale, colour jitter, horizontal flip")
    scales: list = _f([1.0, 1.2, 1.5], "augmentation scale set (NYU: 1,1.2,1.5; Cityscapes: 0.5..1.75)")
    num_workers: int = _f(0, "DataLoader worker processes: k > 0 renders/reads the next batches in k "
                                 "processes while the model trains (the same samples: augmentation is "
                                 "seeded per (seed, epoch, index))")


@dataclass
class EMConfig:
    switch_every: int = _f(1, "EM: phase length in units (1 = alternate every iteration, as Algorithm 1)")
    switch_unit: str = _f("step", "EM: unit of switch_every: step | epoch")
    first_phase: str = _f("depth", "EM: phase of the first iteration: depth | semantic (Algorithm 1: depth)")
    alpha: list = _f([1.0, 1.0, 1.0], "EM: alpha^t weights of the three branch gradients into theta^com "
                                      "(eq. 5): depth phase (dep, 3d, 2d), semantic phase (sem, 3d, d^-2)")


@dataclass
class MTLConfig:
    """Settings of the multi-task baselines (train.strategy = equal | kendall | gradnorm | mgda | dwa |
    pcgrad | cagrad | aligned_mtl; see sosd.train.strategies)."""
    kendall_depth_form: str = _f("gaussian", "kendall: depth term, gaussian (the paper's regression form "
                                             "L/(2 sigma^2) + log sigma) | laplace (L/b + log b, the L1 "
                                             "likelihood)")
    kendall_init: float = _f(0.0, "kendall: initial log-variance s = log sigma^2 of both tasks "
                                  "(0: sigma = 1)")
    gradnorm_alpha: float = _f(1.5, "gradnorm: asymmetry alpha (Chen et al. 2018 use 1.5 on NYUv2)")
    gradnorm_layer: str = _f("aspp.project.conv.weight", "gradnorm: the shared weight W whose gradient norms "
                                                          "are balanced (a name of model.named_parameters())")
    dwa_temperature: float = _f(2.0, "dwa: temperature T of the softmax over loss ratios (Liu et al.: 2)")
    dwa_window: int = _f(0, "dwa: loss-averaging window in steps (0 = one epoch, as Liu et al.)")
    mgda_normalization: str = _f("none", "mgda: task-gradient normalisation before the min-norm solve: "
                                         "none | l2 | loss | loss+ (Sener & Koltun's code options)")
    mgda_space: str = _f("representation", "mgda: representation (MGDA-UB: gradients w.r.t. the decoder "
                                           "inputs) | parameters (MGDA: gradients w.r.t. theta^com)")
    cagrad_c: float = _f(0.5, "cagrad: radius c of the ball around the average gradient "
                              "(0 = the average gradient)")
    cagrad_rescale: bool = _f(True, "cagrad: divide the update by 1 + c^2 (the official code's default)")
    aligned_scale: str = _f("min", "aligned_mtl: scale of the aligned gradients: min (the paper: smallest "
                                   "singular value) | median | rmse")


@dataclass
class JDConfig:
    """train.strategy=jd: one of torchjd's multi-task methods by its class name (sosd.train.strategies.jd;
    ``sosd train --help`` and README.md list them). Set ``aggregator`` (combines the task gradients of the
    shared trunk theta^com; the task-specific parameters get their own gradients) or ``scalarizer``
    (combines the task losses; if set, it is used and ``aggregator`` is ignored)."""
    aggregator: str = _f("UPGrad", "jd: torchjd aggregator (UPGrad, MGDA, PCGrad, CAGrad, AlignedMTL, NashMTL, "
                                   "IMTLG, GradVac, DualProj, GradDrop, ConFIG, FairGrad, ExcessMTL, PCD, MoDo, "
                                   "SDMGrad, CRMOGM, Mean, Sum, Random, Constant, TrimmedMean)")
    scalarizer: str = _f("", "jd: torchjd scalarizer instead (UW, DWA, FAMO, IMTLL, Random, GeometricMean, "
                             "STCH, COSMOS, PBI, Mean, Sum, Constant); empty = use the aggregator")
    kwargs: dict = _f({}, "jd: constructor arguments of the method, a mapping, e.g. {c: 0.4} for CAGrad or "
                          "{weights: [1, 2]} (lists become tensors); defaults: torchjd's")


@dataclass
class TrainConfig:
    name: str = _f("run", "run name: outputs go to <out_dir>/<name>/")
    out_dir: str = _f("runs", "parent folder of run folders")
    strategy: str = _f("joint", "joint (one step on L_sem + L_dep) | em (Algorithm 1) | single "
                                "(single-task variants) | jd (any torchjd method: train.jd) | equal | kendall | "
                                "gradnorm | mgda | dwa | pcgrad | cagrad | aligned_mtl (train.mtl)")
    steps: int = _f(1000, "optimiser steps to train (an epoch is len(train set) // batch_size steps)")
    batch_size: int = _f(16, "samples per optimiser step, summed over all processes under torchrun (the "
                                 "global batch; §4.1: 16); must divide by processes x accum_steps")
    accum_steps: int = _f(1, "gradient accumulation: micro-batches per optimiser step")
    lr: float = _f(1e-4, "Adam learning rate (§4.1: 1e-4)")
    weight_decay: float = _f(0.0, "Adam weight decay")
    schedule: str = _f("constant", "learning-rate schedule: constant (the paper) | poly | cosine | wsd "
                                   "(warm-up, stable, decay: constant, then linear to 0 over the last "
                                   "train.decay_steps)")
    poly_power: float = _f(0.9, "exponent of the poly schedule")
    decay_steps: int = _f(0, "wsd schedule: the last steps, over which the learning rate falls linearly to 0")
    warmup_steps: int = _f(0, "linear warm-up steps")
    grad_clip: float = _f(0.0, "clip the gradient norm to this value (0 = off)")
    em: EMConfig = field(default_factory=EMConfig, metadata={"help": "EM phase settings"})
    mtl: MTLConfig = field(default_factory=MTLConfig, metadata={"help": "multi-task baseline settings"})
    jd: JDConfig = field(default_factory=JDConfig, metadata={"help": "torchjd method (train.strategy=jd)"})
    val_every: int = _f(0, "validate every k steps (0 = only at the end)")
    best_metric: str = _f("", "metric that picks best.ckpt, e.g. miou (higher) or rel (lower); empty = none")
    ckpt_every: int = _f(0, "write a checkpoint every k steps (0 = only at the end)")
    log_every: int = _f(10, "TensorBoard scalars every k steps")
    seed: int = _f(0, "seed of weights, data order and augmentation")
    threads: int = _f(0, "torch CPU threads per process (0 = torch's default)")
    nonfinite: str = _f("stop", "on a non-finite loss: stop (keep last good checkpoint) | skip (count it)")
    device: str = _f("cpu", "cpu | cuda | cuda:N (under torchrun, cuda = cuda:LOCAL_RANK)")
    sync_bn: bool = _f(False, "torchrun: BatchNorm -> SyncBatchNorm, statistics over all processes' "
                              "micro-batches (CUDA only); use with small per-GPU batches (the semantic-to-depth "
                              "BatchNorm carries the eq. (3) scale)")
    amp: str = _f("none", "mixed precision: none | bf16 (autocast) | fp16 (autocast + GradScaler)")
    optimizer_impl: str = _f("fused", "Adam's implementation: fused (one kernel over all parameters; on 2 CPU "
                                      "cores 5-8x faster than loop, see results/README.md) | foreach | loop "
                                      "(torch's per-parameter loop, sosd's before). The same update to float "
                                      "rounding (~1e-7); a run and its resume use one implementation, so resume "
                                      "stays bit-exact")
    keep_memory: bool = _f(True, "keep freed memory in the process (glibc's mallopt: src/sosd/train/"
                                 "allocator.py) instead of page-faulting each step's activations in again: "
                                 "2.2x a Xception-65 step at 256x512, batch 8, on the CPU; the resident "
                                 "memory stays at its peak. No effect outside glibc (macOS, Windows)")
    channels_last: bool = _f(True, "train in channels_last memory format (NHWC): on 2 CPU cores 1.08-1.17x "
                                   "steps/s at the study and main-job sizes, 1.11x for Xception-65 at 256x512 "
                                   "(results/README.md; the depthwise fast path removed NHWC's slow dilated "
                                   "backward). The same training to float rounding; false: NCHW")
    compile: bool = _f(False, "torch.compile the model for training (inductor). Off: compiling costs minutes "
                              "on 2 CPU cores (8 min measured on a loaded machine), paid again per input shape "
                              "and EM phase, more than a short run gains; compiled graphs are cached in "
                              "TORCHINDUCTOR_CACHE_DIR (default /tmp/torchinductor_$USER), so later runs at the "
                              "same shapes pay less. Single process only")


@dataclass
class EvalConfig:
    depth_protocol: str = _f("paper", "paper (pixels over the set, no crop, no cap) | eigen (cap 1e-3..10 m, "
                                      "Eigen crop, per-image mean, + sq_rel, log_rms, silog)")
    batch_size: int = _f(4, "evaluation batch size")
    num_pictures: int = _f(4, "rows in predictions.png")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# ---------------------------------------------------------------------------------------------- parsing

def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}", key)
        return _from_dict(tp, value, prefix=key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"config key '{key}' must be true/false, got {value!r}", key)
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}", key)
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}", key) from None
        if not math.isfinite(f) or f != int(f):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}", key)
        return int(f)
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}", key) from None
    if tp is str:
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}", key)
        return str(value)
    if tp is dict:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError:
                raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}", key) from None
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping such as {{c: 0.4}}, got {value!r}", key)
        return dict(value)
    if tp is list:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value if value.strip().startswith("[") else f"[{value}]")
            except yaml.YAMLError:
                raise ConfigError(f"config key '{key}' must be a list, got {value!r}", key) from None
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}", key)
        return list(value)
    return value


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(valid)})"


def _suggest_key(key: str, valid: list[str], prefix: str = "") -> str:
    """Suggestion for an unknown key ``prefix + key`` among the ``valid`` names of its section: the same
    name in another section (a key under the wrong section), else the closest name of this section,
    else the section's keys."""
    key = str(key)
    elsewhere = [k for k in _all_keys() if k.rsplit(".", 1)[-1] == key and k != prefix + key]
    if elsewhere:
        where = " or ".join(f"'{k}'" for k in elsewhere[:3])
        return f" (did you mean {where}? '{key}' belongs under another section)"
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (valid keys{' of ' + prefix.rstrip('.') if prefix else ''}: {', '.join(valid)})"


def _all_keys(cls=None, prefix: str = "") -> list[str]:
    """Every dotted key of the config, sections included (``train``, ``train.em``, ``train.em.alpha``)."""
    cls = cls or Config
    out = []
    for f in dataclasses.fields(cls):
        tp = _field_types(cls)[f.name]
        out.append(prefix + f.name)
        if dataclasses.is_dataclass(tp):
            out += _all_keys(tp, prefix + f.name + ".")
    return out


def _from_dict(cls, d: dict, prefix: str = ""):
    hints = _field_types(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in d.items():
        if k not in names:
            raise ConfigError(f"unknown config key '{prefix}{k}'" + _suggest_key(k, names, prefix), f"{prefix}{k}")
        kwargs[k] = _coerce(v, hints[k], prefix + k)
    obj = cls(**kwargs)
    return obj


def config_from_dict(d: dict | None) -> Config:
    """Build a :class:`Config` from a nested mapping; unknown keys raise :class:`ConfigError`."""
    cfg = _from_dict(Config, d or {})
    validate(cfg)
    return cfg


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``section.field=value`` (or ``train.em.alpha=[1,1,1]``) overrides; returns a new Config."""
    d = to_dict(cfg)
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"override '{ov}' is not of the form section.key=value")
        key, raw = ov.split("=", 1)
        parts = key.strip().split(".")
        node, cls = d, Config
        for i, p in enumerate(parts):
            names = [f.name for f in dataclasses.fields(cls)]
            if p not in names:
                raise ConfigError(f"unknown config key '{'.'.join(parts[:i + 1])}'"
                                  + _suggest_key(p, names, ".".join(parts[:i]) + "." if i else ""))
            tp = _field_types(cls)[p]
            if i == len(parts) - 1:
                if dataclasses.is_dataclass(tp):
                    raise ConfigError(f"config key '{key}' is a section; set one of its fields")
                try:
                    node[p] = yaml.safe_load(raw) if raw.strip() else ""
                except yaml.YAMLError as e:
                    raise ConfigError(f"override '{ov}': the value is not valid YAML ({getattr(e, 'problem', e)}); "
                                      f"quote it", key.strip()) from None
            else:
                if not dataclasses.is_dataclass(tp):
                    raise ConfigError(f"config key '{'.'.join(parts[:i + 1])}' has no sub-keys")
                node, cls = node[p], tp
    return config_from_dict(d)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply overrides."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist" + (" (it is a folder)" if p.is_dir() else ""))
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file {p} is not a text (UTF-8) file: byte {e.start} is "
                              f"{e.object[e.start:e.start + 1]!r}; expected YAML") from None
        except OSError as e:
            raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from None
        try:
            d = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
        except Exception as e:  # noqa: BLE001 - e.g. RecursionError on deeply nested input
            raise ConfigError(f"config file {p} cannot be parsed as YAML ({type(e).__name__}: {e})") from None
        if not isinstance(d, dict):
            raise ConfigError(f"config file {p} must hold a mapping with model/data/train/eval sections")
        try:
            cfg = config_from_dict(d)
        except ConfigError as e:
            line = _yaml_line(text, e.key) if e.key else None
            raise ConfigError(f"{p}{f', line {line}' if line else ''}: {e}", e.key) from None
        except (TypeError, ValueError, RecursionError) as e:  # e.g. a non-string key
            raise ConfigError(f"{p}: malformed config ({type(e).__name__}: {e})") from None
    else:
        cfg = Config()
    return apply_overrides(cfg, overrides or [])


def _yaml_line(text: str, key: str) -> int | None:
    """1-based line of dotted ``key`` (or of its deepest existing parent) in YAML ``text``; None if unknown."""
    try:
        node = yaml.compose(text)
    except Exception:  # noqa: BLE001 - best effort: only improves a message
        return None
    line = None
    for part in key.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == part:
                line, node = k.start_mark.line + 1, v
                break
        else:
            break
    return line


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_diff(a: Config, b: Config) -> list[str]:
    """The dotted keys whose values differ between two configs, as ``key: <a> vs <b>``."""
    return [f"{k}: {va!r} vs {vb!r}" for k in _all_keys()
            if not dataclasses.is_dataclass(va := _get(a, k)) and va != (vb := _get(b, k))]


def dump_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def validate(cfg: Config) -> None:
    """Cross-field checks that a dataclass cannot express."""
    def choice(key, value, allowed):
        if value not in allowed:
            raise ConfigError(f"config key '{key}' = {value!r} is not one of {', '.join(map(str, allowed))}"
                              + _suggest(str(value), [str(a) for a in allowed]), key)
    choice("model.variant", cfg.model.variant, VARIANTS)
    choice("model.backbone", cfg.model.backbone, BACKBONES)
    choice("model.output_stride", cfg.model.output_stride, (8, 16))
    choice("data.preset", cfg.data.preset, ("indoor", "street"))
    choice("train.schedule", cfg.train.schedule, ("constant", "poly", "cosine", "wsd"))
    if cfg.train.schedule == "wsd" and not 0 < cfg.train.decay_steps <= cfg.train.steps - cfg.train.warmup_steps:
        raise ConfigError(f"train.schedule = wsd needs 0 < train.decay_steps <= train.steps - "
                          f"train.warmup_steps; got decay_steps = {cfg.train.decay_steps}", "train.decay_steps")
    choice("train.em.switch_unit", cfg.train.em.switch_unit, ("step", "epoch"))
    choice("train.em.first_phase", cfg.train.em.first_phase, ("depth", "semantic"))
    choice("train.nonfinite", cfg.train.nonfinite, ("stop", "skip"))
    choice("train.amp", cfg.train.amp, ("none", "bf16", "fp16"))
    choice("train.mtl.kendall_depth_form", cfg.train.mtl.kendall_depth_form, ("gaussian", "laplace"))
    choice("train.mtl.mgda_normalization", cfg.train.mtl.mgda_normalization, ("none", "l2", "loss", "loss+"))
    choice("train.mtl.mgda_space", cfg.train.mtl.mgda_space, ("representation", "parameters"))
    choice("train.mtl.aligned_scale", cfg.train.mtl.aligned_scale, ("min", "median", "rmse"))
    if cfg.train.mtl.dwa_window < 0:
        raise ConfigError("config key 'train.mtl.dwa_window' must be >= 0 (0 = one epoch)")
    if cfg.train.mtl.dwa_temperature <= 0:
        raise ConfigError("config key 'train.mtl.dwa_temperature' must be > 0")
    if cfg.train.mtl.cagrad_c < 0:
        raise ConfigError("config key 'train.mtl.cagrad_c' must be >= 0")
    choice("eval.depth_protocol", cfg.eval.depth_protocol, ("paper", "eigen"))
    if cfg.model.num_classes < 1:
        raise ConfigError("config key 'model.num_classes' must be >= 1", "model.num_classes")
    for key in ("data.height", "data.width"):  # 0 = the stored size (folder datasets)
        v = getattr(cfg.data, key.split(".")[1])
        if v < 0 or 0 < v < MIN_INPUT_SIDE:
            raise ConfigError(f"config key '{key}' = {v} is too small for the network: each side must be at "
                              f"least {MIN_INPUT_SIDE} px (0 = the stored size)", key)
    reported = cfg.data.test_split or ("val" if cfg.data.dataset == "cityscapes" else "test")
    if cfg.train.best_metric and cfg.data.val_split == reported:
        raise ConfigError(
            f"train.best_metric = {cfg.train.best_metric!r} would pick best.ckpt on data.val_split = "
            f"{cfg.data.val_split!r}, the split results are reported on (model selection on reported data); "
            f"validate on a held-out split (NYU: val, synthetic: val) or set train.best_metric= (report the "
            f"last checkpoint)", "train.best_metric")
    if len(cfg.train.em.alpha) != 3:
        raise ConfigError("config key 'train.em.alpha' must hold 3 weights (one per branch, eq. 5)")
    if len(cfg.data.focal_scale) != 2 or cfg.data.focal_scale[0] > cfg.data.focal_scale[1]:
        raise ConfigError("config key 'data.focal_scale' must be [low, high] with low <= high")
    if len(cfg.data.size_scale) != 2 or not 0 < cfg.data.size_scale[0] <= cfg.data.size_scale[1]:
        raise ConfigError("config key 'data.size_scale' must be [low, high] with 0 < low <= high")
    _check_numbers(cfg)
    for key in ("train.steps", "train.batch_size", "train.accum_steps", "train.em.switch_every"):
        sec, *rest = key.split(".")
        v = getattr(cfg, sec)
        for r in rest:
            v = getattr(v, r)
        if v < 1:
            raise ConfigError(f"config key '{key}' must be >= 1, got {v}")


# numeric keys with a bound: (key, lowest allowed, strict). Checked at load, so a bad value is one line
# naming the key, never an optimiser's traceback minutes into a run.
_BOUNDS = (("train.lr", 0.0, True), ("train.weight_decay", 0.0, False), ("train.warmup_steps", 0, False),
           ("train.decay_steps", 0, False),
           ("train.grad_clip", 0.0, False), ("train.poly_power", 0.0, False), ("train.val_every", 0, False),
           ("train.ckpt_every", 0, False), ("train.log_every", 1, False), ("train.threads", 0, False),
           ("model.init_std", 0.0, True), ("model.depth_prior", 0.0, True), ("model.focal_ref", 0.0, True),
           ("data.num_workers", 0, False), ("data.train_size", 1, False), ("data.val_size", 1, False),
           ("eval.batch_size", 1, False), ("eval.num_pictures", 0, False))


def _get(cfg, key: str):
    v = cfg
    for part in key.split("."):
        v = getattr(v, part)
    return v


def _check_numbers(cfg: Config) -> None:
    """Every float of the config is finite (``nan`` and ``inf`` parse as floats); bounded keys in range;
    list-valued numbers (scales, alpha, focal_scale, atrous_rates) are finite numbers."""
    for key in _all_keys():
        v = _get(cfg, key)
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"config key '{key}' must be a finite number, got {v}", key)
    for key, low, strict in _BOUNDS:
        v = _get(cfg, key)
        if v < low or (strict and v == low):
            raise ConfigError(f"config key '{key}' must be {'>' if strict else '>='} {low}, got {v}", key)
    for key in ("data.scales", "data.focal_scale", "train.em.alpha", "model.atrous_rates"):
        for v in _get(cfg, key):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"config key '{key}' must hold finite numbers, got {v!r}", key)
    if min(cfg.data.scales, default=0) <= 0:
        raise ConfigError(f"config key 'data.scales' must hold positive numbers, got {cfg.data.scales}",
                          "data.scales")


def describe_fields(cls=Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) for every leaf field, for ``--help``."""
    rows = []
    for f in dataclasses.fields(cls):
        tp = _field_types(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            rows += describe_fields(tp, prefix + f.name + ".")
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((prefix + f.name, repr(default), f.metadata.get("help", "")))
    return rows
