"""BlazeNeo's training augmentations with cv2/numpy (no albumentations).

Each transform is a small callable class: ``t(image, label, rng=None) -> (image, label)`` on a
uint8 RGB image (H, W, 3) and a uint8 label map (H, W). It fires with probability ``p``; all
randomness comes from a numpy Generator (the transform's own, seeded in ``__init__``, or the one
passed in: ``Compose`` passes its own so one seed fixes the whole pipeline). Geometric
transforms move the label with nearest interpolation and fill the border with background.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from polypview.errors import ConfigError
from polypview.inference.labels import BACKGROUND


class Transform:
    """Base: fire with probability `p` using the given or own Generator, then `apply`."""

    def __init__(self, p: float = 0.5, seed: int | None = None) -> None:
        self.p = float(p)
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator | None = None):
        rng = self.rng if rng is None else rng
        if rng.random() >= self.p:
            return image, label
        return self.apply(image, label, rng)

    def apply(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        """The transform itself (always applied)."""
        raise NotImplementedError

    def reseed(self, seed) -> None:
        """Restart the own Generator from `seed`."""
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items() if k != "rng")
        return f"{type(self).__name__}({args})"


def affine_matrix(shape: tuple[int, int], angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """2x3 matrix: rotate by `angle_deg` and scale about the centre, then shift by a fraction of (w, h)."""
    h, w = shape
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle_deg, scale)
    matrix[0, 2] += shift[0] * w
    matrix[1, 2] += shift[1] * h
    return matrix


def warp_pair(image: np.ndarray, label: np.ndarray, matrix: np.ndarray):
    """Apply one affine matrix to image (bilinear, black border) and label (nearest, background border)."""
    h, w = label.shape
    image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    label = cv2.warpAffine(
        label, matrix, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND
    )
    return image, label


class ShiftScaleRotate(Transform):
    """Random shift (fraction of size), scale (1 ± s) and rotation (± degrees), constant border."""

    def __init__(self, shift: float = 0.1, scale: float = 0.1, rotate: float = 10.0, p: float = 0.5, seed=None):
        super().__init__(p, seed)
        self.shift, self.scale, self.rotate = shift, scale, rotate

    def apply(self, image, label, rng):
        dx, dy = rng.uniform(-self.shift, self.shift, size=2)
        scale = rng.uniform(1 - self.scale, 1 + self.scale)
        angle = rng.uniform(-self.rotate, self.rotate)
        return warp_pair(image, label, affine_matrix(label.shape, angle, scale, (dx, dy)))


class HorizontalFlip(Transform):
    """Mirror left-right."""

    def apply(self, image, label, rng):
        return np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(label[:, ::-1])


class VerticalFlip(Transform):
    """Mirror top-bottom."""

    def apply(self, image, label, rng):
        return np.ascontiguousarray(image[::-1]), np.ascontiguousarray(label[::-1])


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """Multiply intensities by `factor`."""
    return cv2.convertScaleAbs(image, alpha=factor, beta=0)


def _blend(image: np.ndarray, other, factor: float) -> np.ndarray:
    """factor * image + (1 - factor) * other, clipped to uint8."""
    out = image.astype(np.float32) * factor + np.asarray(other, dtype=np.float32) * (1 - factor)
    return np.clip(out, 0, 255).astype(np.uint8)


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the mean grey level (torchvision's definition)."""
    return _blend(image, cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean(), factor)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the greyscale image."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    return _blend(image, grey, factor)


def adjust_hue(image: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue by `shift` turns (0.1 = 36 degrees)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    # OpenCV's uint8 hue runs 0..179 (2 degrees per step).
    hue = (hsv[..., 0].astype(np.int16) + int(round(shift * 180))) % 180
    hsv[..., 0] = hue.astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


class ColorJitter(Transform):
    """torchvision-style jitter in random order: factors 1 ± b/c/s, hue shift ± `hue` turns.

    BlazeNeo used hue 0.2 (± 72 degrees), which turns mucosa green or blue, colours that never
    occur in white-light endoscopy and that border on the class colour cues; the default
    training pipeline therefore uses a smaller hue (see ``default_train_augment``).
    """

    def __init__(self, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.2, p: float = 0.5, seed=None):
        super().__init__(p, seed)
        if not 0 <= hue <= 0.5:
            raise ConfigError(f"ColorJitter hue must be in [0, 0.5] turns, got {hue}")
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def apply(self, image, label, rng):
        ops = [
            (adjust_brightness, 1 + rng.uniform(-self.brightness, self.brightness)),
            (adjust_contrast, 1 + rng.uniform(-self.contrast, self.contrast)),
            (adjust_saturation, 1 + rng.uniform(-self.saturation, self.saturation)),
            (adjust_hue, rng.uniform(-self.hue, self.hue)),
        ]
        for i in rng.permutation(len(ops)):
            op, value = ops[i]
            image = op(image, value)
        return image, label


def motion_kernel(size: int, angle_deg: float) -> np.ndarray:
    """A normalised line kernel of odd `size` through the centre at `angle_deg`."""
    kernel = np.zeros((size, size), np.float32)
    c, r = size // 2, size // 2
    dx, dy = r * math.cos(math.radians(angle_deg)), r * math.sin(math.radians(angle_deg))
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, thickness=1)
    return kernel / kernel.sum()


class MotionBlur(Transform):
    """Blur along a random direction with an odd kernel size in [min, max] (image only)."""

    def __init__(self, kernel: tuple[int, int] = (3, 7), p: float = 0.5, seed=None):
        super().__init__(p, seed)
        lo, hi = kernel
        if lo < 3 or hi < lo:
            raise ConfigError(f"MotionBlur kernel range must satisfy 3 <= min <= max, got {kernel}")
        self.kernel = (lo, hi)

    def apply(self, image, label, rng):
        sizes = [k for k in range(self.kernel[0], self.kernel[1] + 1) if k % 2 == 1]
        kernel = motion_kernel(int(rng.choice(sizes)), rng.uniform(0, 180))
        return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101), label


class Compose:
    """Apply transforms in order, drawing all randomness from one seeded Generator."""

    def __init__(self, transforms: Sequence[Transform], seed: int | None = None) -> None:
        self.transforms = list(transforms)
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray, label: np.ndarray):
        for transform in self.transforms:
            image, label = transform(image, label, self.rng)
        return image, label

    def reseed(self, seed) -> None:
        """Restart the Generator (DataLoader workers call this through ``data.seed_worker``)."""
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


def blazeneo_augment(seed: int | None = None, hue: float = 0.2) -> Compose:
    """The BlazeNeo pipeline as released (hue 0.2 by default)."""
    return Compose(
        [
            ShiftScaleRotate(shift=0.1, scale=0.1, rotate=10.0, p=0.5),
            HorizontalFlip(p=0.5),
            VerticalFlip(p=0.5),
            ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=hue, p=0.5),
            MotionBlur(kernel=(3, 7), p=0.5),
        ],
        seed=seed,
    )


DEFAULT_HUE = 0.05  # +-18 degrees: colour variation between scopes without unreal mucosa colours


def default_train_augment(seed: int | None = 0) -> Compose:
    """polypview's training pipeline: BlazeNeo's, with hue jitter reduced to +-0.05 turns."""
    return blazeneo_augment(seed, hue=DEFAULT_HUE)


def no_augment(seed: int | None = None) -> None:
    """No augmentation (evaluation, or a baseline run)."""
    return None


AUGMENTS = {"default": default_train_augment, "blazeneo": blazeneo_augment, "none": no_augment}


def create_augment(name: str, seed: int | None = 0):
    """Augmentation pipeline by name (None for "none"); an unknown name lists the valid ones."""
    try:
        factory = AUGMENTS[name]
    except KeyError:
        raise ConfigError(f"unknown augmentation {name!r}; valid: {', '.join(AUGMENTS)}") from None
    return factory(seed=seed)
