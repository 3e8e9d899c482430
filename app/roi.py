"""Find the endoscope's image area in a frame: black borders and burned-in text lie outside it."""

from __future__ import annotations

import cv2
import numpy as np

WORK_WIDTH = 320  # detection runs on a frame shrunk to this width: fast, and text strokes vanish
DARK_LEVEL = 20  # grey level at or below which a pixel counts as border (video black is 16)
OPEN_FRACTION = 0.025  # opening kernel, as a share of the width: removes text, keeps the image
MIN_FRACTION = 0.15  # an image area smaller than this share of the frame is not believed
FULL_FRACTION = 0.97  # an area this close to the frame size means "no border"
SEEN_FRACTION = 0.05  # a frame with fewer bright pixels than this share is too dark to judge the area by


def detect_roi(frame_bgr: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the bright image area; None when the whole frame is image (or nothing is found)."""
    return find_image_area(frame_bgr)[0]


def find_image_area(frame_bgr: np.ndarray) -> tuple[tuple[int, int, int, int] | None, bool]:
    """(area, seen): `detect_roi`'s answer, and whether the frame showed enough image to judge by
    (False for a black or nearly black frame: the light off, the scope between patients)."""
    frame_h, frame_w = frame_bgr.shape[:2]
    scale = min(1.0, WORK_WIDTH / frame_w)
    small = cv2.resize(frame_bgr, (max(1, round(frame_w * scale)), max(1, round(frame_h * scale))),
                       interpolation=cv2.INTER_AREA)
    bright = _bright_mask(small)
    box = _largest_region(bright)
    if box is None:
        return None, False
    x, y = int(np.floor(box[0] / scale)), int(np.floor(box[1] / scale))
    w = min(int(np.ceil((box[0] + box[2]) / scale)), frame_w) - x
    h = min(int(np.ceil((box[1] + box[3]) / scale)), frame_h) - y
    if w * h < MIN_FRACTION * frame_w * frame_h:
        return None, False
    seen = bool(bright.mean() >= SEEN_FRACTION)
    if w >= FULL_FRACTION * frame_w and h >= FULL_FRACTION * frame_h:
        return None, seen
    return (x, y, w, h), seen


def same_area(a, b, frame_shape, min_iou: float = 0.9) -> bool:
    """Whether two image areas (x, y, w, h; None = the whole frame) are the same one, give or take."""
    full = (0, 0, frame_shape[1], frame_shape[0])
    (ax, ay, aw, ah), (bx, by, bw, bh) = a or full, b or full
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter >= min_iou * (aw * ah + bw * bh - inter)


def _bright_mask(small_bgr: np.ndarray) -> np.ndarray:
    """Non-black pixels, opened so that text strokes and noise drop out.

    No closing: it would bridge the gap between burned-in text and the image. Dark spots inside
    the image (the lumen) do not matter, only the bounding box of the image region is used.
    """
    grey = cv2.cvtColor(small_bgr, cv2.COLOR_BGR2GRAY)
    mask = (grey > DARK_LEVEL).astype(np.uint8)
    side = max(3, round(OPEN_FRACTION * small_bgr.shape[1])) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)


def _largest_region(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box of the largest connected bright region, None when there is none."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = stats[best, :4]
    return int(x), int(y), int(w), int(h)
