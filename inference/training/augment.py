"""BlazeNeo's training augmentations with cv2/numpy (no albumentations).

Each transform is a small callable class: ``t(image, label, rng=None) -> (image, label)`` on a
uint8 RGB image (H, W, 3) and a uint8 label map (H, W). It fires with probability ``p``; all
randomness comes from a numpy Generator (the transform's own, seeded in ``__init__``, or the one
passed in: ``Compose`` passes its own so one seed fixes the whole pipeline). Geometric
transforms move the label with nearest interpolation and fill the border with background.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import cv2
import numpy as np

from polypview.errors import ConfigError
from polypview.inference.runtime.labels import BACKGROUND
from polypview.registry import Registry


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


class VideoCrop(Transform):
    """A camera-like view of the image, drawn straight at the network's square input size.

    Tower frames are 16:9 (or the endoscope's area of one, nearly square), the camera zooms in and
    out and turns, and the app squeezes whatever it gets into the network's square input. So: a
    window of random aspect (width/height, log-uniform in `aspect`) and zoom (log-uniform in `zoom`:
    the window's side is the image's geometric-mean side divided by the zoom, so 3 is a 3x close-up
    and below 1 the whole image sits inside a black frame, as on a tower), turned by up to
    `rotate` degrees, is mapped onto `out` x `out` in one affine warp (image bilinear, label
    nearest, outside the image black / background). With probability `on_polyp` the window is
    placed so that a random polyp pixel lies inside it; otherwise its centre is uniform over the
    image, so close-ups often hold no polyp at all: the network learns from polyp-free mucosa.
    With probability `at_edge` a window placed on a polyp puts that polyp pixel near one of its
    sides instead (within 5 % of the window from that side), so the polyp is cut by the frame's edge, as
    when the camera turns away from it.
    Works on the image at its own aspect (the dataset's ``keep_aspect`` cache). Always applied.
    """

    def __init__(self, out: int, aspect=(0.75, 1.9), zoom=(0.7, 3.0), rotate: float = 30.0,
                 on_polyp: float = 0.6, at_edge: float = 0.0, seed=None):
        super().__init__(1.0, seed)
        if out < 8 or not 0 < aspect[0] <= aspect[1] or not 0 < zoom[0] <= zoom[1]:
            raise ConfigError(f"VideoCrop needs out >= 8 and positive ranges, got {out}, {aspect}, {zoom}")
        self.out, self.aspect, self.zoom, self.rotate, self.on_polyp = int(out), aspect, zoom, rotate, on_polyp
        self.at_edge = at_edge

    def window(self, label: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float, float, float]:
        """(centre x, centre y, width, height, angle in degrees) of a random window over `label`."""
        h, w = label.shape
        aspect = math.exp(rng.uniform(math.log(self.aspect[0]), math.log(self.aspect[1])))
        zoom = math.exp(rng.uniform(math.log(self.zoom[0]), math.log(self.zoom[1])))
        side = math.sqrt(w * h) / zoom
        win_w, win_h = side * math.sqrt(aspect), side / math.sqrt(aspect)
        angle = rng.uniform(-self.rotate, self.rotate)
        ys, xs = np.nonzero(label != BACKGROUND) if rng.random() < self.on_polyp else ((), ())
        if len(xs):  # a polyp pixel somewhere inside the window (not always at its centre)
            k = int(rng.integers(len(xs)))
            dx, dy = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4)
            if self.at_edge and rng.random() < self.at_edge:  # the polyp pixel near one side: cut by the edge
                edge = rng.choice((-1.0, 1.0)) * rng.uniform(0.45, 0.5)
                dx, dy = (edge, dy) if rng.random() < 0.5 else (dx, edge)
            cx = xs[k] + dx * win_w
            cy = ys[k] + dy * win_h
        else:  # centre uniform over the image, but a zoomed-out window stays around the image
            cx = rng.uniform(min(win_w / 2, w / 2), max(w - win_w / 2, w / 2))
            cy = rng.uniform(min(win_h / 2, h / 2), max(h - win_h / 2, h / 2))
        return cx, cy, win_w, win_h, angle

    def matrix(self, cx: float, cy: float, win_w: float, win_h: float, angle: float) -> np.ndarray:
        """2x3 affine map from output pixels to source pixels (for cv2's WARP_INVERSE_MAP)."""
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        sx, sy = win_w / self.out, win_h / self.out
        half = (self.out - 1) / 2
        a = np.array([[c * sx, -s * sy], [s * sx, c * sy]])
        offset = np.array([cx, cy]) - a @ np.array([half, half])
        return np.hstack([a, offset[:, None]]).astype(np.float64)

    def apply(self, image, label, rng):
        m = self.matrix(*self.window(label, rng))
        size = (self.out, self.out)
        flags = cv2.WARP_INVERSE_MAP
        # a window many times the output size is pre-shrunk, as the app's area resize would do
        shrink = max(1.0, (m[0, 0] ** 2 + m[1, 0] ** 2) ** 0.5)
        if shrink > 1.8:
            sigma = 0.5 * shrink
            image = cv2.GaussianBlur(image, (0, 0), sigma)
        image = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR | flags, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0)
        label = cv2.warpAffine(label, m, size, flags=cv2.INTER_NEAREST | flags, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=BACKGROUND)
        return image, label


class GaussianBlur(Transform):
    """Defocus: Gaussian blur with sigma uniform in `sigma` pixels (image only)."""

    def __init__(self, sigma=(0.5, 2.0), p: float = 0.5, seed=None):
        super().__init__(p, seed)
        self.sigma = sigma

    def apply(self, image, label, rng):
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(*self.sigma)), label


def video_augment(seed: int | None = 0, size: int = 256, at_edge: float = 0.0) -> Compose:
    """Camera-like training views for what the app sees (16:9 or ROI frames squeezed to the square
    input, zoom up to 3x, polyp-free close-ups, rotation, flips), then blur and colour jitter;
    `at_edge`: VideoCrop's share of polyp windows with the polyp cut by the window's edge."""
    return Compose(
        [
            VideoCrop(out=size, at_edge=at_edge),
            HorizontalFlip(p=0.5),
            VerticalFlip(p=0.5),
            ColorJitter(brightness=0.25, contrast=0.25, saturation=0.2, hue=DEFAULT_HUE, p=0.8),
            MotionBlur(kernel=(3, 9), p=0.3),
            GaussianBlur(sigma=(0.5, 2.0), p=0.2),
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


# Half of the windows placed on a polyp cut it by their edge ("video_edge"; docs/models.md).
EDGE_SHARE = 0.5

AUGMENTS: Registry[Callable] = Registry("augmentation", {
    "default": default_train_augment, "blazeneo": blazeneo_augment, "video": video_augment,
    "video_edge": partial(video_augment, at_edge=EDGE_SHARE), "none": no_augment})
# Pipelines that draw their output at the training size from an image kept at its own aspect.
SIZED_AUGMENTS = {"video", "video_edge"}


def create_augment(name: str, seed: int | None = 0, size: int = 256):
    """Augmentation pipeline by name (None for "none"); an unknown name lists the valid ones."""
    factory = AUGMENTS[name]
    return factory(seed=seed, size=size) if name in SIZED_AUGMENTS else factory(seed=seed)
