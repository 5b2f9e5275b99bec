"""Loading timm's ImageNet weights for the aligned Xception-65 backbone (§4.1: "initialized using the
corresponding pre-trained model (Xception) on the ILSVRC dataset").

The source is a local file (``.safetensors``, or a PyTorch ``.pth``/``.bin`` read with
``weights_only=True``) or a Hugging Face Hub id such as ``timm/xception65.ra3_in1k`` (needs network access
and the ``huggingface_hub`` package). The classifier ``head.fc`` is dropped unless the backbone has one;
everything else loads with ``strict=True``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from sosd.errors import SOSDError

HUB_FILENAME = "model.safetensors"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors or PyTorch weights file, never unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise SOSDError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any reader failure becomes one clear message
        raise SOSDError(f"cannot read weights file {path}: {e}") from None
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise SOSDError(f"weights file {path} holds {type(sd).__name__}, not a state dict")
    return sd


def resolve_source(source: str) -> Path:
    """A local path as is; a hub id (``org/name``, optionally ``hf-hub:`` prefixed) downloaded."""
    p = Path(source).expanduser()
    if p.exists():
        return p
    repo = source.removeprefix("hf-hub:")
    if repo.count("/") != 1:
        raise SOSDError(f"pretrained weights '{source}' is neither an existing file nor a hub id like "
                        "timm/xception65.ra3_in1k")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise SOSDError(f"'{source}' looks like a hub id, but huggingface_hub is not installed; "
                        "pip install huggingface_hub, or download the safetensors file and pass its path") from None
    try:
        return Path(hf_hub_download(repo, HUB_FILENAME))
    except Exception as e:  # noqa: BLE001
        raise SOSDError(f"cannot download {HUB_FILENAME} of '{repo}' from the Hugging Face Hub ({type(e).__name__}:"
                        f" {e}). Offline? Download it elsewhere and pass the local file path instead.") from None


def load_timm_xception(backbone: torch.nn.Module, source: str) -> None:
    """Load timm xception65 weights into ``backbone`` (a :class:`XceptionAligned`) with strict=True."""
    path = resolve_source(source)
    sd = read_state_dict(path)
    if getattr(backbone, "head", None) is None:
        sd = {k: v for k, v in sd.items() if not k.startswith("head.")}
    own = backbone.state_dict()
    bad = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
           for k, v in sd.items() if k in own and own[k].shape != v.shape]
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    if bad or missing or unexpected:
        raise SOSDError(
            f"{path} does not match the {type(backbone).__name__} backbone (is it timm's xception65, and is "
            f"model.backbone=xception65?): {len(missing)} missing keys {missing[:3]}, {len(unexpected)} "
            f"unexpected keys {unexpected[:3]}, {len(bad)} shape mismatches {bad[:3]}")
    backbone.load_state_dict(sd, strict=True)
