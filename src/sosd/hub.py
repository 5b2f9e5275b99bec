"""Hugging Face Hub style folders: ``save_pretrained(model, folder, cfg)`` and ``from_pretrained(folder)``.

A pretrained folder (what one uploads as a Hub model repository) holds:

- ``config.json``: the full sosd :class:`~sosd.config.Config`, the class names, the target kind (``depth``
  in metres or ``disparity`` in px) and the format version;
- ``model.safetensors``: the weights; its metadata also carries the config, so ``sosd.load`` reads the
  folder (or the file alone) as well;
- ``README.md``: a model card (YAML front matter with ``library_name: sosd``, tags and datasets; the
  variant, the training settings, the metrics, the classes and how to load it).

``from_pretrained`` takes such a folder, any checkpoint or run folder ``sosd.load`` takes, or a Hub id
(``org/name``, optionally ``hf-hub:org/name`` or ``org/name@revision``), downloaded with
``huggingface_hub.snapshot_download`` (``pip install sosd[hub]``; needs network access, or the files in
the local Hugging Face cache).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from sosd.config import Config, config_from_dict, to_dict
from sosd.errors import SOSDError

CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "README.md"
HUB_FORMAT_VERSION = 1
HUB_FILES = [CONFIG_FILE, WEIGHTS_FILE, CARD_FILE]

VARIANT_TITLES = {
    "sosd": "SOSD-Net: semantic-to-depth and depth-to-semantic units, §3.2.3-3.2.4",
    "mtl": "MTL baseline: shared trunk, two plain task heads",
    "depth_only": "depth-only baseline",
    "semantic_only": "semantic-only baseline",
}
_DATASET_IDS = {"nyuv2": "nyu_depth_v2", "nyuv2_mtan": "nyu_depth_v2", "nyud_mt": "nyu_depth_v2",
                "cityscapes": "cityscapes"}
_LOWER_IS_BETTER = {"rel", "abs_rel", "sq_rel", "rms", "rmse", "log10", "log_rms", "silog", "mae"}


# ------------------------------------------------------------------------------------------------ save

def _default_target_kind(cfg: Config) -> str:
    d = cfg.data
    street = (d.dataset == "synthetic" and d.preset == "street") or d.dataset == "cityscapes"
    return "disparity" if street else "depth"


def _default_class_names(cfg: Config) -> list[str]:
    if cfg.data.dataset == "synthetic":
        from sosd.data.synthetic import preset_spec

        names = preset_spec(cfg.data.preset).class_names
        if len(names) == cfg.model.num_classes:
            return names
    return [f"class {i}" for i in range(cfg.model.num_classes)]


def _variant_name(cfg: Config) -> str:
    if cfg.model.variant == "sosd" and cfg.train.strategy == "em":
        return "ESOSD-Net: SOSD-Net trained with EM, Algorithm 1"
    return VARIANT_TITLES.get(cfg.model.variant, cfg.model.variant)


def _fmt(v) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return f"{v:.4g}"


def model_card(cfg: Config, class_names: list[str], target_kind: str, metrics: dict | None = None,
               repo_name: str | None = None) -> str:
    """The README.md of a pretrained folder (Markdown with YAML front matter)."""
    import yaml

    from sosd.version import __version__

    m, d, t = cfg.model, cfg.data, cfg.train
    name = repo_name or t.name
    dataset_id = _DATASET_IDS.get(d.dataset, f"sosd-synthetic-{d.preset}" if d.dataset == "synthetic"
                                  else d.dataset)
    tags = ["sosd", "sosd-net", "pytorch", "safetensors", "multi-task-learning",
            "depth-estimation" if target_kind == "depth" else "disparity-estimation",
            "semantic-segmentation", f"variant-{m.variant}"]
    front = {"library_name": "sosd", "license": "apache-2.0", "pipeline_tag": "depth-estimation",
             "tags": tags, "datasets": [dataset_id]}
    unit = "m" if target_kind == "depth" else "px"
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# {name}", "",
             f"**Variant:** `{m.variant}` ({_variant_name(cfg)}), trained with the `{t.strategy}` strategy.",
             "",
             f"Predicts, from one RGB image, a **{target_kind}** map ({unit}) and a **semantic segmentation** "
             f"into {m.num_classes} classes. The model runs at its training resolution "
             f"({d.height}x{d.width}, H x W) "
             "and its outputs are resized back to the input's size.", "",
             "## Model", "",
             "| setting | value |", "|---|---|",
             f"| variant | `{m.variant}` |",
             f"| backbone | `{m.backbone}` (aligned Xception), output stride {m.output_stride} |",
             f"| ASPP / decoder / refined channels | {m.aspp_channels} / {m.decoder_channels} / "
             f"{m.refined_channels} |",
             f"| classes | {m.num_classes} |",
             f"| target | {target_kind} ({unit}) |",
             f"| focal-length aware | {'yes (pass intrinsics to predict)' if m.focal_aware else 'no'} |",
             f"| backbone initialisation | {m.pretrained or 'random'} |", "",
             "## Training", "",
             "| setting | value |", "|---|---|",
             f"| dataset | `{d.dataset}`{f' (preset `{d.preset}`)' if d.dataset == 'synthetic' else ''} |",
             f"| resolution (H x W) | {d.height}x{d.width} |",
             f"| strategy | `{t.strategy}` |",
             f"| steps x batch size | {t.steps} x {t.batch_size} |",
             f"| optimiser | Adam, lr {t.lr:g}, {t.schedule} schedule, weight decay {t.weight_decay:g} |",
             f"| augmentation | {'yes' if d.augment else 'no'} |",
             f"| seed | {t.seed} |", ""]
    if d.dataset == "synthetic":
        lines += [f"Training images: {d.train_size} procedural `{d.preset}` scenes (`sosd scenes`), "
                  "not real photographs: expect it to work on such scenes, not on camera pictures.", ""]
    shown = {k: v for k, v in (metrics or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("n_")}
    if shown:
        n = (metrics or {}).get("n_images")
        lines += ["## Metrics", "", f"On the held-out `{d.val_split}` split"
                  + (f" ({n} images)" if n else "") + f", `{cfg.eval.depth_protocol}` depth protocol.", "",
                  "| metric | value |", "|---|---|"]
        for k, v in shown.items():
            arrow = " (lower is better)" if k in _LOWER_IS_BETTER else ""
            lines.append(f"| {k}{arrow} | {_fmt(v)} |")
        lines.append("")
    lines += ["## Classes", "", ", ".join(f"{i}: {c}" for i, c in enumerate(class_names)), "",
              "## How to load", "",
              "```bash", "pip install 'sosd[hub]'", "```", "",
              "```python", "from sosd.hub import from_pretrained", "",
              f"model = from_pretrained(\"{repo_name or 'path/to/this/folder'}\")"
              "  # a local folder or a Hub id",
              "out = model.predict(\"photo.jpg\")     # a path, PIL image or (H, W, 3) uint8 array",
              f"out.depth    # (H, W) float32, {target_kind} in {unit}",
              "out.labels   # (H, W) class ids; out.class_names names them", "```", "",
              "or try it in the browser: `sosd demo --checkpoint <this folder>`. "
              "`sosd.load(<this folder>)` works as well (the weights file carries the config).", "",
              "## Reference", "",
              "L. He, J. Lu, G. Wang, S. Song, J. Zhou: *SOSD-Net: Joint Semantic Object Segmentation and "
              "Depth Estimation from Monocular Images*, Neurocomputing, 2021. Implementation: sosd "
              f"{__version__}.", ""]
    return "\n".join(lines)


def save_pretrained(model_or_predictor, folder: str | Path, config: Config | None = None,
                    metrics: dict | None = None, class_names: list[str] | None = None,
                    target_kind: str | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``README.md`` into ``folder`` (created).

    ``model_or_predictor``: a :class:`sosd.models.SOSDNet` or a :class:`sosd.inference.Predictor` (whose
    config, class names and target kind are the defaults). ``config``: the :class:`Config` the model was
    built and trained with. ``metrics``: shown in the model card (e.g. ``metrics.json``'s ``metrics``).
    Class names default to the synthetic preset's (else ``class i``), the target kind to ``disparity`` for
    street/Cityscapes data and ``depth`` otherwise. Returns the folder."""
    from sosd.inference import Predictor
    from sosd.checkpoint import save_weights

    if isinstance(model_or_predictor, Predictor):
        model = model_or_predictor.model
        config = config or model_or_predictor.cfg
        class_names = class_names or model_or_predictor.class_names
        target_kind = target_kind or model_or_predictor.target_kind
    else:
        model = model_or_predictor
    if not isinstance(model, torch.nn.Module):
        raise SOSDError("save_pretrained needs a model or a Predictor, got "
                        f"{type(model_or_predictor).__name__}")
    if config is None:
        raise SOSDError("save_pretrained needs the model's Config (config=...)")
    own_cfg = getattr(model, "cfg", None)
    if own_cfg is not None and to_dict(own_cfg) != to_dict(config.model):
        diff = [k for k, v in to_dict(config.model).items() if to_dict(own_cfg).get(k) != v]
        if any(k != "pretrained" for k in diff):
            raise SOSDError(f"config.model does not describe this model (differs in {diff})")
    class_names = list(class_names or _default_class_names(config))
    if len(class_names) != config.model.num_classes:
        raise SOSDError(f"{len(class_names)} class names for a model with {config.model.num_classes} classes")
    target_kind = target_kind or _default_target_kind(config)
    if target_kind not in ("depth", "disparity"):
        raise SOSDError(f"target_kind must be depth or disparity, got {target_kind!r}")

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    from sosd.version import __version__

    doc = {"library_name": "sosd", "sosd_version": __version__, "format_version": HUB_FORMAT_VERSION,
           "config": to_dict(config), "class_names": class_names, "target_kind": target_kind}
    if metrics:
        doc["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    tmp = folder / f".{WEIGHTS_FILE}.tmp"
    save_weights(model, config, tmp, {"class_names": json.dumps(class_names), "target_kind": target_kind})
    tmp.replace(folder / WEIGHTS_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(doc, indent=1) + "\n")
    (folder / CARD_FILE).write_text(model_card(config, class_names, target_kind, metrics,
                                               repo_name=folder.resolve().name))
    return folder


# ------------------------------------------------------------------------------------------------ load

def _parse_hub_id(source: str) -> tuple[str, str | None] | None:
    """(repo_id, revision) if ``source`` looks like ``org/name[@rev]`` (``hf-hub:`` prefix allowed)."""
    s = source.removeprefix("hf-hub:").strip()
    repo, _, rev = s.partition("@")
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts) or any(c in repo for c in " \\:") or repo.startswith("."):
        return None
    return repo, (rev or None)


def download(source: str) -> Path:
    """The local snapshot folder of Hub repo ``source`` (``org/name[@revision]``); SOSDError if it cannot
    be had (not installed, offline, no such repository)."""
    parsed = _parse_hub_id(source)
    if parsed is None:
        raise SOSDError(f"'{source}' is neither an existing local folder nor a Hugging Face Hub id like "
                        "org/name")
    repo, rev = parsed
    try:
        import huggingface_hub
    except ImportError:
        raise SOSDError(f"'{source}' is not a local folder; to download it from the Hugging Face Hub install "
                        "huggingface_hub (pip install 'sosd[hub]')") from None
    try:
        path = huggingface_hub.snapshot_download(repo_id=repo, revision=rev, allow_patterns=HUB_FILES)
    except Exception as e:  # noqa: BLE001 - offline, 404, auth, ... all become one clear message
        raise SOSDError(
            f"'{source}' is not a local folder, and downloading it from the Hugging Face Hub failed "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Offline? Copy the folder "
            "(config.json, model.safetensors) here and pass its path; check the repository id.") from None
    return Path(path)


def _load_folder(folder: Path, device: str):
    from safetensors.torch import load_file

    from sosd.inference import Predictor
    from sosd.models import SOSDNet
    from sosd.checkpoint import check_compatible

    try:
        doc = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as e:
        raise SOSDError(f"cannot read {folder / CONFIG_FILE}: {e}") from None
    if not isinstance(doc, dict) or "config" not in doc:
        raise SOSDError(f"{folder / CONFIG_FILE} is not a sosd config (no 'config' entry); was the folder "
                        "written by sosd.hub.save_pretrained?")
    version = int(doc.get("format_version", 0))
    if version > HUB_FORMAT_VERSION:
        raise SOSDError(f"{folder} was written by a newer sosd (format {version} > {HUB_FORMAT_VERSION}); "
                        "upgrade sosd")
    cfg = config_from_dict(doc["config"])
    cfg.model.pretrained = ""  # the weights below replace any ImageNet init
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise SOSDError(f"{folder} has {CONFIG_FILE} but no {WEIGHTS_FILE}")
    try:
        sd = load_file(str(weights))
    except Exception as e:  # noqa: BLE001
        raise SOSDError(f"cannot read {weights}: {e}") from None
    model = SOSDNet(cfg.model)
    check_compatible(model, sd, str(weights))
    model.load_state_dict(sd, strict=True)
    meta = {"class_names": json.dumps(doc.get("class_names") or []),
            "target_kind": doc.get("target_kind") or _default_target_kind(cfg)}
    return Predictor(model, cfg, meta, device)


def from_pretrained(folder_or_hub_id: str | Path, device: str = "cpu"):
    """A :class:`sosd.inference.Predictor` from a folder written by :func:`save_pretrained`, any checkpoint
    or run folder / weights file ``sosd.load`` reads, or a Hugging Face Hub id (downloaded)."""
    p = Path(folder_or_hub_id).expanduser()
    if not p.exists():
        p = download(str(folder_or_hub_id))
    if p.is_dir() and (p / CONFIG_FILE).is_file():
        return _load_folder(p, device)
    from sosd.inference import load

    return load(p, device)
