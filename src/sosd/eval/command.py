"""Evaluate a checkpoint, or score saved prediction files offline, with the metrics of §4.1.

A checkpoint (run folder = its latest checkpoint, checkpoint folder, or model.safetensors):

  sosd eval --checkpoint runs/esosd_indoor                 # the run's own validation set, from its config
  sosd eval --checkpoint runs/nyu --dataset nyuv2 --root data/nyu --split test --depth-protocol eigen
  sosd eval --checkpoint runs/x --save-predictions preds/  # also write the prediction files (re-score
                                                           # them later with --predictions preds/)

Without --dataset (or with the checkpoint's own dataset) the data settings come from the checkpoint's
config (its reported split data.test_split, size, seed, root); any dataset flag given overrides its setting. Another
--dataset starts from that dataset's defaults below. Results are also written to --out (default
<run folder>/eval_<dataset>_<split>.json), with the checkpoint, variant and training step.

Offline (any codebase's outputs, in the format of sosd.eval.prediction_files):

  sosd eval --predictions preds/ --dataset nyuv2 --root data/nyu --split test --out nyu.json
  sosd eval --predictions preds/ --dataset cityscapes --root data/cityscapes --split val --out cs.json
  sosd eval --predictions preds/ --dataset synthetic --preset indoor --n 64 --height 240 --width 320

NYU files: <id>_depth.png (uint16 mm, 0 = none), <id>_labels.png (uint8 1..40, 0 = none).
Cityscapes files: <city>/<frame>_disparity.png (uint16, (p-1)/256 px, 0 = none),
<city>/<frame>_labelTrainIds.png (uint8 0..18, 255 = none).
Pixels without a label prediction count as wrong; valid pixels without a depth prediction are excluded
and counted (missing_depth_pixels, depth_coverage). The depth protocol is printed with every result.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from sosd.errors import SOSDError


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("what to evaluate (exactly one)")
    src.add_argument("--predictions", metavar="DIR", help="folder of prediction files to score offline")
    src.add_argument("--checkpoint", metavar="CKPT", help="checkpoint to run on the dataset and score")
    d = p.add_argument_group("dataset")
    d.add_argument("--dataset", help="synthetic | nyuv2 | cityscapes | ... (see sosd.data.factory)")
    d.add_argument("--root", default="", help="dataset root (unused for synthetic)")
    d.add_argument("--split", default=None, help="split to evaluate (default: test; Cityscapes: val)")
    d.add_argument("--preset", default=None, choices=("indoor", "street"),
                   help="synthetic preset: indoor (depth, NYU format; the default) | street (disparity, "
                        "Cityscapes format)")
    d.add_argument("--n", type=int, default=None, help="synthetic: number of scenes (default 64)")
    d.add_argument("--seed", type=int, default=None, help="synthetic: scene seed (as data.seed in training; "
                                                          "default 0)")
    d.add_argument("--height", type=int, default=None,
                   help="evaluated image height (default 480; 256 for cityscapes and the street preset)")
    d.add_argument("--width", type=int, default=None,
                   help="evaluated image width (default 640; 512 for cityscapes and the street preset)")
    d.add_argument("--nyu-classes", type=int, default=None, choices=(40, 13), help="NYU class set (default 40)")
    m = p.add_argument_group("metrics")
    m.add_argument("--depth-protocol", default="paper", choices=("paper", "eigen"),
                   help="paper (§4.1: pixels over the set, no crop, no cap) | eigen (cap 1e-3..10 m, Eigen crop, "
                        "per-image mean, + sq_rel, log_rms, silog)")
    m.add_argument("--format", dest="fmt", default=None, choices=("nyu", "cityscapes"),
                   help="prediction file format (default: from the dataset: depth -> nyu, disparity -> cityscapes)")
    m.add_argument("--tasks", default="depth,semantic",
                   help="offline: comma-separated tasks to score: depth (depth or disparity), semantic "
                        "(a checkpoint is scored on the tasks it predicts)")
    m.add_argument("--out", metavar="FILE.json", help="write the results as JSON here")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")
    c = p.add_argument_group("checkpoint evaluation")
    c.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    c.add_argument("--batch-size", type=int, default=None, help="evaluation batch size (default: the "
                                                                "checkpoint's eval.batch_size)")
    c.add_argument("--save-predictions", metavar="DIR", default=None,
                   help="also write every evaluated sample's prediction files here (named by sample id, in "
                        "the dataset's format), to re-score with --predictions DIR")


def _data_config(args):
    from sosd.config import DataConfig

    if not args.dataset:
        raise SOSDError("--dataset is required (synthetic, nyuv2, cityscapes, ...)")
    preset = args.preset or "indoor"
    small = args.dataset == "cityscapes" or (args.dataset == "synthetic" and preset == "street")
    height = args.height if args.height is not None else (256 if small else 480)
    width = args.width if args.width is not None else (512 if small else 640)
    if height < 1 or width < 1:
        raise SOSDError(f"--height and --width must be positive, got {height}x{width}")
    split = args.split or ("val" if args.dataset == "cityscapes" else "test")
    kw = dict(dataset=args.dataset, root=args.root or "", preset=preset, height=height, width=width,
              seed=0 if args.seed is None else args.seed, nyu_classes=args.nyu_classes or 40, val_split=split)
    if args.n is not None:
        if args.n < 1:
            raise SOSDError(f"--n must be >= 1, got {args.n}")
        kw["val_size" if split != "train" else "train_size"] = args.n
    return DataConfig(**kw), split


def _checkpoint_data_config(args, ckpt_cfg):
    """(DataConfig, split) for ``--checkpoint``: the checkpoint's own ``cfg.data`` (its reported split, data.test_split) when
    no --dataset is given or it names the same dataset, each dataset flag given overriding its setting;
    another --dataset -> that dataset's defaults (as for --predictions)."""
    import dataclasses

    base = ckpt_cfg.data
    if args.dataset and args.dataset != base.dataset:
        return _data_config(args)
    from sosd.data.factory import reported_split

    split = args.split or reported_split(base)  # the reported split, never the one best.ckpt was chosen on
    kw = {"augment": False, "val_split": split}
    for flag, key in (("root", "root"), ("preset", "preset"), ("seed", "seed"), ("height", "height"),
                      ("width", "width"), ("nyu_classes", "nyu_classes")):
        v = getattr(args, flag)
        if v is not None and v != "":
            kw[key] = v
    if kw.get("height", 1) < 1 or kw.get("width", 1) < 1:
        raise SOSDError(f"--height and --width must be positive, got {args.height}x{args.width}")
    if args.n is not None:
        if args.n < 1:
            raise SOSDError(f"--n must be >= 1, got {args.n}")
        kw["val_size" if split != "train" else "train_size"] = args.n
    return dataclasses.replace(base, **kw), split


def _model_target_kind(cfg, meta: dict) -> str:
    """depth | disparity: what the checkpoint's depth head predicts (from its training data)."""
    if meta.get("target_kind"):
        return meta["target_kind"]
    street = cfg.data.dataset == "cityscapes" or (cfg.data.dataset == "synthetic" and cfg.data.preset == "street")
    return "disparity" if street else "depth"


def checkpoint_run_dir(ckpt: Path) -> Path:
    """The run folder of a resolved checkpoint (``run/checkpoints/step_x`` -> ``run``), else its folder."""
    folder = ckpt.parent if ckpt.is_file() else ckpt
    return folder.parent.parent if folder.parent.name == "checkpoints" else folder


def checkpoint_name(ckpt: Path) -> str:
    """A short name for tables: ``<run>/<checkpoint>`` (``tiny/step_0000004``)."""
    folder = ckpt.parent if ckpt.is_file() else ckpt
    run = checkpoint_run_dir(ckpt)
    return folder.name if run == folder else f"{run.name}/{folder.name}"


def evaluate_checkpoint(args) -> dict:
    """``sosd eval --checkpoint CKPT``: run a trained model on the dataset (at the dataset's size) and score
    it with :func:`sosd.eval.evaluate.evaluate_model`. Returns the keys of the offline path
    (``SceneMetrics.compute`` + ``counts``, protocol, format, target_kind, tasks, predictions, dataset,
    split, root, height, width[, preset, seed][, eigen_crop]) plus ``checkpoint``, ``variant``, ``step``.
    With ``--save-predictions DIR`` every evaluated sample's prediction files are written to DIR."""
    from sosd.data import build_dataset
    from sosd.eval.depth_metrics import describe_protocol, eigen_crop
    from sosd.eval.evaluate import evaluate_model
    from sosd.eval.predict import resolve_device
    from sosd.eval.prediction_files import format_for
    from sosd.checkpoint import load_model, resolve

    device = resolve_device(args.device)
    ckpt = resolve(args.checkpoint)
    model, cfg, meta = load_model(ckpt, device, with_meta=True)
    data_cfg, split = _checkpoint_data_config(args, cfg)
    dataset = build_dataset(data_cfg, split)
    what = f"the {data_cfg.dataset} {split} set" + (f" ({data_cfg.preset})" if data_cfg.dataset == "synthetic" else "")
    target_kind = dataset.target_kind
    if model.has_semantic and dataset.num_classes != cfg.model.num_classes:
        raise SOSDError(f"checkpoint {ckpt} predicts {cfg.model.num_classes} classes but {what} has "
                        f"{dataset.num_classes}; evaluate it on a dataset with its classes (it was trained on "
                        f"{cfg.data.dataset}" + (f", preset {cfg.data.preset}" if cfg.data.dataset == "synthetic"
                                                 else "") + ")")
    model_kind = _model_target_kind(cfg, meta)
    if model.has_depth and model_kind != target_kind:
        raise SOSDError(f"checkpoint {ckpt} predicts {model_kind} but the targets of {what} are {target_kind}; "
                        f"a depth model is scored on metric depth (NYU-like), a disparity model on disparity "
                        f"(Cityscapes-like)")
    if target_kind == "disparity" and args.depth_protocol != "paper":
        raise SOSDError(f"depth protocol '{args.depth_protocol}' applies to metric depth (NYU) only; disparity "
                        f"is scored as mean absolute error over the set")
    if len(dataset) == 0:
        raise SOSDError(f"{what} has no samples to evaluate")
    batch_size = args.batch_size or cfg.eval.batch_size
    if batch_size < 1:
        raise SOSDError(f"--batch-size must be >= 1, got {batch_size}")

    fmt = format_for(target_kind)
    save_dir = Path(args.save_predictions) if args.save_predictions else None
    source = _IdRecorder(dataset) if save_dir is not None else dataset
    metrics = _recording_metrics(dataset.num_classes, target_kind, args.depth_protocol,
                                 getattr(dataset, "ignore_index", 255)).to(device)
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        metrics.on_batch = _PredictionWriter(save_dir, source, fmt)
    out = evaluate_model(model, source, depth_protocol=args.depth_protocol, batch_size=batch_size,
                         device=device, progress=not args.no_progress, metrics=metrics)
    out.update(metrics.counts())
    out["protocol"] = describe_protocol(target_kind, args.depth_protocol)
    out["format"] = fmt.name
    out["target_kind"] = target_kind
    out["tasks"] = [t for t, has in (("depth", model.has_depth), ("semantic", model.has_semantic)) if has]
    out["predictions"] = str(save_dir) if save_dir is not None else None
    if args.depth_protocol == "eigen":
        out["eigen_crop"] = {f"{h}x{w}": list(eigen_crop(h, w)) for h, w in sorted(metrics.shapes)}
    out.update(dataset=data_cfg.dataset, split=split, root=data_cfg.root or "", height=data_cfg.height,
               width=data_cfg.width)
    if data_cfg.dataset == "synthetic":
        out.update(preset=data_cfg.preset, seed=data_cfg.seed)
    out.update(checkpoint=str(ckpt), variant=cfg.model.variant, step=int(meta.get("step", 0)))
    return out


def _recording_metrics(num_classes: int, target_kind: str, depth_protocol: str, ignore_index: int):
    """A SceneMetrics that also records the evaluated sizes (``shapes``) and hands each batch's predictions
    to ``on_batch(pred_depth, pred_labels)`` when set (to write prediction files)."""
    from sosd.eval.metrics import SceneMetrics

    class RecordingMetrics(SceneMetrics):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.shapes: set[tuple[int, int]] = set()
            self.on_batch = None

        def update(self, pred_depth, pred_labels, target, valid, labels, pred_valid=None) -> None:
            super().update(pred_depth, pred_labels, target, valid, labels, pred_valid)
            self.shapes.add(tuple(int(v) for v in target.shape[-2:]))
            if self.on_batch is not None:
                self.on_batch(pred_depth, pred_labels)

    return RecordingMetrics(num_classes, target_kind, depth_protocol, ignore_index=ignore_index)


class _IdRecorder:
    """A dataset view that returns the dataset's items and remembers each sample's id (``ids[i]``), so
    predictions can be named without generating or reading a sample twice."""

    def __init__(self, dataset):
        self.dataset, self.ids = dataset, {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        from sosd.data.sample import to_tensors

        s = self.dataset.sample(i)  # as SceneDataset.__getitem__, recording the id on the way
        self.ids[i] = s.id
        if self.dataset.transform is not None:
            s = self.dataset.transform(s, i)
        return to_tensors(s)

    def sample_id(self, i: int) -> str:
        sid = self.ids.pop(i, None)
        if sid is None:  # items loaded elsewhere (worker processes): ask the dataset
            sid = self.dataset.sample(i).id
        if not sid:
            raise SOSDError(f"sample {i} of the dataset has no id, so its prediction file cannot be named")
        return sid


class _PredictionWriter:
    """Writes each batch's predictions, in dataset order, as prediction files named by sample id."""

    def __init__(self, out_dir: Path, source: _IdRecorder, fmt):
        self.out_dir, self.source, self.fmt, self.next = out_dir, source, fmt, 0

    def __call__(self, pred_depth, pred_labels) -> None:
        from sosd.eval.prediction_files import write_prediction

        ref = pred_depth if pred_depth is not None else pred_labels
        for j in range(ref.shape[0]):
            write_prediction(self.out_dir, self.source.sample_id(self.next),
                             None if pred_depth is None else pred_depth[j].float().cpu().numpy(),
                             None if pred_labels is None else pred_labels[j].cpu().numpy(), self.fmt)
            self.next += 1


def _json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None  # strict JSON has no NaN: a metric with nothing evaluated is null
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def run(args) -> int:
    if args.checkpoint and args.predictions:
        raise SOSDError("--checkpoint and --predictions are mutually exclusive: evaluate a checkpoint, or score "
                        "a folder of prediction files, not both")
    if not args.checkpoint and not args.predictions:
        raise SOSDError("say what to evaluate: --predictions DIR (offline) or --checkpoint CKPT")
    from sosd.errors import check_writable

    out, method = args.out, None
    if out:  # check before evaluating: never print results and then fail on the file
        check_writable(out, "--out")
    if args.checkpoint:
        from sosd.checkpoint import resolve

        if not out:
            check_writable(checkpoint_run_dir(resolve(args.checkpoint)), "the run folder (the default --out; "
                           "pass --out FILE.json elsewhere)", folder=True)
        results = evaluate_checkpoint(args)
        ckpt = resolve(args.checkpoint)
        method = checkpoint_name(ckpt)
        out = out or str(checkpoint_run_dir(ckpt) / f"eval_{results['dataset']}_{results['split']}.json")
    else:
        from sosd.data import build_dataset
        from sosd.eval.offline import evaluate_predictions

        cfg, split = _data_config(args)
        dataset = build_dataset(cfg, split)
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        results = evaluate_predictions(args.predictions, dataset, fmt=args.fmt, depth_protocol=args.depth_protocol,
                                       progress=not args.no_progress, tasks=tasks)
        results.update(dataset=args.dataset, split=split, root=args.root or "", height=cfg.height, width=cfg.width)
        if args.dataset == "synthetic":
            results.update(preset=cfg.preset, seed=cfg.seed)
    from sosd.eval.metrics import format_table

    layout = "cityscapes" if results.get("target_kind") == "disparity" else "nyu"
    print(format_table(results, layout, method=method))
    if out:
        out = Path(out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(_json_safe(results), indent=2) + "\n")
        except OSError as e:
            raise SOSDError(f"cannot write --out {out}: {e.strerror or e}") from None
        print(f"wrote {out}")
    return 0
