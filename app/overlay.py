"""Draw a prediction on a video frame: filled masks or contours, and a legend.

Everything outside the drawn mask, contour and legend keeps the source pixels exactly (a
regulatory requirement for CADe devices). The work is done at model resolution; only the
bounding box of the kept regions is upscaled and blended, which keeps a 1080p frame at about
a millisecond instead of the 40-110 ms of a whole-frame blend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from polypview.errors import ConfigError
from polypview.roi import detect_roi

if TYPE_CHECKING:  # the runtime is only needed for the type; importing it here would be circular-prone
    from polypview.inference.runtime import Prediction

STYLES = ("fill", "contour")
Rect = tuple[int, int, int, int]  # (x, y, w, h)

__all__ = ["STYLES", "Overlay", "OverlaySettings", "detect_roi", "keep_regions"]


@dataclass(frozen=True)
class OverlaySettings:
    """How the overlay is drawn; adjustable live (the pipeline swaps the whole object)."""

    enabled: bool = True
    style: str = "fill"  # "fill" | "contour"
    opacity: float = 0.45
    threshold: float = 0.5
    min_area: float = 0.0005  # fraction of the image (ROI) area; smaller regions are not drawn
    smoothing: int = 0  # frames of TemporalSmoother
    legend: bool = True

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ConfigError(f"unknown overlay style {self.style!r}; valid styles: {', '.join(STYLES)}")
        for name in ("opacity", "threshold", "min_area"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"overlay {name} must lie in [0, 1], got {getattr(self, name)}")
        if self.smoothing < 0:
            raise ConfigError(f"overlay smoothing must be >= 0 frames, got {self.smoothing}")


def keep_regions(scores: np.ndarray, threshold: float, min_area: float) -> np.ndarray:
    """Boolean mask of pixels >= threshold in connected regions covering >= min_area of the image."""
    mask = (scores >= threshold).astype(np.uint8)
    min_pixels = min_area * mask.size
    if min_pixels <= 1 or not mask.any():
        return mask.astype(bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    big = stats[:, cv2.CC_STAT_AREA] >= min_pixels
    big[0] = False  # component 0 is the background
    return big[labels]


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) exclusive bounds of the True pixels, None when there are none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _clip(rect: Rect, bounds: Rect) -> Rect | None:
    """Intersection of two (x, y, w, h) rectangles, None when empty."""
    x0, y0 = max(rect[0], bounds[0]), max(rect[1], bounds[1])
    x1 = min(rect[0] + rect[2], bounds[0] + bounds[2])
    y1 = min(rect[1] + rect[3], bounds[1] + bounds[3])
    return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


class Overlay:
    """Draws predictions with the model's class colours; `draw` returns an annotated copy."""

    def __init__(self, class_names, colors_rgb):
        self.class_names = tuple(class_names)
        if len(colors_rgb) != len(self.class_names):
            raise ConfigError(f"{len(colors_rgb)} colours for {len(self.class_names)} classes")
        self.colors_bgr = np.array([tuple(reversed(c)) for c in colors_rgb], np.uint8)
        self._legend_cache: dict[tuple[int, int], tuple[Rect, np.ndarray]] = {}

    def draw(self, frame_bgr: np.ndarray, prediction: Prediction | None, settings: OverlaySettings,
             roi: Rect | None = None) -> np.ndarray:
        """Annotated copy of the frame; `roi` (x, y, w, h) limits where masks may appear."""
        out = frame_bgr.copy()
        if not settings.enabled:
            return out
        if prediction is not None:
            self._draw_mask(out, prediction, settings, roi)
        if settings.legend:
            self._draw_legend(out)
        return out

    def _draw_mask(self, out: np.ndarray, p: Prediction, s: OverlaySettings, roi: Rect | None) -> None:
        frame_h, frame_w = out.shape[:2]
        target = p.roi if p.roi is not None else (0, 0, frame_w, frame_h)  # area the prediction covers
        keep = keep_regions(p.scores, s.threshold, s.min_area)
        box = _bbox(keep)
        if box is None:
            return
        # Interpolated edges reach up to one model pixel past the kept pixels; contours add their width.
        pad = self._thickness(out) if s.style == "contour" else 0
        area = self._frame_box(box, keep.shape, target, pad)
        area = _clip(area, roi) if roi is not None else area
        area = _clip(area, (0, 0, frame_w, frame_h)) if area is not None else None
        if area is None:
            return
        mask, labels = self._upscale(p, keep, target, area, s.threshold)
        if s.style == "fill":
            self._fill(out, area, mask, labels, s.opacity)
        else:
            self._contours(out, area, mask, labels)

    @staticmethod
    def _frame_box(box, model_shape, target: Rect, pad: int) -> Rect | None:
        """Frame rectangle covering model box (x0, y0, x1, y1) grown by one model pixel and `pad`."""
        sx, sy = target[2] / model_shape[1], target[3] / model_shape[0]
        x0 = int(np.floor((box[0] - 1) * sx)) - pad
        y0 = int(np.floor((box[1] - 1) * sy)) - pad
        x1 = int(np.ceil((box[2] + 1) * sx)) + pad
        y1 = int(np.ceil((box[3] + 1) * sy)) + pad
        return _clip((target[0] + x0, target[1] + y0, x1 - x0, y1 - y0), target)

    @staticmethod
    def _upscale(p: Prediction, keep: np.ndarray, target: Rect, area: Rect, threshold: float):
        """Mask and labels for the frame rectangle `area`, resampled from model resolution."""
        h, w = keep.shape
        sx, sy = w / target[2], h / target[3]
        # Frame pixel centre -> model coordinates, the mapping cv2.resize uses for the full image.
        xs = ((np.arange(area[0], area[0] + area[2]) - target[0] + 0.5) * sx - 0.5).astype(np.float32)
        ys = ((np.arange(area[1], area[1] + area[3]) - target[1] + 0.5) * sy - 0.5).astype(np.float32)
        map_x, map_y = np.meshgrid(xs, ys)
        # Interpolating the scores (not the binary mask) gives smooth edges instead of model-pixel steps.
        kept_scores = np.where(keep, p.scores, 0).astype(np.float32)
        up = cv2.remap(kept_scores, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        labels = cv2.remap(p.labels, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        return up >= max(threshold, 1e-6), labels

    def _fill(self, out, area: Rect, mask, labels, opacity: float) -> None:
        if opacity <= 0:
            return
        x, y, w, h = area
        patch = out[y:y + h, x:x + w]
        colour = self.colors_bgr[np.minimum(labels, len(self.colors_bgr) - 1)]
        blended = cv2.addWeighted(patch, 1.0 - opacity, colour, opacity, 0.0)
        np.copyto(patch, blended, where=mask[..., None])

    def _contours(self, out, area: Rect, mask, labels) -> None:
        x, y, w, h = area
        patch = out[y:y + h, x:x + w]  # drawing into the view clips lines to the allowed area
        thickness = self._thickness(out)
        for k, colour in enumerate(self.colors_bgr):
            class_mask = (mask & (labels == k)).astype(np.uint8)
            if not class_mask.any():
                continue
            contours, _ = cv2.findContours(class_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(patch, contours, -1, tuple(int(c) for c in colour), thickness, cv2.LINE_AA)

    @staticmethod
    def _thickness(frame: np.ndarray) -> int:
        return max(2, round(min(frame.shape[:2]) / 360))

    def legend_rect(self, frame_shape) -> Rect:
        """Where the legend goes in a frame of this shape (bottom-left corner)."""
        return self._legend(frame_shape[0], frame_shape[1])[0]

    def _draw_legend(self, out: np.ndarray) -> None:
        (x, y, w, h), image = self._legend(out.shape[0], out.shape[1])
        out[y:y + h, x:x + w] = image

    def _legend(self, frame_h: int, frame_w: int) -> tuple[Rect, np.ndarray]:
        """The legend image for this frame size, rendered once and cached."""
        key = (frame_h, frame_w)
        if key not in self._legend_cache:
            self._legend_cache[key] = self._render_legend(frame_h, frame_w)
        return self._legend_cache[key]

    def _render_legend(self, frame_h: int, frame_w: int) -> tuple[Rect, np.ndarray]:
        scale = max(min(frame_h, frame_w) / 1080, 0.25)
        font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale
        text_th = max(1, round(2 * scale))
        line_h = max(8, round(34 * scale))
        pad, swatch = max(2, round(10 * scale)), max(4, round(22 * scale))
        text_w = max(cv2.getTextSize(n, font, font_scale, text_th)[0][0] for n in self.class_names)
        w = min(frame_w, 3 * pad + swatch + text_w)
        h = min(frame_h, 2 * pad + line_h * len(self.class_names))
        image = np.full((h, w, 3), 24, np.uint8)  # opaque dark box: no blend, no source pixels inside
        for i, (name, colour) in enumerate(zip(self.class_names, self.colors_bgr)):
            top = pad + i * line_h + (line_h - swatch) // 2
            cv2.rectangle(image, (pad, top), (pad + swatch, top + swatch), tuple(int(c) for c in colour), -1)
            baseline = pad + i * line_h + (line_h + cv2.getTextSize(name, font, font_scale, text_th)[0][1]) // 2
            cv2.putText(image, name, (2 * pad + swatch, baseline), font, font_scale, (235, 235, 235),
                        text_th, cv2.LINE_AA)
        margin = max(2, round(16 * scale))
        x, y = min(margin, frame_w - w), max(0, frame_h - h - margin)
        return (x, y, w, h), image
