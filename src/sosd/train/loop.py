"""The training loop as plain functions: ``fit`` builds everything from a Config and runs ``train_steps``.

Nothing here is task-specific: a strategy (strategies/) says what each step optimises. Everything that
decides the numbers is a function of (config, seed, step): the data order of epoch e is a permutation
seeded by (seed, e), augmentation draws from (seed, epoch, index), and the EM phase from the step, so a
resumed run replays exactly what the uninterrupted run would have done.

Under torchrun (several processes, see sosd.train.distributed and docs/distributed.md) the same loop runs
on every rank: ``train.batch_size`` is the GLOBAL batch (each rank takes its contiguous 1/world of every
global batch, so a config means the same optimisation on any world size), gradients are all-reduced by
DDP, validation metrics are summed across ranks, and rank 0 alone logs and writes files. Lines marked
"DDP:" are the multi-process additions; with one process they change nothing.
"""
from __future__ import annotations

import json
import math
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from sosd import checkpoint as ckpt
from sosd.config import Config, dump_config
from sosd.errors import SOSDError
from sosd.train import distributed
from sosd.train.allocator import keep_freed_memory
from sosd.train.strategies import build_strategy
from sosd.train.strategies.em import release

HIGHER_IS_BETTER = {"miou", "mean_acc", "pixel_acc", "delta1", "delta2", "delta3"}


class NonFiniteLoss(SOSDError):
    pass


@dataclass
class RunState:
    """What the loop carries between steps (all of it goes into a checkpoint)."""
    step: int = 0
    best: float | None = None
    skipped: int = 0
    history: list = field(default_factory=list)  # [{"step", "loss", "sem", "dep", "lr"}] at log points
    val_curve: list = field(default_factory=list)  # [{"step", <metric>: value}] at each train.val_every


def lr_factor(cfg, step: int) -> float:
    """Multiplier of the base learning rate at ``step``: warm-up, then constant (§4.1) / poly / cosine / wsd."""
    t = cfg.train
    if t.warmup_steps and step < t.warmup_steps:
        return (step + 1) / t.warmup_steps
    if t.schedule == "wsd":  # warm-up, stable, decay: a short run keeps its full rate until the last steps
        return min(1.0, (t.steps - step) / t.decay_steps)
    frac = min(1.0, (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps))
    if t.schedule == "poly":
        return (1 - frac) ** t.poly_power
    if t.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * frac))
    return 1.0


OPTIMIZER_IMPLS = ("fused", "foreach", "loop")


def make_optimizer(params, t) -> torch.optim.Adam:
    """Adam (§4.1) in the implementation ``t.optimizer_impl`` names (a TrainConfig): the same update to float
    rounding. fused: one kernel over all parameters instead of ~10 small ops per parameter tensor (the loop),
    which on CPU is most of the optimiser's time (results/profile_train.md); it needs every parameter on one
    device type, else foreach is used."""
    if t.optimizer_impl not in OPTIMIZER_IMPLS:
        raise SOSDError(f"train.optimizer_impl = {t.optimizer_impl!r} is not one of {', '.join(OPTIMIZER_IMPLS)}")
    params = list(params)
    impl = t.optimizer_impl
    if impl == "fused" and len({p.device.type for p in params}) > 1:
        impl = "foreach"
    kw = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}[impl]
    return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay, **kw)


def epoch_batches(n: int, batch: int, seed: int, epoch: int) -> list[list[int]]:
    """The micro-batches of one epoch: a permutation seeded by (seed, epoch), the tail dropped."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    return [perm[i:i + batch] for i in range(0, n - batch + 1, batch)]


class _Stop:
    """SIGINT/SIGTERM ask the loop to stop after the current step and save a checkpoint."""

    def __init__(self):
        self.signal = None
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


class Trainer:
    """Holds the model, optimiser, data and run folder of one run. ``fit()`` is the usual entry point."""

    def __init__(self, cfg: Config, run_dir: Path, progress: bool = True):
        from sosd.data import build_dataset
        from sosd.models import build_model

        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.keep_memory:
            keep_freed_memory()
        torch.manual_seed(t.seed)  # the same on every rank: identical initial weights
        distributed.init_from_env(t.device)  # DDP: join torchrun's process group (no-op in one process)
        self.world = distributed.world_size()
        self.device = distributed.device_for(t.device)  # DDP: cuda -> cuda:LOCAL_RANK
        self.train_set = build_dataset(cfg.data, cfg.data.train_split, train=True, seed=t.seed)
        self.val_set = build_dataset(cfg.data, cfg.data.val_split, train=False, seed=t.seed)
        for name, ds in (("training", self.train_set), ("validation", self.val_set)):
            if ds.num_classes != cfg.model.num_classes:
                raise SOSDError(f"the {name} set ({cfg.data.dataset}) has {ds.num_classes} classes but "
                                f"model.num_classes = {cfg.model.num_classes}; set model.num_classes="
                                f"{ds.num_classes}")
        # bad data stops the run here, before any step: the first sample of each split is read and checked
        from sosd.data.checks import check_first_sample

        for name, split, ds in (("training", cfg.data.train_split, self.train_set),
                                ("validation", cfg.data.val_split, self.val_set)):
            check_first_sample(ds, f"the {name} set ({cfg.data.dataset}, split '{split}')", cfg.model.num_classes)
        if t.batch_size % t.accum_steps:
            raise SOSDError(f"train.batch_size ({t.batch_size}) must be a multiple of train.accum_steps "
                            f"({t.accum_steps})")
        distributed.check_batch(t.batch_size, t.accum_steps, self.world)
        self.micro = t.batch_size // (t.accum_steps * self.world)  # DDP: batch_size is the global batch
        self.steps_per_epoch = len(self.train_set) // t.batch_size
        if self.steps_per_epoch < 1:
            raise SOSDError(f"the training set has {len(self.train_set)} samples, fewer than one batch of "
                            f"{t.batch_size}; lower train.batch_size")
        self.model = build_model(cfg.model)
        if t.sync_bn:
            # DDP: BatchNorm statistics over all ranks' micro-batches, not each rank's few samples. It matters
            # most in the semantic-to-depth unit: the BatchNorm ending each area branch carries the dataset's
            # focal-length / area scale of eq. (3) in its statistics; per-rank statistics on small per-GPU
            # batches make that scale noisy and rank-dependent (and the running statistics rank 0's alone).
            self.model = distributed.convert_sync_bn(self.model, self.device)
        self.model = self.model.to(self.device)
        if t.channels_last:  # NHWC weights: the convolutions then produce (and backpropagate) NHWC tensors
            self.model = self.model.to(memory_format=torch.channels_last)
        self.strategy = build_strategy(t)
        if self.world > 1 and not self.strategy.supports_ddp:
            raise SOSDError(f"train.strategy={t.strategy} computes task gradients itself and does not support "
                            f"multi-process (DDP) training; run it in one process (world size {self.world})")
        # mixed precision: autocast on the forward; fp16 also scales the loss (GradScaler)
        self.amp = t.amp
        self.scaler = distributed.make_scaler(self.device, self.amp, self.strategy)
        # DDP: one DistributedDataParallel wrapper per set of trainable parameters (EM: one per phase)
        # (strategies that average their own per-task gradients, the jd gradient methods, run the bare model:
        # torch.autograd.grad bypasses DDP's reducer; rank 0's weights are broadcast once instead)
        ddp = self.world > 1 and not self.strategy.reduces_gradients
        self.replicas = distributed.Replicas(self.model, self.device) if ddp else None
        if self.world > 1 and not ddp:
            distributed.broadcast_parameters(self.model)
        params = list(self.model.parameters()) + self.strategy.extra_parameters()
        self.optimizer = make_optimizer(params, t)
        # the module the steps call: the model itself, or its torch.compile'd wrapper (train.compile), which
        # shares the model's parameters and buffers (checkpoints, evaluation and EM's freezing use the model)
        self.net = self.model
        if t.compile:
            if self.world > 1:
                raise SOSDError("train.compile is single-process only; set train.compile=false under torchrun")
            self.net = torch.compile(self.model)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(cfg, s))
        self.state = RunState()
        self.writer = None

    # ------------------------------------------------------------------------------------ checkpoints
    def train_state(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "strategy": {f"p{i}": p.detach().clone() for i, p in enumerate(self.strategy.extra_parameters())},
            "strategy_state": self.strategy.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            **({"scaler": self.scaler.state_dict()} if self.scaler else {}),
        }

    def save(self, name: str, metrics: dict | None = None) -> Path:
        s = self.state
        if not distributed.is_main():  # DDP: rank 0 writes (all ranks hold the same weights), the others wait
            distributed.barrier()
            return self.run_dir / "checkpoints" / name
        meta = {"step": s.step, "epoch": s.step // self.steps_per_epoch,
                "em_phase": getattr(self.strategy, "phase", None), "best": s.best, "skipped": s.skipped,
                "history": s.history, "val_curve": s.val_curve, "metrics": metrics or {}}
        path = ckpt.save_checkpoint(self.run_dir / "checkpoints", name, self.model, self.cfg,
                                    self.train_state(), meta, dataset_meta(self.train_set))
        if name != "best":
            ckpt.point_latest(self.run_dir / "checkpoints", name)
            ckpt.prune(self.run_dir / "checkpoints", keep=2)
        distributed.barrier()
        return path

    def resume(self, path) -> None:
        sd, saved_cfg, _ = ckpt.read_weights(path)
        ckpt.check_compatible(self.model, sd, str(path), saved_cfg=saved_cfg)
        self.model.load_state_dict(sd, strict=True)
        state, meta = ckpt.read_train_state(path)
        self.optimizer.load_state_dict(state["optimizer"])
        for g in self.optimizer.param_groups:  # the configured implementation, whatever the checkpoint's was
            g.update(fused=self.optimizer.defaults.get("fused"), foreach=self.optimizer.defaults.get("foreach"))
        self.scheduler.load_state_dict(state["scheduler"])
        for p, v in zip(self.strategy.extra_parameters(), state["strategy"].values()):
            with torch.no_grad():
                p.copy_(v)
        self.strategy.load_state_dict(state.get("strategy_state", {}))
        if self.scaler and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.state = RunState(step=meta["step"], best=meta.get("best"), skipped=meta.get("skipped", 0),
                              history=meta.get("history", []), val_curve=meta.get("val_curve", []))

    # ------------------------------------------------------------------------------------------- steps
    def _loader(self, epoch: int, start: int):
        from torch.utils.data import DataLoader

        t = self.cfg.train
        if hasattr(self.train_set.transform, "set_epoch"):
            self.train_set.transform.set_epoch(epoch)  # before the workers copy the dataset
        # DDP: the global permutation is the same on every rank; each rank takes its share of every batch
        micro = [b for batch in epoch_batches(len(self.train_set), t.batch_size, t.seed, epoch)
                 for b in distributed.shard_batch(batch, t.accum_steps)]
        workers = self.cfg.data.num_workers
        # workers prefetch the next batches while the model trains; pinned memory speeds host-to-GPU copies
        return DataLoader(self.train_set, batch_sampler=micro[start * t.accum_steps:], num_workers=workers,
                          pin_memory=self.device.type == "cuda", **({"prefetch_factor": 4} if workers else {}))

    def _log(self, parts: dict, n_samples: int, dt: float):
        s = self.state
        lr = self.optimizer.param_groups[0]["lr"]
        row = {"step": s.step, "lr": lr, **{k: float(v) for k, v in parts.items()}}
        s.history.append(row)
        if self.writer:
            for k, v in parts.items():
                self.writer.add_scalar(f"loss/{k}", float(v), s.step)
            self.writer.add_scalar("lr", lr, s.step)
            self.writer.add_scalar("throughput/samples_per_s", n_samples / max(dt, 1e-9), s.step)
            for k, v in self.strategy.log_scalars().items():
                self.writer.add_scalar(k, v, s.step)

    def validate(self) -> dict:
        from sosd.eval.evaluate import evaluate_model

        release(self.model)
        distributed.broadcast_buffers(self.model)  # DDP: every rank evaluates rank 0's BatchNorm statistics
        # DDP: each rank evaluates its shard of the set; SceneMetrics.compute() sums across ranks
        metrics = evaluate_model(self.model, self.val_set, self.cfg.eval.depth_protocol,
                                 self.cfg.eval.batch_size, self.device, progress=False)
        if self.writer:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not k.startswith("n_"):
                    self.writer.add_scalar(f"val/{k}", v, self.state.step)
        return metrics

    def _maybe_best(self, metrics: dict):
        key = self.cfg.train.best_metric
        if not key:
            return
        if key not in metrics:
            raise SOSDError(f"train.best_metric '{key}' is not a metric of this run; choose one of "
                            f"{', '.join(k for k in metrics if not k.startswith('n_'))}")
        v = metrics[key]
        better = (self.state.best is None or (v > self.state.best if key in HIGHER_IS_BETTER
                                              else v < self.state.best))
        if better and math.isfinite(v):
            self.state.best = v
            self.save("best", metrics)

    def train_steps(self, until: int | None = None) -> str:
        """Train up to step ``until`` (default train.steps). Returns "done" or "interrupted"."""
        t, s = self.cfg.train, self.state
        until = t.steps if until is None else until
        self.model.train()
        bar = tqdm(total=until, initial=s.step, desc=f"train {t.strategy}",
                   disable=not self.progress or not distributed.is_main(), dynamic_ncols=True)
        with _Stop() as stop:
            while s.step < until:
                epoch, pos = divmod(s.step, self.steps_per_epoch)
                it = iter(self._loader(epoch, pos))
                for _ in range(pos, self.steps_per_epoch):
                    if s.step >= until:
                        break
                    t0 = time.perf_counter()
                    logged = (s.step + 1) % t.log_every == 0 or s.step + 1 == until
                    self.strategy.report_all = logged  # EM: the frozen side's loss only where it is logged
                    self.strategy.prepare(self.model, s.step, epoch)
                    # DDP: the wrapper that all-reduces exactly the parameters prepare() left trainable
                    net = self.replicas.get(s.step) if self.replicas is not None else self.net
                    self.optimizer.zero_grad(set_to_none=True)  # None grads: Adam skips frozen params
                    parts, ids = {}, []
                    for j in range(t.accum_steps):
                        batch = {k: v.to(self.device) for k, v in next(it).items()}
                        ids += batch["index"].tolist()
                        # DDP: all-reduce on the last micro-batch only (no_sync() before)
                        with distributed.no_sync(net, j == t.accum_steps - 1):
                            with distributed.autocast(self.device, self.amp):  # train.amp (none: no-op)
                                out = self.strategy.losses(net, batch)
                            # mean over micro-batches: the same gradient as one batch of batch_size
                            self.strategy.backward(
                                {**out, "loss": self.scaler.scale(out["loss"])} if self.scaler else out,
                                1.0 / t.accum_steps)
                        for k, v in out.items():
                            parts[k] = parts.get(k, 0.0) + float(v.detach()) / t.accum_steps
                    self.strategy.finish(self.model)  # jd gradient methods: all-reduce, then aggregate
                    distributed.average_grads(self.strategy.extra_parameters())  # DDP: not in the DDP module
                    # DDP: losses averaged over ranks, a stop request of any rank, same step/phase everywhere
                    parts, stopping = distributed.sync_step(parts, stop.signal is not None, s.step,
                                                            self.replicas.index if self.replicas is not None else 0)
                    if not all(math.isfinite(v) for v in parts.values()):
                        bad = ", ".join(f"{k}={v}" for k, v in parts.items())
                        if t.nonfinite == "stop":
                            raise NonFiniteLoss(
                                f"non-finite loss at step {s.step} ({bad}) on samples {ids}; the last good "
                                f"checkpoint is kept in {self.run_dir / 'checkpoints'}. Lower train.lr, set "
                                "train.grad_clip, or train.nonfinite=skip to skip such batches")
                        s.skipped += 1
                        self.optimizer.zero_grad(set_to_none=True)
                    else:
                        if self.scaler:
                            self.scaler.unscale_(self.optimizer)  # clip (and check) the true gradient
                        if t.grad_clip > 0:
                            torch.nn.utils.clip_grad_norm_(
                                [p for g in self.optimizer.param_groups for p in g["params"]], t.grad_clip)
                        if self.scaler:  # skips the step if the fp16 gradient overflowed, adapts the scale
                            self.scaler.step(self.optimizer)
                            self.scaler.update()
                        else:
                            self.optimizer.step()
                        self.strategy.after_step(self.model, s.step)
                    self.scheduler.step()
                    s.step += 1
                    dt = time.perf_counter() - t0
                    if logged:
                        self._log(parts, t.batch_size, dt)
                    bar.update(1)
                    bar.set_postfix(loss=f"{parts['loss']:.3f}",
                                    **({"phase": self.strategy.phase} if hasattr(self.strategy, "phase") else {}),
                                    **{"img/s": f"{t.batch_size / dt:.1f}"})
                    if t.val_every and s.step % t.val_every == 0 and s.step < until:
                        metrics = self.validate()
                        s.val_curve.append(curve_point(s.step, metrics))
                        self._maybe_best(metrics)
                        self.model.train()
                    # the final step's checkpoint is written once, by fit(), with the final metrics
                    if t.ckpt_every and s.step % t.ckpt_every == 0 and s.step < t.steps:
                        self.save(f"step_{s.step:07d}")
                    if stopping or (self.world == 1 and stop.signal is not None):  # DDP: all ranks agree
                        self.save(f"step_{s.step:07d}")
                        bar.close()
                        return "interrupted"
        bar.close()
        return "done"


def curve_point(step: int, metrics: dict) -> dict:
    """One point of the validation learning curve: the step and every numeric metric (no pixel counts)."""
    return {"step": step, **{k: float(v) for k, v in metrics.items()
                             if isinstance(v, (int, float)) and not k.startswith("n_")}}


def dataset_meta(ds) -> dict:
    """What inference needs to know about the training data, stored in the weights file's metadata."""
    return {"class_names": json.dumps(list(getattr(ds, "class_names", []))),
            "target_kind": ds.target_kind}


def set_aside_path(run_dir: Path) -> Path:
    """Where ``--overwrite`` keeps the previous run until the new one has started."""
    return run_dir.with_name(f".{run_dir.name}.replaced")


def prepare_run_dir(cfg: Config, resume: bool, overwrite: bool, create: bool = True) -> Path:
    """The run folder; ``create=False`` (DDP: ranks other than 0) only checks, so every rank raises alike.

    ``overwrite``: the previous run is not deleted here but moved to :func:`set_aside_path`; ``_fit``
    deletes it once the new run has started (config, data and model accepted) and moves it back if the
    start fails, so a typo with ``--overwrite`` never loses a finished run."""
    run_dir = Path(cfg.train.out_dir) / cfg.train.name
    if run_dir.exists() and not resume:
        ckpts = run_dir / "checkpoints"  # a run killed before its first checkpoint holds none: start over
        has_ckpt = ckpts.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in ckpts.iterdir())
        if has_ckpt and not overwrite:
            raise SOSDError(f"run folder {run_dir} already holds checkpoints: pass --resume {run_dir} to "
                            "continue it, --overwrite to start over, or choose another train.name")
        if overwrite and create:
            aside = set_aside_path(run_dir)
            if aside.exists():  # left by a start that was killed outright: the newer copy is run_dir
                shutil.rmtree(aside)
            try:
                run_dir.rename(aside)
            except OSError as e:
                raise SOSDError(f"cannot replace run folder {run_dir}: {e.strerror or e}") from None
    if create:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = run_dir / ".write_test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            _restore_set_aside(run_dir)
            raise SOSDError(f"cannot write the run folder {run_dir} (train.out_dir={cfg.train.out_dir}): "
                            f"{e.strerror or e}; choose a writable train.out_dir") from None
    return run_dir


def _restore_set_aside(run_dir: Path) -> None:
    """Put the run that ``--overwrite`` set aside back (the new one failed to start)."""
    aside = set_aside_path(run_dir)
    if aside.exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        aside.rename(run_dir)


def fit(cfg: Config, resume: str | None = None, overwrite: bool = False, progress: bool = True) -> dict:
    """Train per ``cfg``, evaluate on the validation set, write the run folder. Returns the summary.
    Under torchrun every rank calls this; rank 0 writes the run folder (see sosd.train.distributed)."""
    owned = distributed.init_from_env(cfg.train.device)  # DDP: a no-op without torchrun
    try:
        return _fit(cfg, resume, overwrite, progress)
    finally:
        if owned:
            distributed.cleanup()


def _fit(cfg: Config, resume: str | None, overwrite: bool, progress: bool) -> dict:
    from torch.utils.tensorboard import SummaryWriter

    main = distributed.is_main()
    run_dir = prepare_run_dir(cfg, resume is not None, overwrite, create=main)
    distributed.barrier()  # DDP: the run folder exists before anyone uses it
    try:
        trainer = Trainer(cfg, run_dir, progress)
        if resume:
            trainer.resume(resume)  # any world size: the optimiser state is the full model's, the step global
    except BaseException:
        if main:  # --overwrite: the new run did not start; the previous one comes back untouched
            _restore_set_aside(run_dir)
        raise
    if main and set_aside_path(run_dir).exists():  # the new run has started: now the old one goes
        shutil.rmtree(set_aside_path(run_dir))
    if main:  # only once the data and the checkpoint were accepted: a refused resume keeps the run's config
        dump_config(cfg, run_dir / "config.yaml")
    trainer.writer = SummaryWriter(str(run_dir / "tensorboard")) if main else None  # DDP: rank 0 logs
    t0 = time.perf_counter()
    try:
        status = trainer.train_steps()
    finally:
        if trainer.writer:
            trainer.writer.flush()
    if status == "interrupted":
        if trainer.writer:
            trainer.writer.close()
        raise KeyboardInterrupt(f"stopped at step {trainer.state.step}; checkpoint saved. Continue with: "
                                f"sosd train --resume {run_dir}")
    train_s = time.perf_counter() - t0
    metrics = trainer.validate()  # DDP: every rank (sharded; the metrics are reduced across ranks)
    if cfg.train.val_every:  # the learning curve ends at the final step
        trainer.state.val_curve.append(curve_point(trainer.state.step, metrics))
    trainer.save(f"step_{trainer.state.step:07d}", metrics)
    trainer._maybe_best(metrics)
    if not main:  # DDP: predictions.png, metrics.json and the table come from rank 0
        distributed.barrier()
        return {"run": str(run_dir), "steps": trainer.state.step, "train_seconds": train_s, "metrics": metrics}
    summary = finish_run(trainer, metrics, train_s)
    trainer.writer.close()
    distributed.barrier()
    return summary


def finish_run(trainer: Trainer, metrics: dict, train_s: float) -> dict:
    """metrics.json, predictions.png (also into TensorBoard), and the summary table on the terminal."""
    import numpy as np
    from PIL import Image

    from sosd.eval.evaluate import predictions_picture
    from sosd.eval.metrics import format_table

    run_dir, cfg, s = trainer.run_dir, trainer.cfg, trainer.state
    pic = run_dir / "predictions.png"
    predictions_picture(trainer.model, trainer.val_set, pic, cfg.eval.num_pictures, trainer.device)
    trainer.writer.add_image("val/predictions", np.asarray(Image.open(pic).convert("RGB")), s.step,
                             dataformats="HWC")
    first = s.history[0] if s.history else {}
    summary = {"run": str(run_dir), "variant": cfg.model.variant, "strategy": cfg.train.strategy,
               "steps": s.step, "train_seconds": train_s, "skipped_batches": s.skipped,
               "first_logged_loss": first, "last_logged_loss": s.history[-1] if s.history else {},
               "metrics": metrics, "loss_curve": s.history, "val_curve": s.val_curve}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    layout = "cityscapes" if trainer.val_set.target_kind == "disparity" else "nyu"
    print(f"\n{cfg.model.variant} ({cfg.train.strategy}), {s.step} steps in {train_s:.0f} s, evaluated on "
          f"{metrics.get('n_images')} held-out images ({cfg.data.dataset}):")
    print(format_table(metrics, layout, method=cfg.train.name))
    if first:
        last = s.history[-1]
        print(f"loss {first['loss']:.3f} (step {first['step']}) -> {last['loss']:.3f} (step {last['step']})")
    print(f"wrote {run_dir}/: checkpoints/, tensorboard/, metrics.json, predictions.png, config.yaml")
    return summary
