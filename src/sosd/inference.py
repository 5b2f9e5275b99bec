"""Inference on images: ``sosd.load(checkpoint).predict(image)`` -> numpy depth and labels.

The network reads depth partly from how large an object appears in the image (eq. 3: d ~ sqrt(dXdY /
dudv)), so images are resized to the resolution the model was trained at (from its config) before the
forward pass, and the outputs are resized back to the input's size: depth bilinearly, disparity
bilinearly *and* multiplied by the width ratio (a disparity is a distance in pixels), labels from
bilinearly upsampled logits. ``native_size=True`` skips the resize (for inputs already at the training
scale and field of view).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sosd.errors import SOSDError
from sosd.models.sosd_net import MIN_INPUT_SIZE, InputSizeError


class ImageTooSmallError(InputSizeError, SOSDError):
    """An image below the network's minimum side (MIN_INPUT_SIZE) at the size the model would run it.
    Both a SOSDError (the CLI prints the message) and the model's InputSizeError."""


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file; a clear error naming the file otherwise."""
    from PIL import Image

    p = Path(path)
    if not p.is_file():
        raise SOSDError(f"image {p} does not exist" + (" (it is a folder)" if p.is_dir() else ""))
    try:
        with Image.open(p) as im:
            a = np.array(im.convert("RGB"))  # a writable copy: torch.from_numpy needs one
            mode = im.mode
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, struct.error, ...
        what = "the file is empty" if p.stat().st_size == 0 else "the file is cut short, corrupt, or not an image"
        raise SOSDError(f"cannot read image {p}: {e} ({what})") from None
    if a.ndim != 3 or min(a.shape[:2]) < 1:
        raise SOSDError(f"cannot read image {p}: it holds no pixels (shape {a.shape})")
    from sosd.data.folder import png_bit_depth

    if mode in ("RGB", "RGBA") and png_bit_depth(p) == 16:  # Pillow keeps the high byte of each channel
        import warnings

        warnings.warn(f"{p}: 16-bit colour PNG reduced to 8 bits per channel (value / 256; its brightest "
                      f"channel value is now {int(a.max())} of 255). If its values use only the low bits "
                      f"(e.g. 12-bit data), rescale it to 8-bit yourself first", stacklevel=2)
    return a


def _as_array(image) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return read_image(image)
    if hasattr(image, "convert"):  # PIL image
        return np.array(image.convert("RGB"))
    a = np.asarray(image)
    # the same images a file may hold: grey (H, W) or (H, W, 1) -> RGB; RGBA (H, W, 4) -> RGB (alpha
    # dropped, as PIL's convert("RGB") does for files)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise SOSDError(f"expected an image of shape (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey, "
                        f"got {a.shape}")
    if min(a.shape[:2]) < 1:
        raise SOSDError(f"the image of shape {a.shape} holds no pixels")
    if a.dtype.kind not in "biuf":
        raise SOSDError(f"expected an RGB image of numbers (uint8, or float in [0, 1]), got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise SOSDError(f"the image array holds {int(a.size - np.isfinite(a).sum())} NaN/inf values")
    if a.dtype != np.uint8:
        if a.dtype.kind == "f" and a.max() <= 1.0:
            a = (a * 255).round()
        elif a.dtype == np.uint16:  # 16-bit: scale 0..65535 to 0..255, not clip (which saturates)
            a = (a.astype(np.float64) / 257.0).round()
        a = np.clip(a, 0, 255).astype(np.uint8)
    return a


@dataclass
class Prediction:
    depth: np.ndarray | None    # (H, W) float32: metres, or px of disparity (see target_kind)
    labels: np.ndarray | None   # (H, W) int64 class ids
    target_kind: str
    class_names: list[str]

    def as_dict(self) -> dict:
        return {"depth": self.depth, "labels": self.labels, "target_kind": self.target_kind,
                "class_names": self.class_names}


class Predictor:
    """A loaded model plus the knowledge needed to run it on arbitrary images.

    Args:
        model: a :class:`sosd.models.SOSDNet`.
        cfg: its :class:`sosd.config.Config` (training resolution, focal reference).
        meta: weights metadata (``class_names``, ``target_kind``).
        device: torch device.
        native_size: run at the input's size instead of the training resolution.
    """

    def __init__(self, model, cfg, meta: dict | None = None, device="cpu", native_size: bool = False):
        import json

        meta = meta or {}
        self.model = model.to(device).eval()
        self.cfg, self.device, self.native_size = cfg, torch.device(device), native_size
        self.class_names = json.loads(meta.get("class_names", "[]")) or \
            [f"class {i}" for i in range(cfg.model.num_classes)]
        self.target_kind = meta.get("target_kind", "disparity" if cfg.data.preset == "street" else "depth")
        self.size = (cfg.data.height, cfg.data.width)

    @torch.no_grad()
    def predict_batch(self, images, intrinsics=None, names=None) -> list[Prediction]:
        """Predict for a list of images of any sizes (batched per size). ``intrinsics``: optional list of
        (fx, fy, cx, cy) of each original image, used by focal-aware models (scaled with the resize).
        ``names``: optional names of the images for error messages (file paths are named by default).
        An image smaller than the network accepts (MIN_INPUT_SIZE px a side at the size it would run:
        its own with ``native_size``) raises :class:`ImageTooSmallError` before any forward pass."""
        images = list(images)
        arrays = [_as_array(im) for im in images]
        if names is None:
            names = [str(im) if isinstance(im, (str, Path)) else None for im in images]
        out: list[Prediction | None] = [None] * len(arrays)
        groups: dict[tuple, list[int]] = {}
        for i, a in enumerate(arrays):  # one forward pass per group of same-size images
            groups.setdefault(a.shape[:2], []).append(i)
        for i, a in enumerate(arrays):
            self._check_size(a.shape[:2], names[i] if i < len(names) else None, i, len(arrays))
        for idx in groups.values():
            intr = None if intrinsics is None else [intrinsics[i] for i in idx]
            for i, p in zip(idx, self._batch(np.stack([arrays[i] for i in idx]), intr)):
                out[i] = p
        return out

    def predict(self, image, intrinsics=None) -> Prediction:
        """Depth and labels for one image (path, PIL image or (H, W, 3) array)."""
        return self.predict_batch([image], None if intrinsics is None else [intrinsics])[0]

    def _check_size(self, hw, name, i: int, n: int) -> None:
        run_hw = tuple(hw) if self.native_size else tuple(self.size)
        if min(run_hw) >= MIN_INPUT_SIZE:
            return
        what = f"image {name}" if name else ("the image" if n == 1 else f"image #{i} of {n}")
        if self.native_size:
            raise ImageTooSmallError(
                f"{what} is {hw[0]}x{hw[1]} px, too small for the network at its own size (native size): each "
                f"side must be at least {MIN_INPUT_SIZE} px. Resize or pad it, or let the model resize it to its "
                f"training size {self.size[0]}x{self.size[1]} (no --native-size / native_size=False)")
        raise ImageTooSmallError(
            f"the model's training size {self.size[0]}x{self.size[1]} is too small for the network (each side "
            f"at least {MIN_INPUT_SIZE} px), so {what} cannot be predicted; use native_size=True with a larger "
            f"image")

    def _batch(self, a: np.ndarray, intr) -> list[Prediction]:
        """a: (B, H, W, 3) uint8 of one size; intr: None or B rows of (fx, fy, cx, cy)."""
        h, w = a.shape[1:3]
        x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().div(255).to(self.device)
        run_h, run_w = (h, w) if self.native_size else self.size
        if (run_h, run_w) != (h, w):
            x = F.interpolate(x, size=(run_h, run_w), mode="bilinear", align_corners=False, antialias=True)
        k = None
        if intr is not None or self.model.cfg.focal_aware:
            if intr is None:
                raise SOSDError("this model is focal-length aware: pass the camera intrinsics (fx, fy, cx, cy)")
            sx, sy = run_w / w, run_h / h
            k = torch.tensor([[r[0] * sx, r[1] * sy, r[2] * sx, r[3] * sy] for r in intr], device=self.device)
        out = self.model(x, k)
        depth = labels = None
        if "depth" in out:
            d = out["depth"]
            if (run_h, run_w) != (h, w):
                d = F.interpolate(d, size=(h, w), mode="bilinear", align_corners=False)
                if self.target_kind == "disparity":
                    d = d * (w / run_w)  # disparity is a length in pixels: it scales with the width
            depth = d[:, 0].float().cpu().numpy()
        if "semantic" in out:
            s = out["semantic"]
            if (run_h, run_w) != (h, w):
                s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
            labels = s.argmax(1).cpu().numpy()
        return [Prediction(None if depth is None else depth[i], None if labels is None else labels[i],
                           self.target_kind, self.class_names) for i in range(a.shape[0])]


def load(checkpoint: str | Path, device: str = "cpu", native_size: bool = False) -> Predictor:
    """A :class:`Predictor` from a run folder, checkpoint folder or ``model.safetensors`` file."""
    from sosd.checkpoint import load_model

    model, cfg, meta = load_model(checkpoint, device, with_meta=True)
    return Predictor(model, cfg, meta, device, native_size)
