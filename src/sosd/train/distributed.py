"""Multi-process / multi-node training on torch.distributed (``torchrun``): the plumbing the loop uses.

    torchrun --nproc_per_node 2 -m sosd train --config CFG            # one machine, 2 processes
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m sosd train --config CFG                                     # on every node

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK (and MASTER_ADDR/PORT); :func:`init_from_env` turns them into a
process group: gloo on CPU, nccl on CUDA with device ``cuda:LOCAL_RANK``. Without them (a plain
``sosd train``) nothing here does anything and the loop is the single-process loop, bit for bit.

Data. ``train.batch_size`` is the GLOBAL batch. Each epoch's permutation is ``epoch_batches(...)`` seeded
by (seed, epoch), identical on every rank (the DistributedSampler idea); rank r takes the r-th contiguous
1/world of every global batch and splits it into ``accum_steps`` micro-batches (:func:`shard_batch`).
Contiguous rather than strided (r::world): the micro-batches of all ranks together are then exactly the
micro-batches one process uses with ``accum_steps = world * accum_steps``, so N processes x accum a and
1 process x accum N*a are the same optimisation (same BatchNorm batches, same per-micro-batch pixel
means), to float rounding. batch_size must divide by world_size * accum_steps.

EM under DDP (the design). DDP registers, at construction, only the parameters that require grad, and
builds its all-reduce buckets and autograd hooks over them; toggling ``requires_grad`` afterwards is not
supported: a plain DDP fails at the next phase ("Expected to have finished reduction..."),
``static_graph=True`` fails ("graph has changed"), and ``find_unused_parameters=True`` works but
all-reduces the frozen side's buckets too (zeros) every step, and traverses the graph each step (measured
with a comm hook: 30 of 30 numbers per step on a toy trunk+2 heads vs 25 with the design below).
:class:`Replicas` instead keeps ONE DDP WRAPPER PER SET OF TRAINABLE PARAMETERS, built lazily the first
time the strategy's ``prepare()`` leaves that set trainable: for EM, a depth-phase wrapper (trunk + depth
side) and a semantic-phase wrapper (trunk + semantic side), both over the same module (shared weights).
In a phase, only that phase's wrapper runs forward, so only its reducer expects gradients; the other
wrapper's hooks (on the trunk) see ``expect_autograd_hooks_ = False`` and return at once. The frozen side
therefore gets no gradient (``requires_grad=False``) and no all-reduce traffic (checked in
tests/train/test_distributed.py with :class:`TrafficLog`). Gradients still flow *through* the frozen side
into the trunk, as in one process. For the joint strategy there is a single wrapper. Cost: one set of
bucket buffers per wrapper (~ one extra copy of the trunk's gradients) and one state broadcast when a
wrapper is built.

All ranks must be in the same phase at the same step: the phase is a pure function of the global step
(and epoch), which every rank advances identically; :meth:`Replicas.get` checks it when a wrapper is
built and :func:`sync_step` every step (a mismatch raises instead of deadlocking or mixing buckets).

BatchNorm. Without ``train.sync_bn`` every rank normalises with its own micro-batch's statistics (as
gradient accumulation does); DDP broadcasts rank 0's running statistics before each forward, and
:func:`broadcast_buffers` does so before validation, so every rank evaluates what rank 0 saves.
``train.sync_bn`` converts BatchNorm to ``torch.nn.SyncBatchNorm`` (statistics over the global
micro-batch); torch implements it for CUDA only.

Gradient methods (the jd strategy's aggregators: pcgrad, cagrad, aligned_mtl, UPGrad, Nash-MTL...) need
the per-task gradients of theta^com, which DDP's reducer (one summed gradient) cannot give: they declare
``reduces_gradients``, the loop runs them on the bare model (no DDP wrapper; rank 0's weights broadcast
once by :func:`broadcast_parameters`, its BatchNorm buffers before every step as DDP does), and the
strategy's ``finish()`` all-reduces the per-task gradients (T x |theta^com|) with the other parameters'
gradients in one flat tensor, then applies the same aggregation on every rank: 1 process and N
processes train alike (tests/train/test_distributed.py). GradNorm and MGDA-UB (``torch.autograd.grad``
without that reduction) and DWA (per-process loss windows) declare ``supports_ddp = False`` and the
loop refuses them with world > 1.
Strategy parameters (``extra_parameters()``, e.g. uncertainty weights) are not in the DDP module: their
gradients are averaged by :func:`average_grads`. A strategy's own state (``after_step``) sees its rank's
losses only.
"""
from __future__ import annotations

import contextlib
import os
import zlib

import torch
import torch.distributed as dist

from sosd.errors import SOSDError


class DistributedError(SOSDError):
    pass


# --------------------------------------------------------------------------------------------- process group

def is_distributed() -> bool:
    """True in a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0)) if is_distributed() else 0


def is_main() -> bool:
    """Rank 0 (or a single process): the one that logs and writes files."""
    return rank() == 0


def _comm_device() -> torch.device:
    """Where small tensors for collectives live: nccl needs CUDA tensors, gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).
    Returns True if this call created it (the caller then calls :func:`cleanup`); False if there is
    nothing to do (no torchrun, WORLD_SIZE = 1, or already initialised)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise DistributedError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DistributedError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: launch with torchrun "
                               "(torchrun --nproc_per_node N -m sosd train ...)")
    if torch.device(device).type == "cuda":
        if not torch.cuda.is_available():
            raise DistributedError(f"train.device={device} but CUDA is not available")
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return True


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(device: str) -> torch.device:
    """``train.device`` for this process: with world > 1, "cuda"/"cuda:N" means cuda:LOCAL_RANK."""
    d = torch.device(device)
    if d.type == "cuda" and is_distributed():
        return torch.device("cuda", local_rank())
    return d


# ------------------------------------------------------------------------------------------------------ data

def check_batch(batch_size: int, accum_steps: int, world: int) -> None:
    if batch_size % (world * accum_steps):
        raise DistributedError(
            f"train.batch_size ({batch_size}) is the global batch: it must be a multiple of world_size x "
            f"accum_steps = {world} x {accum_steps} = {world * accum_steps}, so that every process gets "
            f"{accum_steps} equal micro-batches")


def shard_batch(batch: list[int], accum_steps: int, rank_: int | None = None,
                world: int | None = None) -> list[list[int]]:
    """This rank's ``accum_steps`` micro-batches of one global batch: the rank's contiguous 1/world of it,
    cut in order (world 1: the loop's usual micro-batches)."""
    r, w = (rank() if rank_ is None else rank_), (world_size() if world is None else world)
    check_batch(len(batch), accum_steps, w)
    n = len(batch) // w
    mine = batch[r * n:(r + 1) * n]
    m = n // accum_steps
    return [mine[i:i + m] for i in range(0, n, m)]


def shard_indices(n: int, rank_: int | None = None, world: int | None = None) -> range:
    """Indices of a length-n evaluation set for this rank (strided; shards may differ in size by one)."""
    r, w = (rank() if rank_ is None else rank_), (world_size() if world is None else world)
    return range(r, n, w)


# ------------------------------------------------------------------------------------------------- per step

def sync_step(parts: dict, stop: bool, step: int, key: int) -> tuple[dict, bool]:
    """One small all-reduce per step: the loss parts averaged over ranks (what is logged and checked for
    non-finite values, so every rank takes the same skip/stop decision), the stop request of any rank
    (a signal reaching one rank stops all at the same step), and a check that every rank is at the same
    step with the same trainable set (EM phase). Single process: returned as given."""
    if not is_distributed():
        return parts, stop
    keys = list(parts)
    w = world_size()
    v = torch.tensor([float(parts[k]) for k in keys] + [float(stop), step, step * step, key, key * key],
                     dtype=torch.float64, device=_comm_device())
    dist.all_reduce(v)
    v = v.cpu()
    n = len(keys)
    for i, what in ((n + 1, "step"), (n + 3, "trainable-parameter set (EM phase)")):
        if v[i] * v[i] != w * v[i + 1]:  # sum^2 == w * sum of squares iff all ranks agree
            raise DistributedError(f"ranks disagree on the {what} at step {step}: the phase must be a pure "
                                   "function of the step")
    return {k: float(v[i]) / w for i, k in enumerate(keys)}, bool(v[n] > 0)


def average_grads(params) -> None:
    """Average the gradients of parameters DDP does not manage (a strategy's extra parameters).
    Whether a gradient is None depends on the graph, not the data, so it is the same on every rank."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    i = 0
    for g in grads:
        g.copy_(flat[i:i + g.numel()].view_as(g))
        i += g.numel()


def broadcast_parameters(module: torch.nn.Module, src: int = 0) -> None:
    """Rank ``src``'s parameters on every rank (what DDP does when it wraps a model)."""
    if not is_distributed():
        return
    for p in module.parameters():
        dist.broadcast(p.data, src)


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Rank ``src``'s buffers (BatchNorm running statistics) on every rank."""
    if not is_distributed():
        return
    for b in module.buffers():
        dist.broadcast(b.data, src)


# ---------------------------------------------------------------------------------------------------- model

def convert_sync_bn(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """BatchNorm -> SyncBatchNorm (statistics over all ranks' micro-batches). Only with world > 1 (alone it
    is plain BatchNorm anyway); torch's SyncBatchNorm runs on CUDA only."""
    if not is_distributed():
        return model
    if device.type != "cuda":
        raise DistributedError("train.sync_bn needs CUDA devices: torch's SyncBatchNorm has no CPU "
                               "implementation. Leave train.sync_bn off on CPU (each process then "
                               "normalises with its own micro-batch's statistics)")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


class _DDP(torch.nn.parallel.DistributedDataParallel):
    """DDP that also *reads* attributes of the wrapped model (``cfg``, ``has_depth``...), so a strategy's
    ``losses(model, batch)`` works the same on the wrapper. Writes still go to the wrapper: strategies
    that set model attributes do it in ``prepare()``, which receives the bare model."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get("_modules") or {}
            if "module" not in modules or name.startswith("__"):
                raise
            return getattr(modules["module"], name)


class TrafficLog:
    """A DDP communication hook that records every all-reduced bucket (which parameters, how many numbers
    and bytes) and then all-reduces it as DDP's default does. For tests and diagnosis."""

    def __init__(self, model: torch.nn.Module):
        self.names = {id(p): n for n, p in model.named_parameters()}
        self.records: list[dict] = []

    def hook(self, tag):
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        def h(state, bucket):
            buf = bucket.buffer()
            self.records.append({"wrapper": tag, "numel": buf.numel(), "bytes": buf.numel() * buf.element_size(),
                                 "params": [self.names.get(id(p), "?") for p in bucket.parameters()]})
            return allreduce_hook(state, bucket)
        return h


class Replicas:
    """One DDP wrapper per set of trainable parameters of ``model`` (see the module docstring).

    ``get(step)`` after the strategy's ``prepare()``: the wrapper that all-reduces exactly the parameters
    that now require grad, built on first use (a collective: every rank builds it at the same step).
    ``index``: which wrapper ``get`` returned last (0, 1, ...). Set ``traffic = TrafficLog(model)`` before
    training to record the all-reduce traffic."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.model, self.device = model, device
        self._wrappers: dict[tuple, _DDP] = {}
        self.index = 0
        self.traffic: TrafficLog | None = None

    def get(self, step: int) -> _DDP:
        key = tuple(i for i, p in enumerate(self.model.parameters()) if p.requires_grad)
        if key not in self._wrappers:
            # every rank must build this wrapper now, over the same parameters
            mine = torch.tensor([step, zlib.crc32(repr(key).encode())], dtype=torch.int64, device=_comm_device())
            every = [torch.zeros_like(mine) for _ in range(world_size())]
            dist.all_gather(every, mine)
            if any(not torch.equal(e, mine) for e in every):
                raise DistributedError(f"ranks disagree on the trainable parameters at step {step} "
                                       f"(step, set hash per rank: {[e.tolist() for e in every]})")
            cuda = self.device.type == "cuda"
            ddp = _DDP(self.model, device_ids=[self.device.index] if cuda else None,
                       output_device=self.device.index if cuda else None)
            if self.traffic is not None:
                ddp.register_comm_hook(None, self.traffic.hook(len(self._wrappers)))
            self._wrappers[key] = ddp
        self.index = list(self._wrappers).index(key)
        return self._wrappers[key]

    @property
    def wrappers(self) -> list:
        """The DDP wrappers built so far, in order of first use."""
        return list(self._wrappers.values())


def no_sync(net, sync: bool):
    """DDP's ``no_sync()`` (accumulate locally) unless ``sync`` (the last micro-batch of a step)."""
    if sync or not isinstance(net, torch.nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return net.no_sync()


# ----------------------------------------------------------------------------------------------------- AMP

AMP_MODES = ("none", "bf16", "fp16")


def autocast(device: torch.device, amp: str):
    """The forward's autocast context for ``train.amp``: none | bf16 | fp16."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def make_scaler(device: torch.device, amp: str, strategy):
    """GradScaler for fp16 (bf16 has fp32's exponent range: no scaling); None otherwise."""
    from sosd.train.strategies.base import Strategy

    if amp not in AMP_MODES:
        raise DistributedError(f"train.amp = {amp!r} is not one of {', '.join(AMP_MODES)}")
    if amp != "fp16":
        return None
    if type(strategy).backward is not Strategy.backward:
        raise DistributedError(f"train.amp=fp16 scales the loss before backward, but train.strategy="
                               f"{strategy.name} does its own backward; use train.amp=bf16 or none")
    if device.type == "cpu" and not hasattr(torch.amp, "GradScaler"):
        raise DistributedError("train.amp=fp16 on CPU needs torch >= 2.3 (CPU GradScaler); use train.amp=bf16")
    return torch.amp.GradScaler(device.type)
