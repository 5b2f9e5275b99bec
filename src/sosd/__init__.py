"""sosd: SOSD-Net, joint semantic segmentation and depth estimation from one RGB image (He et al.).

    import sosd
    model = sosd.load("runs/esosd_indoor_small")      # a run folder, checkpoint folder or weights file
    out = model.predict("photo.jpg")                   # or a PIL image / (H, W, 3) uint8 array
    out.depth, out.labels                              # (H, W) metres (or px disparity), (H, W) class ids
"""
from sosd.version import __version__  # noqa: F401  (sosd.__version__)


def load(checkpoint, device: str = "cpu", native_size: bool = False):
    """A predictor for the checkpoint; see :func:`sosd.inference.load`."""
    from sosd.inference import load as _load

    return _load(checkpoint, device, native_size)


def save_pretrained(model, folder, config=None, metrics=None, class_names=None, target_kind=None):
    """Write a Hub-style folder (config.json, model.safetensors, model card); see :mod:`sosd.hub`."""
    from sosd.hub import save_pretrained as _save

    return _save(model, folder, config, metrics, class_names, target_kind)


def from_pretrained(folder_or_hub_id, device: str = "cpu"):
    """A predictor from a save_pretrained folder, a run/checkpoint folder or a Hub id; see :mod:`sosd.hub`."""
    from sosd.hub import from_pretrained as _load

    return _load(folder_or_hub_id, device)


def build_model(cfg):
    """The SOSD-Net variant described by a :class:`sosd.config.ModelConfig`."""
    from sosd.models import build_model as _build

    return _build(cfg)
