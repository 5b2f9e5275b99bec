"""Checkpoints: everything needed to resume exactly, written atomically, read without unpickling.

A checkpoint is a folder:
- ``model.safetensors``: the weights (and BatchNorm statistics); its metadata holds the resolved config
  and the format version, so the weights file alone rebuilds the model (``sosd.load``);
- ``train_state.pt``: optimiser, scheduler, strategy and RNG states (tensors and plain containers only,
  read back with ``torch.load(weights_only=True)``);
- ``meta.json``: step, epoch, EM phase, metrics, format version.

Writing goes to ``<name>.tmp-<pid>/`` first and is renamed into place, so a crash never leaves a half
written checkpoint under a real name; ``latest`` (a one-line file, replaced atomically) names the newest.
Leftovers of a killed writer (``.<name>.tmp-<pid>``, ``.latest.tmp-<pid>``, ``.<name>.old-<pid>`` of a
process that no longer runs) are removed by the next save; a failed write (e.g. a full disk) removes its
temporary folder and leaves the previous checkpoints and ``latest`` untouched.

Training writes checkpoints; evaluation, prediction, export, the Hub folders and the demo read them. So this
module sits below all of them and imports none of them (only the config and, to rebuild a model,
``sosd.models``); ``tests/test_import_layers.py`` keeps it that way.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import re
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


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old|del)-(?P<pid>\d+)$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    return True


def clean_leftovers(ckpt_dir: Path) -> list[Path]:
    """Remove what a killed writer left in ``ckpt_dir``: ``.<name>.tmp-<pid>`` (being written) and
    ``.<name>.del-<pid>`` (being deleted) folders and files of processes that no longer run. A
    ``.<name>.old-<pid>`` (a checkpoint moved aside while being replaced) is put back as ``<name>`` if the
    replacement never arrived, else removed. Returns the paths removed."""
    removed = []
    d = Path(ckpt_dir)
    if not d.is_dir():
        return removed
    for p in sorted(d.iterdir()):
        m = _LEFTOVER.match(p.name)
        if not m or _pid_alive(int(m["pid"])):
            continue
        if m["kind"] == "old" and not (d / m["name"]).exists() and (p / MODEL_FILE).is_file():
            p.rename(d / m["name"])  # the replace was interrupted between its two renames
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _disk_full(e: BaseException, folder: Path) -> bool:
    """Whether a write error means a full disk. Writers report it differently: OSError ENOSPC (plain
    files), safetensors' SafetensorError "No space left on device (os error 28)", and torch.save a bare
    RuntimeError "[enforce fail at inline_container.cc] . unexpected pos ..." - so also ask the disk."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e)
    if "No space left on device" in text or "os error 28" in text or "Disk quota exceeded" in text:
        return True
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def _write_error(e: BaseException, what: Path, ckpt_dir: Path) -> SOSDError | None:
    """A clear SOSDError for an error while writing a checkpoint (a full disk, a read-only folder, ...);
    None for an error that is no I/O problem (a bug: re-raised as it is)."""
    text = str(e)
    io_like = isinstance(e, OSError) or type(e).__name__ == "SafetensorError" or (
        isinstance(e, RuntimeError) and ("inline_container" in text or "write" in text.lower()))
    if not io_like:
        return None
    kept = f"the previous checkpoints in {ckpt_dir} and its '{LATEST}' pointer are untouched"
    if _disk_full(e, ckpt_dir):
        return SOSDError(f"the disk is full: no space left while writing checkpoint {what} ({type(e).__name__}: "
                         f"{e}); {kept}. Free some space, then resume with --resume")
    if isinstance(e, OSError):
        return SOSDError(f"cannot write checkpoint {what}: {e.strerror or e}"
                         f"{' (' + str(e.filename) + ')' if getattr(e, 'filename', None) else ''}; {kept}")
    return SOSDError(f"cannot write checkpoint {what} ({type(e).__name__}: {e}); {kept}")


def save_checkpoint(ckpt_dir: Path, name: str, model, cfg: Config, train_state: dict, meta: dict,
                    weights_meta: dict | None = None) -> Path:
    """Write ``ckpt_dir/name/`` atomically and point ``ckpt_dir/latest`` at it. Returns its path.
    An OSError while writing (a full disk, ...) becomes a SOSDError naming the folder; the temporary
    folder is removed and the previous checkpoints stay as they were."""
    ckpt_dir = Path(ckpt_dir)
    final = ckpt_dir / name
    tmp = ckpt_dir / f".{name}.tmp-{os.getpid()}"
    old = ckpt_dir / f".{name}.old-{os.getpid()}"
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        clean_leftovers(ckpt_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise (_write_error(e, final, ckpt_dir) or e) from None
    try:
        save_weights(model, cfg, tmp / MODEL_FILE, {"step": meta.get("step", 0), **(weights_meta or {})})
        torch.save(train_state, tmp / STATE_FILE)
        (tmp / META_FILE).write_text(json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=1))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if final.exists():  # replacing (e.g. "best"): move the old one aside first, then swap
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        _fsync_dir(ckpt_dir)
    except Exception as e:
        err = _write_error(e, final, ckpt_dir)  # before removing tmp: it may be what filled the disk
        _undo(tmp, old, final)
        if err is None:
            raise
        raise err from None
    except BaseException:
        _undo(tmp, old, final)
        raise
    return final


def _undo(tmp: Path, old: Path, final: Path) -> None:
    """After a failed save: remove the temporary folder; put a checkpoint moved aside back in place."""
    shutil.rmtree(tmp, ignore_errors=True)
    if old.exists() and not final.exists():
        old.rename(final)


def point_latest(ckpt_dir: Path, name: str) -> None:
    """Make ``ckpt_dir/latest`` name ``name``, atomically (a crash leaves the old or the new pointer)."""
    tmp = Path(ckpt_dir) / f".{LATEST}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, Path(ckpt_dir) / LATEST)
    except OSError as e:
        err = _write_error(e, Path(ckpt_dir) / LATEST, Path(ckpt_dir))
        tmp.unlink(missing_ok=True)
        raise (err or e) from None


def prune(ckpt_dir: Path, keep: int, prefix: str = "step_") -> None:
    """Delete all but the ``keep`` newest ``step_*`` checkpoints (never ``best`` or the latest). Each is
    first renamed to ``.<name>.del-<pid>`` (atomic), so a crash while deleting never leaves a half-deleted
    folder under a checkpoint's name."""
    steps = sorted(p for p in Path(ckpt_dir).glob(prefix + "*") if p.is_dir() and ".tmp" not in p.name)
    for p in steps[:-keep] if keep > 0 else []:
        trash = p.with_name(f".{p.name}.del-{os.getpid()}")
        try:
            p.rename(trash)
        except OSError:
            continue
        shutil.rmtree(trash, ignore_errors=True)


def resolve(path: str | Path) -> Path:
    """A checkpoint folder from: a checkpoint folder, a run folder (its latest), or a checkpoints/ folder."""
    p = Path(path)
    if not p.exists():
        raise SOSDError(f"checkpoint {p} does not exist")
    if p.is_file():
        return p
    if (p / MODEL_FILE).is_file():
        _check_loose_weights(p)
        return p
    for d in (p, p / "checkpoints"):
        if (d / LATEST).is_file():
            try:
                name = (d / LATEST).read_text().strip()
            except (OSError, UnicodeDecodeError) as e:
                raise SOSDError(f"cannot read the checkpoint pointer {d / LATEST}: {e}") from None
            if name and "/" not in name and (d / name / MODEL_FILE).is_file():
                return d / name
            raise SOSDError(f"{d / LATEST} names checkpoint '{name}', but {d / name} holds no {MODEL_FILE}; "
                            f"pass one of the checkpoint folders in {d} instead")
    if (p / "metrics.json").is_file() and not (p / "checkpoints").is_dir():
        # a finished run whose weights were not kept, e.g. the claims study's runs in git (scores only)
        raise SOSDError(f"run folder {p} finished (it has metrics.json) but holds no checkpoint: its weights were "
                        f"not kept. Training is bit-reproducible on one machine: `sosd train --config "
                        f"{p / 'config.yaml'} --overwrite` trains them again")
    if (p / "checkpoints").is_dir() or (p / "config.yaml").is_file():
        raise SOSDError(f"run folder {p} has no finished checkpoint yet (the run stopped before its first "
                        f"checkpoint was written; half-written .tmp folders are never used): start it again "
                        f"with `sosd train --config {p / 'config.yaml'} --overwrite`")
    raise SOSDError(f"{p} is not a checkpoint: expected {MODEL_FILE} in it, or a run folder with "
                    f"checkpoints/{LATEST}")


def _check_loose_weights(folder: Path) -> None:
    """A run folder (config.yaml, checkpoints/) holding a ``model.safetensors`` of its own: it was put there
    by hand, and ``folder`` would resolve to it rather than to the run's checkpoints. Refuse it when its model
    is not the run's (the config in its metadata vs ``config.yaml``)."""
    run_cfg = folder / "config.yaml"
    if not run_cfg.is_file() or not (folder / "checkpoints").is_dir():
        return  # a checkpoint folder or a save_pretrained folder: the weights file is its own
    import yaml
    from safetensors import safe_open

    try:
        with safe_open(str(folder / MODEL_FILE), framework="pt") as fh:
            saved = json.loads((fh.metadata() or {})["sosd_config"])["model"]
        run = (yaml.safe_load(run_cfg.read_text()) or {}).get("model", {})
    except Exception:  # noqa: BLE001 - unreadable: read_weights reports it with its own message
        return
    keys = ("variant", "backbone", "num_classes", "output_stride", "aspp_channels", "decoder_channels",
            "refined_channels", "focal_aware")
    diff = [f"model.{k}: {saved.get(k)!r} in {MODEL_FILE}, {run.get(k)!r} in config.yaml" for k in keys
            if k in run and saved.get(k) != run.get(k)]
    if diff:
        raise SOSDError(f"run folder {folder} holds a {MODEL_FILE} of another model than the run's "
                        f"({'; '.join(diff)}): it was not written by this run. Pass the file itself "
                        f"({folder / MODEL_FILE}) to use it, or move it out to use the run's checkpoints "
                        f"({folder / 'checkpoints'})")


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
    try:
        version = int(meta.get("format_version", 0))
    except ValueError:
        raise SOSDError(f"{f}: malformed format_version {meta.get('format_version')!r} in its metadata") from None
    if version > FORMAT_VERSION:
        raise SOSDError(f"{f} was written by a newer sosd (format {version} > {FORMAT_VERSION}); upgrade sosd")
    try:
        d = json.loads(meta["sosd_config"])
        if not isinstance(d, dict):
            raise ValueError(f"a JSON {type(d).__name__}, not an object")
        cfg = config_from_dict(d)
    except Exception as e:  # noqa: BLE001 - JSONDecodeError, ConfigError, ...
        raise SOSDError(f"{f}: the sosd config in its metadata is malformed ({type(e).__name__}: {e})") from None
    return sd, cfg, meta


def load_model(path: str | Path, map_location: str = "cpu", with_meta: bool = False):
    """Rebuild the model saved at ``path`` (checkpoint folder, run folder or weights file), eval mode.
    Returns (model, config), plus the weights metadata (class names, target kind) if ``with_meta``."""
    from sosd.models import SOSDNet

    sd, cfg, meta = read_weights(path)
    cfg.model.pretrained = ""  # the weights below replace any ImageNet init
    model = SOSDNet(cfg.model)
    check_compatible(model, sd, str(path), own_config=True)
    model.load_state_dict(sd, strict=True)
    model = model.to(map_location).eval()
    return (model, cfg, meta) if with_meta else (model, cfg)


def _describe_saved_model(source) -> str:
    """" (variant V, K classes, backbone B)" from the config in a checkpoint's metadata; "" if unknown."""
    from safetensors import safe_open

    try:
        p = resolve(source)
        with safe_open(str(p if p.is_file() else p / MODEL_FILE), framework="pt") as fh:
            m = json.loads((fh.metadata() or {})["sosd_config"])["model"]
        return f" (variant {m['variant']}, {m['num_classes']} classes, backbone {m['backbone']})"
    except Exception:  # noqa: BLE001 - best effort: only improves a message
        return ""


def check_compatible(model, sd: dict, source: str, own_config: bool = False, saved_cfg: Config | None = None) -> None:
    """A clear error when a state dict belongs to another variant / class count / backbone.
    ``own_config``: the model was built from the checkpoint's own config (a mismatch = an altered file).
    ``saved_cfg``: the checkpoint's config, to name the model settings that differ."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if (missing or unexpected or shapes) and own_config:
        raise SOSDError(
            f"checkpoint {source}: its weights do not fit the model its own config describes (variant "
            f"{model.cfg.variant}, {model.cfg.num_classes} classes, backbone {model.cfg.backbone}): "
            f"{len(missing)} missing, {len(unexpected)} unexpected, {len(shapes)} mis-shaped tensors, e.g. "
            f"{(missing + unexpected + shapes)[:3]}; the file was altered, or its weights and config come from "
            f"different checkpoints")
    if missing or unexpected or shapes:
        raise SOSDError(
            f"checkpoint {source}{_describe_saved_model(source)} does not fit the model (variant "
            f"{model.cfg.variant}, {model.cfg.num_classes} classes, backbone {model.cfg.backbone}): "
            f"{len(missing)} missing, {len(unexpected)} unexpected, {len(shapes)} mis-shaped tensors, e.g. "
            f"{(missing + unexpected + shapes)[:3]}. " + _model_advice(model.cfg, saved_cfg))


def _model_advice(cfg, saved_cfg) -> str:
    """What differs between the model asked for and the checkpoint's, stated as facts (the caller's flags
    are not known here, so no advice about flags that may never have been passed)."""
    if saved_cfg is None:
        return "Use the model settings it was trained with"
    import dataclasses

    a, b = dataclasses.asdict(cfg), dataclasses.asdict(saved_cfg.model)
    diff = [f"model.{k}={b[k]!r} (asked for {a[k]!r})" for k in a
            if k != "pretrained" and a[k] != b.get(k)]
    return ("It was trained with " + ", ".join(diff) + ": use those settings") if diff else \
        "Use the model settings it was trained with"


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
    except pickle.UnpicklingError as e:  # weights_only refused an object: nothing in the file was run
        m = (re.search(r"Unsupported global: (GLOBAL \S+)", str(e))
             or re.search(r"WeightsUnpickler error: ([^\n]+)", str(e)))
        what = m.group(1).rstrip(".") if m else str(e).strip().splitlines()[0]
        raise SOSDError(f"refusing to load {p / STATE_FILE}: it holds pickled Python objects ({what}), which "
                        f"a sosd checkpoint never does (tensors and plain containers only). It was not written "
                        f"by sosd or has been altered; nothing in it was run. Do not load it with "
                        f"weights_only=False unless you trust its source") from None
    except Exception as e:  # noqa: BLE001
        raise SOSDError(f"cannot read the training state of checkpoint {p}: {type(e).__name__}: {e}") from None
    need = ("optimizer", "scheduler", "strategy", "rng_torch")
    if not isinstance(state, dict) or any(k not in state for k in need):
        have = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise SOSDError(f"{p / STATE_FILE} is not a sosd training state: expected the keys {list(need)}, "
                        f"got {have}")
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
        raise SOSDError(f"{p / META_FILE} is malformed: expected a JSON object with an integer 'step'")
    return state, meta
