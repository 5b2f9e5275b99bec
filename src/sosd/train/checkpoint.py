"""Checkpoints: everything needed to resume exactly, written atomically, read without unpickling.

A checkpoint is a folder:
- ``model.safetensors``: the weights (and BatchNorm statistics); its metadata holds the resolved config
  and the format version, so the weights file alone rebuilds the model (``sosd.load``);
- ``train_state.pt``: optimiser, scheduler, strategy and RNG states (tensors and plain containers only,
  read back with ``torch.load(weights_only=True)``);
- ``meta.json``: step, epoch, EM phase, metrics, format version.

Writing goes to ``<name>.tmp-<pid>/`` first and is renamed into place, so a crash never leaves a half
written checkpoint under a real name; ``latest`` (a one-line file, replaced atomically) names the newest.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from sosd.config import Config, config_from_dict, to_dict
from sosd.errors import SOSDError

FORMAT_VERSION = 1
MODEL_FILE, STATE_FILE, META_FILE, LATEST = "model.safetensors", "train_state.pt", "meta.json", "latest"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def save_weights(model: torch.nn.Module, cfg: Config, path: Path, extra_meta: dict | None = None) -> None:
    from safetensors.torch import save_file

    meta = {"format_version": str(FORMAT_VERSION), "sosd_config": json.dumps(to_dict(cfg))}
    meta.update({k: str(v) for k, v in (extra_meta or {}).items()})
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata=meta)


def save_checkpoint(ckpt_dir: Path, name: str, model, cfg: Config, train_state: dict, meta: dict,
                    weights_meta: dict | None = None) -> Path:
    """Write ``ckpt_dir/name/`` atomically and point ``ckpt_dir/latest`` at it. Returns its path."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / name
    tmp = ckpt_dir / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_weights(model, cfg, tmp / MODEL_FILE, {"step": meta.get("step", 0), **(weights_meta or {})})
        torch.save(train_state, tmp / STATE_FILE)
        (tmp / META_FILE).write_text(json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=1))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if final.exists():  # replacing (e.g. "best"): move the old one aside first, then swap
            old = ckpt_dir / f".{name}.old-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        _fsync_dir(ckpt_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def point_latest(ckpt_dir: Path, name: str) -> None:
    tmp = Path(ckpt_dir) / f".{LATEST}.tmp-{os.getpid()}"
    tmp.write_text(name + "\n")
    os.replace(tmp, Path(ckpt_dir) / LATEST)


def prune(ckpt_dir: Path, keep: int, prefix: str = "step_") -> None:
    """Delete all but the ``keep`` newest ``step_*`` checkpoints (never ``best`` or the latest)."""
    steps = sorted(p for p in Path(ckpt_dir).glob(prefix + "*") if p.is_dir() and ".tmp" not in p.name)
    for p in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)


def resolve(path: str | Path) -> Path:
    """A checkpoint folder from: a checkpoint folder, a run folder (its latest), or a checkpoints/ folder."""
    p = Path(path)
    if not p.exists():
        raise SOSDError(f"checkpoint {p} does not exist")
    if p.is_file():
        return p
    if (p / MODEL_FILE).is_file():
        return p
    for d in (p, p / "checkpoints"):
        if (d / LATEST).is_file():
            name = (d / LATEST).read_text().strip()
            if (d / name / MODEL_FILE).is_file():
                return d / name
    raise SOSDError(f"{p} is not a checkpoint: expected {MODEL_FILE} in it, or a run folder with "
                    f"checkpoints/{LATEST}")


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], Config, dict]:
    """(state dict, config, metadata) from a checkpoint folder or a ``model.safetensors`` file."""
    from safetensors import safe_open

    p = resolve(path)
    f = p if p.is_file() else p / MODEL_FILE
    try:
        with safe_open(str(f), framework="pt") as fh:
            meta = fh.metadata() or {}
            sd = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as e:  # noqa: BLE001 - any reader failure becomes one clear message
        raise SOSDError(f"cannot read checkpoint weights {f}: {e}") from None
    if "sosd_config" not in meta:
        raise SOSDError(f"{f} has no sosd config in its metadata: not a sosd checkpoint "
                        "(for timm ImageNet weights use model.pretrained=...)")
    version = int(meta.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise SOSDError(f"{f} was written by a newer sosd (format {version} > {FORMAT_VERSION}); upgrade sosd")
    cfg = config_from_dict(json.loads(meta["sosd_config"]))
    return sd, cfg, meta


def load_model(path: str | Path, map_location: str = "cpu", with_meta: bool = False):
    """Rebuild the model saved at ``path`` (checkpoint folder, run folder or weights file), eval mode.
    Returns (model, config), plus the weights metadata (class names, target kind) if ``with_meta``."""
    from sosd.models import SOSDNet

    sd, cfg, meta = read_weights(path)
    cfg.model.pretrained = ""  # the weights below replace any ImageNet init
    model = SOSDNet(cfg.model)
    check_compatible(model, sd, str(path))
    model.load_state_dict(sd, strict=True)
    model = model.to(map_location).eval()
    return (model, cfg, meta) if with_meta else (model, cfg)


def check_compatible(model, sd: dict, source: str) -> None:
    """A clear error when a state dict belongs to another variant / class count / backbone."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise SOSDError(
            f"checkpoint {source} does not fit the model (variant {model.cfg.variant}, "
            f"{model.cfg.num_classes} classes, backbone {model.cfg.backbone}): {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(shapes)} mis-shaped tensors, e.g. "
            f"{(missing + unexpected + shapes)[:3]}")


def read_train_state(path: str | Path) -> tuple[dict, dict]:
    """(train_state, meta) of a checkpoint folder, for ``--resume``."""
    p = resolve(path)
    if p.is_file():
        raise SOSDError(f"{p} is a weights file; --resume needs a checkpoint folder with {STATE_FILE}")
    try:
        state = torch.load(p / STATE_FILE, map_location="cpu", weights_only=True)
        meta = json.loads((p / META_FILE).read_text())
    except FileNotFoundError as e:
        raise SOSDError(f"checkpoint {p} is incomplete: {e.filename} is missing") from None
    except Exception as e:  # noqa: BLE001
        raise SOSDError(f"cannot read the training state of checkpoint {p}: {e}") from None
    return state, meta
