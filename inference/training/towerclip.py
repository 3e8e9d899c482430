"""The tower clip of `polypview eval --video`: the evaluated images played as a tower shows them.

The clip: every image of the evaluated split, in split order, is shown for 0.5-1 s (seeded) in a
1920x1080 frame, as a camera would move over it: a slow pan and zoom (eased) between two views.
Each image gets one kind of view (seeded):

* ``framed`` - the whole image sits inside a black 16:9 frame, as a tower lays out the endoscope
  picture (centred or to the right, 80-100 % of the frame height, with burned-in text where the
  black border leaves room); the picture zooms in up to 1.4x inside that fixed window.
* ``polyp`` - the image fills the frame (zoom 1 = the image covers the frame) and the camera
  looks at the polyp from zoom 1-3, the polyp anywhere from the centre to near an edge.
* ``edge`` - zoom 1.5-3 with the polyp's centre on an edge of the frame: half of it out of view.
* ``away`` - zoom 1.5-3 on the part of the image farthest from the polyp: mostly polyp-free frames.

Each frame's ground truth is the image's mask warped with the same affine transform (nearest),
black (background) outside the picture. The clip is planned from seeds and rendered frame by frame in
memory: nothing made from the dataset is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from polypview.errors import ConfigError, DataError
from polypview.inference.runtime.labels import BACKGROUND

VIDEO_SIZE = (1920, 1080)  # (w, h) of the clip: a tower's HD output
SCORE_SIZE = (480, 270)  # (w, h) at which frames are scored
DEFAULT_FPS = 30.0
DEFAULT_SECONDS = (0.5, 1.0)  # each image is shown for a seeded uniform time in this range
SECONDS_LIMITS = (0.05, 60.0)
MAX_ZOOM = 3.0  # over the zoom at which the image covers the frame
FRAMED_MAX_ZOOM = 1.4  # inside a tower's window
FRAMED_HEIGHT = (0.8, 1.0)  # a framed picture's height as a share of the frame height
KINDS = ("framed", "polyp", "edge", "away")
KIND_SHARES = (0.25, 0.3, 0.15, 0.3)  # a third of the clip looks away: polyp-free time for false alarms
AWAY_CANDIDATES = 24  # random view centres tried when looking away from the polyp
AWAY_MAX_DARK = 0.05  # ...preferring views with at most this share of the picture's black border
DARK_LEVEL = 20  # grey level at or below which a pixel is border, not scene (as roi.py)
TEXT_BGR = (235, 235, 235)

Rect = tuple[int, int, int, int]  # (x, y, w, h)


# ---------------------------------------------------------------- options


@dataclass(frozen=True)
class VideoOptions:
    """How the evaluation clip is made."""

    fps: float = DEFAULT_FPS
    seconds: tuple[float, float] = DEFAULT_SECONDS  # (min, max) seconds per image
    seed: int = 0
    size: tuple[int, int] = VIDEO_SIZE
    score_size: tuple[int, int] = SCORE_SIZE
    threshold: float | None = None  # the overlay's drawing threshold (as the viewer's --threshold); None: its default
    smoothing: int = 0  # frames the overlay's scores are averaged over (as the viewer's --smoothing); 0: off
    min_peak: float | None = None  # a region's least highest score (as the viewer's --min-peak); None: the default
    class_memory: float | None = None  # weight of a polyp's past class (as the viewer's --class-memory); None: default
    class_confidence: float | None = None  # as the viewer's --class-confidence; None: the overlay's default
    clips: int = 1  # clips played and pooled, seeds seed .. seed + clips - 1: other views of the same images


def parse_seconds(text) -> tuple[float, float]:
    """--video-seconds-per-image: "0.75" (fixed) or "0.5-1" (seeded uniform range) -> (min, max)."""
    parts = str(text).replace(",", "-").split("-")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    lo, hi = SECONDS_LIMITS
    if len(values) not in (1, 2) or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--video-seconds-per-image must be a number or a range such as 0.5-1, got {text!r}")
    first, last = values[0], values[-1]
    if not (lo <= first <= hi and lo <= last <= hi):
        raise ConfigError(f"--video-seconds-per-image must lie between {lo:g} and {hi:g} s, got {text!r}")
    if first > last:
        raise ConfigError(f"--video-seconds-per-image range {text!r} runs backwards (write MIN-MAX)")
    return first, last


def parse_int(text, name: str, minimum: int = 0) -> int:
    """A whole number option >= minimum, or one ConfigError line."""
    try:
        value = int(str(text))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


# ---------------------------------------------------------------- the clip


@dataclass(frozen=True)
class View:
    """Where the camera looks: the image point at the window's centre, and the zoom over the base scale."""

    cx: float
    cy: float
    zoom: float


@dataclass(frozen=True)
class Segment:
    """One source image's stretch of the clip."""

    image: int  # index into the evaluated pairs
    start: int  # first frame (clip frame index)
    frames: int
    kind: str  # one of KINDS
    window: Rect  # where the picture lies in the frame; black outside
    base: float  # frame pixels per image pixel at zoom 1
    begin: View
    end: View

    def view(self, i: int) -> View:
        """The view at the segment's frame i: eased linear pan, geometric zoom."""
        u = i / (self.frames - 1) if self.frames > 1 else 0.0
        s = u * u * (3 - 2 * u)  # smoothstep: the camera starts and stops gently
        zoom = self.begin.zoom ** (1 - s) * self.end.zoom ** s
        return View(self.begin.cx + s * (self.end.cx - self.begin.cx),
                    self.begin.cy + s * (self.end.cy - self.begin.cy), zoom)

    def matrix(self, i: int, image_shape) -> np.ndarray:
        """2x3 affine map from image pixels to window pixels at the segment's frame i."""
        ih, iw = image_shape[:2]
        v = self.view(i)
        scale = self.base * v.zoom
        ww, wh = self.window[2], self.window[3]
        cx = _clamp_centre(v.cx, ww / (2 * scale), iw)
        cy = _clamp_centre(v.cy, wh / (2 * scale), ih)
        return np.array([[scale, 0.0, ww / 2 - scale * cx], [0.0, scale, wh / 2 - scale * cy]])


def _clamp_centre(c: float, half: float, extent: float) -> float:
    """Keep a view of half-size `half` inside [0, extent] (centred when it cannot fit)."""
    return extent / 2 if 2 * half >= extent else min(max(c, half), extent - half)


@dataclass(frozen=True)
class PolypBox:
    """A mask's polyp: bounding box (x0, y0, x1, y1, exclusive) and centroid, in image pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    cx: float
    cy: float


def polyp_box(labels: np.ndarray) -> PolypBox | None:
    """The polyp pixels' box and centroid; None when the mask has none."""
    ys, xs = np.nonzero(labels != BACKGROUND)
    if xs.size == 0:
        return None
    return PolypBox(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1,
                    float(xs.mean()), float(ys.mean()))


def scene_mask(image_bgr: np.ndarray) -> np.ndarray:
    """Boolean map of an image's scene pixels (not its black border or burned-in black), any resolution."""
    grey = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    return grey > DARK_LEVEL


def plan_clip(shapes, boxes, options: VideoOptions = VideoOptions(), scenes=None) -> list[Segment]:
    """The segments of the clip for images of `shapes` ((h, w)) with polyps `boxes` (PolypBox or None).

    `scenes` (optional, per image): a scene_mask at any resolution, so that views looking away
    from the polyp look at the scene rather than magnify the picture's black corners.
    """
    rng = np.random.default_rng(options.seed)
    scenes = list(scenes) if scenes is not None else [None] * len(shapes)
    segments, start = [], 0
    for index, (shape, box, scene) in enumerate(zip(shapes, boxes, scenes)):
        seconds = rng.uniform(*options.seconds)
        frames = max(1, int(round(seconds * options.fps)))
        kind = str(rng.choice(KINDS, p=KIND_SHARES))
        segment = _plan_segment(rng, index, start, frames, kind, tuple(shape[:2]), box, options.size, scene)
        segments.append(segment)
        start += frames
    return segments


def _plan_segment(rng, index, start, frames, kind, shape, box, size, scene=None) -> Segment:
    ih, iw = shape
    fw, fh = size
    if kind == "framed":
        window, base = _tower_window(rng, iw, ih, fw, fh)
        target = (box.cx, box.cy) if box is not None else (rng.uniform(0, iw), rng.uniform(0, ih))
        reach = rng.uniform(0, 1)
        begin = View(iw / 2, ih / 2, 1.0)
        end = View(iw / 2 + reach * (target[0] - iw / 2), ih / 2 + reach * (target[1] - ih / 2),
                   rng.uniform(1.0, FRAMED_MAX_ZOOM))
        return Segment(index, start, frames, kind, window, base, begin, end)
    window, base = (0, 0, fw, fh), max(fw / iw, fh / ih)  # zoom 1: the image covers the frame

    def half(zoom: float) -> tuple[float, float]:  # half the view in image pixels
        return fw / (2 * base * zoom), fh / (2 * base * zoom)

    if box is None:  # no polyp to look at: wander over the image
        kind = "away"
    if kind == "polyp":
        views = []
        for zoom in (rng.uniform(1.0, 2.0), None):
            zoom = zoom if zoom is not None else float(np.clip(views[0].zoom * rng.uniform(0.8, 1.6), 1.0, MAX_ZOOM))
            hx, hy = half(zoom)
            views.append(View(box.cx + rng.uniform(-0.7, 0.7) * hx, box.cy + rng.uniform(-0.7, 0.7) * hy, zoom))
        begin, end = views
    elif kind == "edge":
        zoom = rng.uniform(1.5, MAX_ZOOM)
        end_zoom = float(np.clip(zoom * rng.uniform(0.9, 1.1), 1.0, MAX_ZOOM))
        hx, hy = half(zoom)
        side = int(rng.integers(4))  # the polyp's centre goes to the left, right, top or bottom edge
        along = rng.uniform(-0.6, 0.6)
        dx, dy = [(hx, along * hy), (-hx, along * hy), (along * hx, hy), (along * hx, -hy)][side]
        begin = View(box.cx + dx * rng.uniform(0.9, 1.1), box.cy + dy * rng.uniform(0.9, 1.1), zoom)
        drift = rng.uniform(-0.25, 0.25)
        end = View(begin.cx + drift * dx, begin.cy + drift * dy, end_zoom)
    else:  # away
        zoom = rng.uniform(1.5, MAX_ZOOM)
        end_zoom = float(np.clip(zoom * rng.uniform(0.9, 1.1), 1.0, MAX_ZOOM))
        hx, hy = half(zoom)
        begin = _far_view(rng, iw, ih, hx, hy, zoom, box, scene)
        end = View(begin.cx + rng.uniform(-0.15, 0.15) * hx, begin.cy + rng.uniform(-0.15, 0.15) * hy, end_zoom)
    return Segment(index, start, frames, kind, window, base, begin, end)


def _tower_window(rng, iw: int, ih: int, fw: int, fh: int) -> tuple[Rect, float]:
    """The whole picture inside a black frame: its rectangle in the frame and the scale that fits it."""
    base = min(rng.uniform(*FRAMED_HEIGHT) * fh / ih, 0.95 * fw / iw)
    w, h = max(1, int(round(iw * base))), max(1, int(round(ih * base)))
    right = rng.uniform() < 0.5  # towers put the picture in the middle or on the right, text on the left
    margin = int(round(rng.uniform(0.0, 0.04) * fw))
    x = max(0, fw - w - margin) if right else (fw - w) // 2
    return (x, (fh - h) // 2, w, h), base


def _far_view(rng, iw, ih, hx, hy, zoom, box, scene=None) -> View:
    """Of AWAY_CANDIDATES random view centres, the one whose view lies farthest from the polyp,
    among those showing little of the picture's black border when any does."""
    def gap(cx, cy):  # distance between the view rectangle and the polyp box (< 0 when they overlap)
        if box is None:
            return 0.0
        gx = max(box.x0 - (cx + hx), (cx - hx) - box.x1, 0.0)
        gy = max(box.y0 - (cy + hy), (cy - hy) - box.y1, 0.0)
        return math.hypot(gx, gy) if gx or gy else -math.hypot(cx - box.cx, cy - box.cy) / 1e6

    def dark(cx, cy):  # share of the view that is black border
        if scene is None:
            return 0.0
        sy, sx = scene.shape[0] / ih, scene.shape[1] / iw
        x0, x1 = int(max(0, (cx - hx) * sx)), int(math.ceil(min(iw, cx + hx) * sx))
        y0, y1 = int(max(0, (cy - hy) * sy)), int(math.ceil(min(ih, cy + hy) * sy))
        part = scene[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
        return 1.0 - float(part.mean()) if part.size else 1.0

    candidates = [(_clamp_centre(rng.uniform(0, iw), hx, iw), _clamp_centre(rng.uniform(0, ih), hy, ih))
                  for _ in range(AWAY_CANDIDATES)]
    cx, cy = max(candidates, key=lambda c: (dark(*c) <= AWAY_MAX_DARK, gap(*c)))
    return View(cx, cy, zoom)


@dataclass
class ClipFrame:
    """One frame of the clip with its truth."""

    index: int  # frame index in the clip
    segment: int  # segment index (= index of the source image in the pairs)
    first: bool  # the first frame of its segment
    image: np.ndarray  # BGR uint8 at the clip size
    truth: np.ndarray  # uint8 label map at the clip size


class TowerClip:
    """The evaluation clip of (image, mask) pairs: `for frame in clip` yields ClipFrames.

    With `options.clips` > 1 the clip is that many clips one after another, seeds `seed`, `seed + 1`, ...:
    every image is shown again from another view, for more polyp-free time to count false regions on."""

    def __init__(self, pairs, options: VideoOptions = VideoOptions()):
        if not pairs:
            raise DataError("no images to make the evaluation clip from")
        if options.clips < 1:
            raise ConfigError(f"the evaluation needs at least one clip, got {options.clips}")
        self.pairs = list(pairs)
        self.options = options
        shapes, boxes, scenes = [], [], []
        for image_path, mask_path in self.pairs:
            labels = _read_labels(mask_path)
            shapes.append(labels.shape[:2])
            boxes.append(polyp_box(labels))
            grey = cv2.imread(str(image_path), cv2.IMREAD_REDUCED_GRAYSCALE_4)  # a quarter size: enough, fast
            if grey is None:
                raise DataError(f"cannot read image {image_path} (missing, corrupt or not an image file)")
            scenes.append(scene_mask(grey))
        self.segments: list[Segment] = []
        for k in range(options.clips):  # each clip its own seed: other views and times of the same images
            start = self.segments[-1].start + self.segments[-1].frames if self.segments else 0
            self.segments += [replace(s, start=start + s.start)
                              for s in plan_clip(shapes, boxes, replace(options, seed=options.seed + k), scenes)]
        self.frames = sum(s.frames for s in self.segments)

    @property
    def seconds(self) -> float:
        return self.frames / self.options.fps

    def __len__(self) -> int:
        return self.frames

    def __iter__(self):
        for k, segment in enumerate(self.segments):
            image, labels = _read_pair(*self.pairs[segment.image])
            for i in range(segment.frames):
                frame, truth = render(segment, i, image, labels, self.options.size)
                yield ClipFrame(segment.start + i, k, i == 0, frame, truth)


def _read_labels(mask_path) -> np.ndarray:
    from polypview.inference.training.data import read_neopolyp_mask

    return read_neopolyp_mask(mask_path)


def _read_pair(image_path, mask_path) -> tuple[np.ndarray, np.ndarray]:
    from polypview.inference.training.data import resize_labels

    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"cannot read image {image_path} (missing, corrupt or not an image file)")
    labels = _read_labels(mask_path)
    if labels.shape[:2] != image.shape[:2]:
        labels = resize_labels(labels, image.shape[:2])
    return image, labels


def render(segment: Segment, i: int, image: np.ndarray, labels: np.ndarray, size=VIDEO_SIZE):
    """(BGR frame, label map) of the segment's frame i: the same warp for both, black outside the window."""
    fw, fh = size
    x, y, w, h = segment.window
    m = segment.matrix(i, image.shape)
    frame = np.zeros((fh, fw, 3), np.uint8)
    truth = np.full((fh, fw), BACKGROUND, np.uint8)
    frame[y:y + h, x:x + w] = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    truth[y:y + h, x:x + w] = cv2.warpAffine(labels, m, (w, h), flags=cv2.INTER_NEAREST,
                                             borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND)
    if segment.kind == "framed":
        _burn_text(frame, segment, i)
    return frame, truth


def _burn_text(frame: np.ndarray, segment: Segment, i: int) -> None:
    """Patient line and clock in the black border left of the picture, where they fit."""
    fh = frame.shape[0]
    scale, thick = 0.8 * fh / 1080, max(1, round(2 * fh / 1080))
    left = segment.window[0]
    for n, text in enumerate(("ID 0000-EVAL", f"IMG {segment.image:04d}", f"00:00:{i % 60:02d}")):
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        x = int(0.02 * frame.shape[1])
        if x + tw >= left - 8:
            return
        cv2.putText(frame, text, (x, int(fh * (0.08 + 0.05 * n))), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    TEXT_BGR, thick, cv2.LINE_AA)
