"""Draw a prediction on a video frame: filled masks, contours or boxes, and a legend.

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

from polypview.defaults import OVERLAY_STYLES
from polypview.errors import ConfigError
from polypview.inference.runtime.labels import one_class_per_region
from polypview.roi import detect_roi

if TYPE_CHECKING:  # only the type is needed: drawing must not depend on the runtime module
    from polypview.inference.runtime.engine import Prediction

STYLES = OVERLAY_STYLES
Rect = tuple[int, int, int, int]  # (x, y, w, h)
UNSURE_NAME = "class uncertain"  # a polyp drawn without a class (OverlaySettings.class_confidence)
UNSURE_RGB = (255, 255, 0)  # NeoPolyp's own colour for a polyp of undetermined class

__all__ = ["STYLES", "Overlay", "OverlaySettings", "Region", "detect_roi", "find_regions", "keep_regions"]


@dataclass(frozen=True)
class OverlaySettings:
    """How the overlay is drawn; adjustable live (the pipeline swaps the whole object)."""

    enabled: bool = True
    style: str = "fill"  # "fill" | "contour" | "box"
    opacity: float = 0.45
    threshold: float = 0.5
    min_area: float = 0.0005  # fraction of the image (ROI) area; smaller regions are not drawn
    # A region is drawn only if its highest score reaches min_peak (hysteresis; <= threshold: off). 0.9 was
    # chosen on the validation tower clip (docs/models.md): false regions on normal mucosa -42 %, missed frames +0.9 pt.
    min_peak: float = 0.9
    smoothing: int = 0  # frames of TemporalSmoother
    # Weight of a polyp's past class share (runtime.temporal.ClassMemory; 0: off). 0.5 was chosen on the validation
    # tower clip (docs/models.md): class flips per polyp-second 0.73 -> 0.35, Dice within 1.1 points.
    class_memory: float = 0.5
    legend: bool = False  # burn the class legend into the frame (the window shows it beside the video)
    one_class_per_region: bool = True  # a polyp has one histology: each region takes its majority class
    # Write each drawn polyp's class name beside it: red against green alone fails readers with red-green colour
    # blindness (about 1 man in 12), and a name can be read at a glance without the legend.
    name_tags: bool = False
    # A polyp whose share of class probability for the class it would be drawn in is below this is drawn in
    # yellow, "class uncertain", instead of red or green (runtime.temporal.ClassMemory; 0: off; needs one class
    # per region).
    class_confidence: float = 0.0

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ConfigError(f"unknown overlay style {self.style!r}; valid styles: {', '.join(STYLES)}")
        for name in ("opacity", "threshold", "min_area", "min_peak", "class_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"overlay {name} must lie in [0, 1], got {getattr(self, name)}")
        if self.smoothing < 0:
            raise ConfigError(f"overlay smoothing must be >= 0 frames, got {self.smoothing}")
        if not 0.0 <= self.class_memory < 1.0:
            raise ConfigError(f"overlay class_memory must lie in [0, 1), got {self.class_memory}")


def keep_regions(scores: np.ndarray, threshold: float, min_area: float, min_peak: float = 0.0) -> np.ndarray:
    """Boolean mask of pixels >= threshold in connected regions covering >= min_area of the image
    whose highest score reaches min_peak (hysteresis: a faint blob is dropped, a confident region
    keeps its whole extent down to the threshold)."""
    return _regions(scores, threshold, min_area, min_peak)[0]


def _regions(scores: np.ndarray, threshold: float, min_area: float, min_peak: float = 0.0):
    """(keep mask, (count, component map) or None): the components are reused by the class vote."""
    mask = (scores >= threshold).astype(np.uint8)
    min_pixels = min_area * mask.size
    peaked = min_peak > threshold
    if (min_pixels <= 1 and not peaked) or not mask.any():
        return mask.astype(bool), None
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    kept = stats[:, cv2.CC_STAT_AREA] >= min_pixels
    if peaked:
        strong = np.zeros(count, bool)
        strong[labels[scores >= min_peak]] = True  # components holding a pixel at or above the peak
        kept &= strong
    kept[0] = False  # component 0 is the background
    return kept[labels], (count, labels)


@dataclass(frozen=True)
class Region:
    """One drawn polyp region, as a table row: what the overlay would paint for it."""

    label: int  # class index (0 neoplastic, 1 non-neoplastic for the -neo models)
    area: float  # fraction of the predicted area (the image area of interest, or the frame)
    score: float  # mean polyp confidence of its pixels
    box: Rect  # (x, y, w, h) in frame pixels


def find_regions(p: Prediction, settings: OverlaySettings, classes: int, frame_shape) -> list[Region]:
    """The regions the overlay draws for prediction `p` (same threshold, smallest area and peak), largest first.

    Each region's class is its pixels' majority, as the overlay colours it by default (label `classes`:
    "class uncertain", with `class_confidence`)."""
    keep = keep_regions(p.scores, settings.threshold, settings.min_area, settings.min_peak)
    target = p.roi if p.roi is not None else (0, 0, frame_shape[1], frame_shape[0])
    return sorted(_kept_regions(p, keep, classes, target), key=lambda r: -r.area)


def _kept_regions(p: Prediction, keep: np.ndarray, classes: int, target: Rect) -> list[Region]:
    """One Region per connected component of the `keep` mask (model resolution), boxed in the frame
    rectangle `target` that the prediction covers, in its pixels' majority label (label `classes`, "class
    uncertain", which the temporal steps give a whole region, takes part in the vote)."""
    keep = keep.astype(np.uint8)
    if not keep.any():
        return []
    count, components, stats, _ = cv2.connectedComponentsWithStats(keep, connectivity=8)
    inside = keep.astype(bool)
    index, labels = components[inside], p.labels[inside]
    score_sums = np.bincount(index, weights=p.scores[inside], minlength=count)
    bins = classes + 1  # the classes and "class uncertain"
    voters = labels < bins
    votes = np.bincount(index[voters] * bins + labels[voters], minlength=count * bins).reshape(count, bins)
    tx, ty, tw, th = target
    sx, sy = tw / keep.shape[1], th / keep.shape[0]
    regions = []
    for k in range(1, count):
        x, y, w, h, pixels = (int(v) for v in stats[k])
        box = (tx + round(x * sx), ty + round(y * sy), round(w * sx), round(h * sy))
        label = int(votes[k].argmax()) if votes[k].any() else classes - 1
        regions.append(Region(label, pixels / keep.size, float(score_sums[k] / pixels), box))
    return regions


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


def _grow(rect: Rect, pad: int) -> Rect:
    return rect[0] - pad, rect[1] - pad, rect[2] + 2 * pad, rect[3] + 2 * pad


def _crop_rects(box, model_shape, target: Rect) -> tuple[tuple[int, int, int, int], Rect]:
    """Model crop (x0, y0, x1, y1) around `box` (one pixel margin) and the frame rectangle it covers."""
    h, w = model_shape
    # Interpolated edges reach up to one model pixel past the kept pixels.
    x0, y0, x1, y1 = max(box[0] - 1, 0), max(box[1] - 1, 0), min(box[2] + 1, w), min(box[3] + 1, h)
    sx, sy = target[2] / w, target[3] / h
    fx0, fx1 = round(x0 * sx), round(x1 * sx)
    fy0, fy1 = round(y0 * sy), round(y1 * sy)
    return (x0, y0, x1, y1), (target[0] + fx0, target[1] + fy0, fx1 - fx0, fy1 - fy0)


def _upscale(p: Prediction, keep: np.ndarray, labels: np.ndarray, crop, rect: Rect, threshold: float):
    """uint8 mask (0/255) and labels of frame rectangle `rect`, resized from the model crop only."""
    x0, y0, x1, y1 = crop
    size = (rect[2], rect[3])
    # Resizing the scores (not the binary mask) gives smooth edges instead of model-pixel steps.
    scores = np.where(keep[y0:y1, x0:x1], p.scores[y0:y1, x0:x1], 0).astype(np.float32)
    up = cv2.resize(scores, size, interpolation=cv2.INTER_LINEAR)
    mask = cv2.compare(up, max(threshold, 1e-6), cv2.CMP_GE)
    labels = cv2.resize(np.ascontiguousarray(labels[y0:y1, x0:x1]), size, interpolation=cv2.INTER_NEAREST)
    return mask, labels


class Overlay:
    """Draws predictions with the model's class colours; `draw` returns an annotated copy."""

    def __init__(self, class_names, colors_rgb, unsure_rgb=UNSURE_RGB):
        self.class_names = tuple(class_names)
        if len(colors_rgb) != len(self.class_names):
            raise ConfigError(f"{len(colors_rgb)} colours for {len(self.class_names)} classes")
        self.colors_bgr = np.array([tuple(reversed(c)) for c in colors_rgb], np.uint8)
        # What can be drawn: the classes, and with two or more, "class uncertain" (label len(classes)).
        unsure = len(self.class_names) >= 2
        self.drawn_names = self.class_names + ((UNSURE_NAME,) if unsure else ())
        self.drawn_colors = np.vstack([self.colors_bgr] + ([np.array([unsure_rgb[::-1]], np.uint8)] if unsure else []))
        # Label -> BGR colour table for cv2.LUT (labels beyond those get the last class colour).
        self._lut = np.repeat(self.colors_bgr[-1:], 256, axis=0)[:, None, :].copy()
        self._lut[: len(self.drawn_colors), 0] = self.drawn_colors
        self._legend_cache: dict[tuple[int, int, bool], tuple[Rect, np.ndarray]] = {}
        self._tag_cache: dict[tuple[int, int, int], np.ndarray] = {}

    def draw(self, frame_bgr: np.ndarray, prediction: Prediction | None, settings: OverlaySettings,
             roi: Rect | None = None) -> np.ndarray:
        """Annotated copy of the frame; `roi` (x, y, w, h) limits where masks may appear."""
        return self.draw_marked(frame_bgr, prediction, settings, roi)[0]

    def draw_marked(self, frame_bgr: np.ndarray, prediction: Prediction | None, settings: OverlaySettings,
                    roi: Rect | None = None) -> tuple[np.ndarray, bool]:
        """(`draw`'s annotated copy, whether a polyp region is drawn on it)."""
        out = frame_bgr.copy()
        if not settings.enabled:
            return out, False
        marked = prediction is not None and self._draw_mask(out, prediction, settings, roi)
        if settings.legend:
            self._draw_legend(out, frame_bgr, settings.class_confidence > 0)
        return out, marked

    def _draw_mask(self, out: np.ndarray, p: Prediction, s: OverlaySettings, roi: Rect | None) -> bool:
        frame_rect = (0, 0, out.shape[1], out.shape[0])
        target = p.roi if p.roi is not None else frame_rect  # the area the prediction covers
        limit = _clip(target, roi) if roi is not None else target  # where drawing is allowed
        limit = _clip(limit, frame_rect) if limit is not None else None
        keep, components = _regions(p.scores, s.threshold, s.min_area, s.min_peak)
        box = _bbox(keep)
        if box is None or limit is None:
            return False
        classes = len(self.class_names)
        regions = _kept_regions(p, keep, classes, target) if s.style == "box" or s.name_tags else []
        if s.style == "box":  # rectangles from the model-resolution regions: nothing to upscale
            self._boxes(out, regions, limit)
        else:
            self._draw_shapes(out, p, s, keep, components, box, target, limit)
        if s.name_tags:
            self._tags(out, regions, limit)
        return True

    def _draw_shapes(self, out, p: Prediction, s: OverlaySettings, keep, components, box, target: Rect,
                     limit: Rect) -> None:
        """Filled masks or contours, upscaled from the model crop that holds the kept regions (a region the temporal
        steps labelled "class uncertain" keeps that label: its pixels have no class to vote)."""
        crop, rect = _crop_rects(box, keep.shape, target)
        if rect[2] <= 0 or rect[3] <= 0:
            return
        labels = p.labels
        if s.one_class_per_region:
            labels = one_class_per_region(labels, keep, len(self.class_names), components)
        mask, labels = _upscale(p, keep, labels, crop, rect, s.threshold)
        if s.style == "fill":
            self._fill(out, rect, mask, labels, s.opacity, limit)
        else:
            self._contours(out, rect, mask, labels, limit)

    def _fill(self, out, rect: Rect, mask, labels, opacity: float, limit: Rect) -> None:
        area = _clip(rect, limit)
        if opacity <= 0 or area is None:
            return
        x, y, w, h = area
        inner = (slice(y - rect[1], y - rect[1] + h), slice(x - rect[0], x - rect[0] + w))
        patch = out[y:y + h, x:x + w]
        labels = labels[inner]
        colour = cv2.applyColorMap(labels, self._lut)  # one pass; merge + LUT cost 2.5x as much at 1080p
        blended = cv2.addWeighted(patch, 1.0 - opacity, colour, opacity, 0.0)
        cv2.copyTo(blended, np.ascontiguousarray(mask[inner]), patch)  # writes into `out` in place

    def _contours(self, out, rect: Rect, mask, labels, limit: Rect) -> None:
        thickness = self._thickness(out)
        area = _clip(_grow(rect, thickness), limit)
        if area is None:
            return
        patch = out[area[1]:area[1] + area[3], area[0]:area[0] + area[2]]  # drawing clips to the patch
        offset = (rect[0] - area[0], rect[1] - area[1])
        for k, colour in enumerate(self.drawn_colors):
            class_mask = cv2.bitwise_and(mask, cv2.compare(labels, k, cv2.CMP_EQ))
            contours, _ = cv2.findContours(class_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            if contours:
                cv2.drawContours(patch, contours, -1, tuple(int(c) for c in colour), thickness,
                                 cv2.LINE_AA, offset=offset)

    def _boxes(self, out, regions: list[Region], limit: Rect) -> None:
        """A rectangle just outside each drawn region, in its majority class's colour; the lesion stays uncovered."""
        thickness = self._thickness(out)
        # cv2 centres a line on the rectangle: at this gap it lies wholly outside the region's box
        gap = thickness + thickness // 2
        x0, y0, w0, h0 = limit
        patch = out[y0:y0 + h0, x0:x0 + w0]  # drawing clips to the area the masks may cover
        for r in regions:
            x, y, w, h = r.box[0] - x0, r.box[1] - y0, r.box[2], r.box[3]
            colour = tuple(int(c) for c in self.drawn_colors[min(r.label, len(self.drawn_colors) - 1)])
            cv2.rectangle(patch, (x - gap, y - gap), (x + w - 1 + gap, y + h - 1 + gap), colour, thickness, cv2.LINE_8)

    def _tags(self, out, regions: list[Region], limit: Rect) -> None:
        """Each region's class name on an opaque dark tag, centred above its box (below it when there is no room
        above, inside its top edge when there is none below either), never over the lesion where it fits."""
        thickness = self._thickness(out)
        gap = 2 * thickness + thickness // 2  # clear of a box style's rectangle
        lx, ly, lw, lh = limit
        for r in regions:
            image = self._tag(min(r.label, len(self.drawn_names) - 1), out.shape[0], out.shape[1])
            th, tw = image.shape[:2]
            x, y, w, h = r.box
            if y - gap - th >= ly:
                top = y - gap - th
            elif y + h + gap + th <= ly + lh:
                top = y + h + gap
            else:
                top = max(ly, y)
            left = min(max(x + (w - tw) // 2, lx), lx + lw - tw)
            area = _clip((left, top, tw, th), limit)  # a tag wider than the image area shows its middle
            if area is None:
                continue
            ax, ay, aw, ah = area
            out[ay:ay + ah, ax:ax + aw] = image[ay - top:ay - top + ah, ax - left:ax - left + aw]

    def _tag(self, label: int, frame_h: int, frame_w: int) -> np.ndarray:
        key = (label, frame_h, frame_w)
        if key not in self._tag_cache:
            scale = max(min(frame_h, frame_w) / 1080, 0.25)
            self._tag_cache[key] = _render_rows([self.drawn_names[label]], self.drawn_colors[label:label + 1], scale,
                                                frame_w, frame_h)
        return self._tag_cache[key]

    @staticmethod
    def _thickness(frame: np.ndarray) -> int:
        return max(2, round(min(frame.shape[:2]) / 360))

    def legend_rect(self, frame_shape, unsure: bool = False) -> Rect:
        """Where the legend goes in a frame of this shape (the corner chosen at its first draw)."""
        return self._legend(frame_shape[0], frame_shape[1], unsure=unsure)[0]

    def _draw_legend(self, out: np.ndarray, source: np.ndarray, unsure: bool) -> None:
        (x, y, w, h), image = self._legend(out.shape[0], out.shape[1], source, unsure)
        out[y:y + h, x:x + w] = image

    def _legend(self, frame_h: int, frame_w: int, frame: np.ndarray | None = None,
                unsure: bool = False) -> tuple[Rect, np.ndarray]:
        """The legend image for this frame size (with the "class uncertain" row when `unsure`), rendered once,
        in the corner with the least burned-in text.

        The corner is chosen on the first frame that is not black (a capture can start black) and kept."""
        key = (frame_h, frame_w, unsure)
        if key in self._legend_cache:
            return self._legend_cache[key]
        (x, y, w, h), image = self._render_legend(frame_h, frame_w, unsure)
        rect = (x, y, w, h)
        if frame is not None and frame.mean() > BLACK_FRAME:
            rect = _quietest_corner(frame, w, h, x)
            self._legend_cache[key] = rect, image
        return rect, image

    def _render_legend(self, frame_h: int, frame_w: int, unsure: bool = False) -> tuple[Rect, np.ndarray]:
        scale = max(min(frame_h, frame_w) / 1080, 0.25)
        rows = len(self.drawn_names) if unsure else len(self.class_names)
        image = _render_rows(self.drawn_names[:rows], self.drawn_colors[:rows], scale, frame_w, frame_h)
        h, w = image.shape[:2]
        margin = max(2, round(16 * scale))
        x, y = min(margin, frame_w - w), max(0, frame_h - h - margin)
        return (x, y, w, h), image


def _render_rows(names, colors_bgr, scale: float, max_w: int, max_h: int) -> np.ndarray:
    """An opaque dark box (no blend, no source pixels inside) with one row per class: its colour swatch and
    its name in light text; `scale` 1 suits a 1080p frame. The legend, and each polyp's name tag."""
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale
    text_th = max(1, round(2 * scale))
    line_h = max(8, round(34 * scale))
    pad, swatch = max(2, round(10 * scale)), max(4, round(22 * scale))
    text_w = max(cv2.getTextSize(n, font, font_scale, text_th)[0][0] for n in names)
    w = min(max_w, 3 * pad + swatch + text_w)
    h = min(max_h, 2 * pad + line_h * len(names))
    image = np.full((h, w, 3), 24, np.uint8)
    for i, (name, colour) in enumerate(zip(names, colors_bgr)):
        top = pad + i * line_h + (line_h - swatch) // 2
        cv2.rectangle(image, (pad, top), (pad + swatch, top + swatch), tuple(int(c) for c in colour), -1)
        baseline = pad + i * line_h + (line_h + cv2.getTextSize(name, font, font_scale, text_th)[0][1]) // 2
        cv2.putText(image, name, (2 * pad + swatch, baseline), font, font_scale, (235, 235, 235),
                    text_th, cv2.LINE_AA)
    return image


BLACK_FRAME = 8  # mean grey level under which a frame is taken as black (no corner can be judged)
TEXT_LEVEL = 90  # grey level above which a pixel in a corner counts as burned-in text or image


def _quietest_corner(frame: np.ndarray, w: int, h: int, margin: int) -> Rect:
    """The corner box (w x h, `margin` from the edges) with the fewest bright pixels: towers burn patient
    data and settings into the black border as bright text; the legend must not cover it. Ties go to
    bottom-left, bottom-right, top-right, top-left, in that order."""
    fh, fw = frame.shape[:2]
    x0, x1 = min(margin, fw - w), max(0, fw - w - margin)
    y0, y1 = min(margin, fh - h), max(0, fh - h - margin)
    corners = [(x0, y1), (x1, y1), (x1, y0), (x0, y0)]
    grey = frame.max(axis=2) if frame.ndim == 3 else frame
    counts = [int(np.count_nonzero(grey[y:y + h, x:x + w] > TEXT_LEVEL)) for x, y in corners]
    x, y = corners[counts.index(min(counts))]
    return x, y, w, h
