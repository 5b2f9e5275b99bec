"""Resizing and the paper's training augmentation (§4.1), on :class:`~sosd.data.sample.Sample` (numpy).

Resampling rules, shared by every loader (:func:`resize_sample`) and by :class:`PaperAugment`:

* image: bilinear (Pillow, per channel, uint8 in and out);
* labels, valid mask and target (depth or disparity): **nearest**, all three through the *same* source
  index map. Nearest never mixes values, so an invalid target (0) is never blended into a valid neighbour
  (a bilinear depth would invent ramps between the wall and a hole), and ``valid`` stays exactly the mask
  of the resampled target. Rows/columns are picked at pixel centres: output pixel ``i`` reads input pixel
  ``floor((i + 0.5) * n_in / n_out)``;
* intrinsics, with the pixel-centre convention (pixel ``i`` covers ``[i - 0.5, i + 0.5]``, the same
  convention that makes a horizontal flip map ``cx`` to ``W - 1 - cx``): ``fx' = fx * sx``,
  ``cx' = (cx + 0.5) * sx - 0.5`` (and likewise ``fy, cy`` with ``sy``), ``sx = W'/W``, ``sy = H'/H``;
* a **disparity** target is multiplied by ``sx`` (disparity is a horizontal distance in pixels of the
  image it belongs to: Cityscapes at 512 px wide has disparities ``/4`` of the 2048-px release);
  a **metric depth** target is left unchanged by :func:`resize_sample` (the scene did not move; the focal
  length in pixels changed, and the intrinsics say so).

Scale augmentation is different (:class:`PaperAugment`). Its camera model: **the same camera, the scene
s times closer**. An image scaled by ``s`` is what the *same* focal length sees when every point keeps its
lateral position (X, Y) and its depth becomes ``d / s``: eq. (1) gives ``u' = fx X / (d/s) + cx' =
s (u - cx) + cx'``, the image scaled by ``s`` about the principal point, and eq. (2)-(3) give
``Δu' = s Δu`` and ``d'² = fx fy ΔXΔY / (Δu'Δv') = (d/s)²`` for an object of the same physical size. So:

* metric depth is **divided by s**;
* disparity ``fx B / d`` is **multiplied by s** (same ``fx`` and baseline, depth ``/ s``);
* ``fx, fy`` are **unchanged**; only the principal point moves with the pixel grid,
  ``cx' = (cx + 0.5) s - 0.5`` (then the crop offset), which is what makes eq. (1) exact for every pixel.

This keeps eq. (2)-(3) consistent for the paper's unit (its BatchNorm absorbs one fixed focal length per
dataset, so a changed ``fx`` would contradict it) and for ``focal_aware`` (its ``sqrt(fx fy)`` matches the
depth it is trained on). The other consistent model (a zoom: ``fx, fy`` times ``s``, depth unchanged,
disparity times ``s``) would teach a fixed-focal model that the same depth looks ``s`` times larger.
Changing only the pixel grid (:func:`resize_sample`) is the zoom: there the scene did not move.
The image is then cropped (``s > 1``) or padded (``s < 1``: image 0, labels 255, valid False, target 0)
back to the input size so batches stack; the crop/pad offset moves ``cx, cy``.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from sosd.data.sample import IGNORE_INDEX, Sample


# ------------------------------------------------------------------------------------------- resampling

def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` output pixels (pixel-centre nearest neighbour)."""
    idx = np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64)
    return np.clip(idx, 0, n_in - 1)


def resize_nearest(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W[, C]) array of any dtype (values are copied, never mixed)."""
    if a.shape[:2] == (height, width):
        return a
    r = nearest_indices(a.shape[0], height)
    c = nearest_indices(a.shape[1], width)
    return a[r[:, None], c[None, :]]


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an (H, W, 3) uint8 RGB image with Pillow."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.BILINEAR))


def scale_intrinsics(k: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics of an image resized by (sx, sy) (pixel-centre convention, see the module docstring)."""
    fx, fy, cx, cy = (float(v) for v in k)
    return np.array([fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5], dtype=np.float32)


def resize_sample(sample: Sample, height: int | None, width: int | None) -> Sample:
    """``sample`` at (height, width): image bilinear; labels, valid and target nearest; intrinsics scaled;
    a disparity target (``target_kind == "disparity"``) multiplied by the width ratio. A metric depth is
    unchanged. ``height``/``width`` of ``None`` or 0 keep the stored size."""
    h0, w0 = sample.image.shape[:2]
    height, width = int(height or h0), int(width or w0)
    if (height, width) == (h0, w0):
        return sample
    sx, sy = width / w0, height / h0
    target = resize_nearest(sample.target, height, width).astype(np.float32)
    if sample.target_kind == "disparity":
        target = target * np.float32(sx)
    return sample.replace(
        image=resize_image(sample.image, height, width),
        target=target,
        valid=resize_nearest(sample.valid, height, width),
        labels=resize_nearest(sample.labels, height, width),
        intrinsics=scale_intrinsics(sample.intrinsics, sx, sy),
    )


# ------------------------------------------------------------------------------------------- geometry

def hflip_sample(sample: Sample) -> Sample:
    """Mirror left-right; the principal point moves to ``cx' = W - 1 - cx``."""
    w = sample.image.shape[1]
    k = np.array(sample.intrinsics, dtype=np.float32).copy()
    k[2] = (w - 1) - k[2]
    return sample.replace(
        image=np.ascontiguousarray(sample.image[:, ::-1]),
        target=np.ascontiguousarray(sample.target[:, ::-1]),
        valid=np.ascontiguousarray(sample.valid[:, ::-1]),
        labels=np.ascontiguousarray(sample.labels[:, ::-1]),
        intrinsics=k,
    )


def _place(a: np.ndarray, height: int, width: int, y0: int, x0: int, fill) -> np.ndarray:
    """Window of ``a`` at (y0, x0) of size (height, width); offsets may be negative (= padding with fill)."""
    out = np.full((height, width) + a.shape[2:], fill, dtype=a.dtype)
    sy0, sx0 = max(y0, 0), max(x0, 0)
    sy1, sx1 = min(y0 + height, a.shape[0]), min(x0 + width, a.shape[1])
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = a[sy0:sy1, sx0:sx1]
    return out


def crop_or_pad(sample: Sample, height: int, width: int, y0: int, x0: int) -> Sample:
    """The (height, width) window whose top-left corner is pixel (y0, x0) of ``sample`` (negative or
    overhanging offsets pad: image 0, target 0, valid False, labels 255); cx -= x0, cy -= y0."""
    k = np.array(sample.intrinsics, dtype=np.float32).copy()
    k[2] -= x0
    k[3] -= y0
    return sample.replace(
        image=_place(sample.image, height, width, y0, x0, 0),
        target=_place(sample.target, height, width, y0, x0, 0.0),
        valid=_place(sample.valid, height, width, y0, x0, False),
        labels=_place(sample.labels, height, width, y0, x0, IGNORE_INDEX),
        intrinsics=k,
    )


# ------------------------------------------------------------------------------------------- colour

def _gray(img: np.ndarray) -> np.ndarray:
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114


def color_jitter(image: np.ndarray, brightness: float, contrast: float, saturation: float,
                 hue: float) -> np.ndarray:
    """Brightness/contrast/saturation factors (1 = unchanged) and a hue shift in turns (0 = unchanged),
    applied in that order to a uint8 RGB image (torchvision's ColorJitter definitions)."""
    img = image.astype(np.float32)
    img = img * brightness
    img = np.clip(img, 0, 255)
    mean = _gray(img).mean()
    img = np.clip((img - mean) * contrast + mean, 0, 255)
    g = _gray(img)[..., None]
    img = np.clip((img - g) * saturation + g, 0, 255)
    out = np.round(img).astype(np.uint8)
    if hue:
        hsv = np.array(Image.fromarray(out).convert("HSV"))
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(round(hue * 256))) % 256).astype(np.uint8)
        out = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))
    return out


# ------------------------------------------------------------------------------------------- augment

class PaperAugment:
    """§4.1 augmentation: random scale from ``scales``, colour jitter, horizontal flip with ``flip_p``.

    Call as ``aug(sample, index) -> Sample``. Per sample, in this order:

    1. scale ``s`` drawn from ``scales``; image bilinear, labels/valid/target nearest to
       ``round(H*s) x round(W*s)``; the same camera sees the scene ``s`` times closer (module docstring):
       metric depth ``/= s``, disparity ``*= s`` (``s`` = the realised size ratio), ``fx, fy`` unchanged,
       ``cx, cy`` follow the pixel grid;
    2. with ``crop_to_input``: a random crop (``s > 1``) or pad (``s < 1``) back to H x W; cx, cy shift;
    3. with ``color``: brightness, contrast, saturation factors uniform in ``1 ± brightness`` etc., hue
       shift uniform in ``± hue`` turns (image only);
    4. horizontal flip with probability ``flip_p`` (``cx' = W - 1 - cx``).

    Deterministic: the random numbers come from ``np.random.default_rng([seed, epoch, index])``; call
    :meth:`set_epoch` each epoch (in the main process, before the DataLoader iterator is created; with
    ``persistent_workers=True`` the workers keep the epoch they were started with).
    """

    def __init__(self, scales=(1.0, 1.2, 1.5), seed: int = 0, flip_p: float = 0.5, color: bool = True,
                 crop_to_input: bool = True, brightness: float = 0.2, contrast: float = 0.2,
                 saturation: float = 0.2, hue: float = 0.02):
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be positive numbers, got {scales!r}")
        self.seed = int(seed)
        self.flip_p = float(flip_p)
        self.color = bool(color)
        self.crop_to_input = bool(crop_to_input)
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __call__(self, sample: Sample, index: int) -> Sample:
        rng = self.rng(index)
        # draw every random number up front, in a fixed order, so the stream never depends on the data
        s = float(self.scales[rng.integers(len(self.scales))])
        u_crop = rng.random(2)
        jit = rng.uniform(-1.0, 1.0, 4)
        flip = rng.random() < self.flip_p

        h, w = sample.image.shape[:2]
        if s != 1.0:
            nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
            ratio = nw / w
            kind = sample.target_kind
            k0 = np.array(sample.intrinsics, dtype=np.float32)
            sample = resize_sample(sample, nh, nw)  # disparity *= ratio inside; depth unchanged there
            if kind == "depth":
                sample = sample.replace(target=(sample.target / np.float32(ratio)).astype(np.float32))
            # same camera, scene s times closer (eq. 2): the focal lengths stay; resize_sample scaled them
            # for a zoom, and cx, cy (scaled there) follow the pixel grid
            k = np.array(sample.intrinsics, dtype=np.float32)
            k[:2] = k0[:2]
            sample = sample.replace(intrinsics=k)
            if self.crop_to_input:
                # s > 1: crop offset in [0, nh - h]; s < 1: negative offset in [nh - h, 0] (= pad)
                y0 = int(np.floor(u_crop[0] * (abs(nh - h) + 1))) * (1 if nh >= h else -1)
                x0 = int(np.floor(u_crop[1] * (abs(nw - w) + 1))) * (1 if nw >= w else -1)
                sample = crop_or_pad(sample, h, w, y0, x0)
        if self.color:
            sample = sample.replace(image=color_jitter(
                sample.image, 1 + self.brightness * jit[0], 1 + self.contrast * jit[1],
                1 + self.saturation * jit[2], self.hue * jit[3]))
        if flip:
            sample = hflip_sample(sample)
        return sample

    def __repr__(self) -> str:
        return (f"PaperAugment(scales={self.scales}, seed={self.seed}, flip_p={self.flip_p}, "
                f"color={self.color}, crop_to_input={self.crop_to_input})")
