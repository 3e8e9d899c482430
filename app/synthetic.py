"""A generated endoscopy-like clip for the demo and the benchmarks (seeded, deterministic).

Pinkish mucosa with vessels and specular spots, a vignette, the circular endoscope field with
a black border and burned-in text, and one or two polyp-like domes that drift and zoom. All
textures are made once; a frame costs one crop, two small sprite blends and one cv2.multiply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MUCOSA_BGR = (118, 112, 206)  # pink mucosa
POLYP_BGR = (92, 80, 188)  # redder, darker dome
PAN_MARGIN = 0.12  # texture margin around the view, as a fraction of the frame size


@dataclass(frozen=True)
class Blob:
    """A polyp-like dome: where it wanders (fractions of the frame) and how it zooms."""

    cx: float
    cy: float
    radius: float  # fraction of the frame height
    speed: float
    phase: float
    visible: tuple[float, float] = (0.0, 1.0)  # fraction of each 20 s cycle it is shown


def _smooth_noise(rng, shape, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a small random grid upscaled with cubic interpolation."""
    h, w = shape
    grid = rng.uniform(-1, 1, (cells, max(2, cells * w // h))).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def mucosa_texture(rng, shape) -> np.ndarray:
    """A pink mucosa texture with folds, vessels and specular spots (BGR uint8)."""
    h, w = shape
    shade = 0.22 * _smooth_noise(rng, shape, 4) + 0.08 * _smooth_noise(rng, shape, 16)
    base = np.empty((h, w, 3), np.float32)
    for c, value in enumerate(MUCOSA_BGR):
        base[..., c] = value * (1.0 + shade)
    tex = np.clip(base, 0, 255).astype(np.uint8)
    _draw_vessels(rng, tex)
    _draw_speculars(rng, tex)
    return cv2.GaussianBlur(tex, (0, 0), max(1.0, h / 700))


def _draw_vessels(rng, tex: np.ndarray) -> None:
    """Thin dark vessels: random walks whose heading drifts slowly, so they curve."""
    h, w = tex.shape[:2]
    for _ in range(24):
        point, heading = rng.uniform((0, 0), (w, h)), rng.uniform(0, 2 * np.pi)
        points = [point]
        for _ in range(40):
            heading += rng.normal(0, 0.3)
            point = point + (h / 70) * np.array([np.cos(heading), np.sin(heading)])
            points.append(point)
        pts = np.array(points, np.int32).reshape(-1, 1, 2)
        thickness = max(1, int(h / 500 * rng.uniform(0.6, 1.6)))
        cv2.polylines(tex, [pts], False, (78, 66, 160), thickness, cv2.LINE_AA)


def _draw_speculars(rng, tex: np.ndarray) -> None:
    h, w = tex.shape[:2]
    for _ in range(22):
        centre = tuple(int(v) for v in rng.uniform((0, 0), (w, h)))
        axes = (max(1, int(rng.uniform(2, 9) * h / 720)), max(1, int(rng.uniform(1, 4) * h / 720)))
        cv2.ellipse(tex, centre, axes, rng.uniform(0, 180), 0, 360, (245, 245, 250), -1, cv2.LINE_AA)


def lens_mask(size) -> np.ndarray:
    """Vignette times the circular field, as a uint8 gain image (255 = unchanged) for cv2.multiply."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(xx - w / 2, yy - h / 2) / (0.5 * h * 1.08)
    gain = np.clip(1.0 - 0.55 * r**2.2, 0, 1)
    gain *= np.clip((1.0 - r) * h / 6.0, 0, 1)  # soft edge of the circular field, black outside
    return cv2.merge([(gain * 255).astype(np.uint8)] * 3)


def polyp_sprite(radius: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """A shaded dome (BGR uint8) and its alpha (float32, 0..1), 2*radius+1 square."""
    d = 2 * radius + 1
    yy, xx = np.mgrid[0:d, 0:d].astype(np.float32) - radius
    r = np.hypot(xx, yy * 1.15) / radius
    height = np.sqrt(np.clip(1 - r**2, 0, 1))
    light = 0.55 + 0.45 * np.clip(height - 0.25 * (xx + yy) / radius, 0, 1.2)
    grain = 1.0 + 0.06 * _smooth_noise(rng, (d, d), 6)
    sprite = np.stack([c * light * grain for c in POLYP_BGR], axis=-1)
    sprite = np.clip(sprite, 0, 255).astype(np.uint8)
    cv2.ellipse(sprite, (int(radius * 0.7), int(radius * 0.6)), (max(1, radius // 9), max(1, radius // 14)),
                -30, 0, 360, (240, 240, 248), -1, cv2.LINE_AA)
    alpha = np.clip((1 - r) * radius / 4.0, 0, 1).astype(np.float32)
    return sprite, alpha


DEFAULT_BLOBS = (
    Blob(cx=0.42, cy=0.55, radius=0.13, speed=0.35, phase=0.0),
    Blob(cx=0.64, cy=0.38, radius=0.07, speed=0.5, phase=1.7, visible=(0.3, 0.8)),
)


class DemoClip:
    """Frame `t` (seconds) of the generated clip: `DemoClip(size).frame(t)` -> BGR uint8."""

    def __init__(self, size=(1280, 720), seed: int = 0, blobs=DEFAULT_BLOBS, text: str = "POLYPVIEW DEMO"):
        w, h = int(size[0]), int(size[1])
        self.size = (w, h)
        rng = np.random.default_rng(seed)
        self._margin = (int(w * PAN_MARGIN), int(h * PAN_MARGIN))
        self._texture = mucosa_texture(rng, (h + 2 * self._margin[1], w + 2 * self._margin[0]))
        self._lens = lens_mask(self.size)
        self._blobs = blobs
        self._sprites = [polyp_sprite(max(4, int(b.radius * h * 1.3)), rng) for b in blobs]
        self._text = text

    def frame(self, t: float) -> np.ndarray:
        """The frame at time t seconds."""
        w, h = self.size
        mx, my = self._margin
        ox = int(mx * (1 + 0.8 * math.sin(0.31 * t)))
        oy = int(my * (1 + 0.8 * math.sin(0.23 * t + 1.0)))
        image = self._texture[oy:oy + h, ox:ox + w].copy()
        for blob, sprite in zip(self._blobs, self._sprites):
            self._blend_blob(image, blob, sprite, t)
        cv2.multiply(image, self._lens, dst=image, scale=1 / 255)
        self._burn_text(image, t)
        return image

    def _blend_blob(self, image, blob: Blob, sprite, t: float) -> None:
        cycle = (t / 20.0) % 1.0
        if not blob.visible[0] <= cycle < blob.visible[1]:
            return
        w, h = self.size
        zoom = 0.75 + 0.3 * math.sin(blob.speed * t * 0.8 + blob.phase)
        rgb, alpha = sprite
        side = max(5, int(rgb.shape[0] * zoom / 1.3))
        cx = int(w * (blob.cx + 0.08 * math.sin(blob.speed * t + blob.phase)))
        cy = int(h * (blob.cy + 0.06 * math.cos(blob.speed * 1.3 * t + blob.phase)))
        _paste(image, cv2.resize(rgb, (side, side)), cv2.resize(alpha, (side, side)), cx - side // 2, cy - side // 2)

    def _burn_text(self, image, t: float) -> None:
        w, h = self.size
        scale = h / 1000
        thick = max(1, int(2 * scale))
        clock = f"{int(t // 3600):02d}:{int(t // 60) % 60:02d}:{int(t) % 60:02d}"
        for text, y in ((self._text, 0.06), ("ID 0000-DEMO", 0.11), (clock, 0.96)):
            cv2.putText(image, text, (int(0.02 * w), int(y * h)), cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235),
                        thick, cv2.LINE_AA)


def _paste(image, rgb, alpha, x0: int, y0: int) -> None:
    """Alpha-blend `rgb` into `image` at (x0, y0), clipped to the image; touches only that box."""
    h, w = image.shape[:2]
    x1, y1 = max(0, x0), max(0, y0)
    x2, y2 = min(w, x0 + rgb.shape[1]), min(h, y0 + rgb.shape[0])
    if x2 <= x1 or y2 <= y1:
        return
    src = rgb[y1 - y0:y2 - y0, x1 - x0:x2 - x0].astype(np.float32)
    a = alpha[y1 - y0:y2 - y0, x1 - x0:x2 - x0, None]
    dst = image[y1:y2, x1:x2]
    dst[...] = (dst * (1 - a) + src * a).astype(np.uint8)


def write_demo_video(path, frames: int = 300, size=(1920, 1080), fps: float = 30.0, seed: int = 0) -> None:
    """Write `frames` frames of the demo clip as an H.264 MP4 (for benchmarks and examples)."""
    from polypview.recorder import VideoWriter

    clip = DemoClip(size=size, seed=seed)
    with VideoWriter(path, fps=fps, size=size) as writer:
        for i in range(frames):
            writer.write(clip.frame(i / fps))


class ImageClip:
    """Still endoscopy images played as a drifting endoscope: each shown `seconds` with a slow pan and zoom.

    For realistic benchmark clips assembled at run time from a dataset (never committed).
    """

    def __init__(self, images, size=(1920, 1080), seconds: float = 2.0, zoom: float = 0.2):
        if not images:
            raise ValueError("ImageClip needs at least one image")
        self.images = list(images)
        self.size = (int(size[0]), int(size[1]))
        self.seconds, self.zoom = float(seconds), float(zoom)
        self._cache: dict[int, np.ndarray] = {}

    def _image(self, index: int) -> np.ndarray:
        if index not in self._cache:
            item = self.images[index]
            image = item if isinstance(item, np.ndarray) else cv2.imread(str(item), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"cannot read image {item}")
            self._cache = {index: image}  # one image at a time: a dataset does not fit in memory
        return self._cache[index]

    def frame(self, t: float) -> np.ndarray:
        """The frame at time t seconds: a crop of the current image, resized to the clip size."""
        index = int(t // self.seconds) % len(self.images)
        u = (t % self.seconds) / self.seconds  # progress through this image, 0..1
        image = self._image(index)
        x, y, w, h = self._window(image.shape[1], image.shape[0], u, index)
        return cv2.resize(image[y:y + h, x:x + w], self.size, interpolation=cv2.INTER_LINEAR)

    def _window(self, iw: int, ih: int, u: float, index: int) -> tuple[int, int, int, int]:
        """The crop: the clip's aspect ratio, shrinking by `zoom` over the image's time, drifting sideways."""
        aspect = self.size[0] / self.size[1]
        w0, h0 = (iw, iw / aspect) if iw / ih < aspect else (ih * aspect, ih)
        scale = 1.0 - self.zoom * u
        w, h = max(2, int(w0 * scale)), max(2, int(h0 * scale))
        direction = 1 if index % 2 == 0 else -1
        cx = iw / 2 + direction * (iw - w) / 2 * (u - 0.5)
        cy = ih / 2 + (ih - h) / 2 * 0.5 * math.sin(2 * math.pi * u)
        x = int(min(max(cx - w / 2, 0), iw - w))
        y = int(min(max(cy - h / 2, 0), ih - h))
        return x, y, w, h


def write_image_clip(path, images, frames: int = 300, size=(1920, 1080), fps: float = 30.0, seconds: float = 2.0) -> None:
    """Write an ImageClip of `images` as an H.264 MP4 (realistic benchmark input, made at run time)."""
    from polypview.recorder import VideoWriter

    clip = ImageClip(images, size=size, seconds=seconds)
    with VideoWriter(path, fps=fps, size=size) as writer:
        for i in range(frames):
            writer.write(clip.frame(i / fps))
