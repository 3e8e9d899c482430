"""The video surface: paints the newest annotated BGR frame, scaled to fit with its aspect ratio."""

from __future__ import annotations

import cv2
import numpy as np
from PyQt6.QtCore import QPoint, QRect, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QResizeEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget


def fit_rect(image_size: QSize, area: QRect) -> QRect:
    """The largest rectangle with the image's aspect ratio centred in `area`."""
    if image_size.isEmpty() or area.isEmpty():
        return QRect()
    w, h = fit_size((image_size.width(), image_size.height()), (area.width(), area.height()))
    return QRect(area.x() + (area.width() - w) // 2, area.y() + (area.height() - h) // 2, w, h)


def fit_size(image_wh: tuple[int, int], area_wh: tuple[int, int]) -> tuple[int, int]:
    """(w, h) of `image_wh` scaled to fit `area_wh` keeping its aspect ratio, rounded as Qt's QSize.scaled."""
    (w, h), (aw, ah) = image_wh, area_wh
    if w <= 0 or h <= 0 or aw <= 0 or ah <= 0:
        return 0, 0
    rw = ah * w // h
    return (rw, ah) if rw <= aw else (aw, aw * h // w)


def scale_for_display(frame: np.ndarray, area_wh: tuple[int, int] | None) -> np.ndarray | None:
    """The frame shrunk to the size it is painted at in `area_wh` (None when it is not larger).

    Called on the pipeline's thread (SinkBridge.on_frame), so the GUI thread only copies pixels:
    Qt's smooth scaling of a 1080p frame costs ~7 ms of the GUI thread, this ~1 ms of another.
    Bilinear for shrinking by less than 2x; an exact 2x area step first for more.
    """
    if area_wh is None:
        return None
    h, w = frame.shape[:2]
    tw, th = fit_size((w, h), area_wh)
    if tw <= 0 or th <= 0 or (tw >= w and th >= h):
        return None
    while w >= 2 * tw and h >= 2 * th:
        w, h = w // 2, h // 2
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)  # OpenCV's fast path for 2x
    return cv2.resize(frame, (tw, th), interpolation=cv2.INTER_LINEAR)


def bgr_qimage(frame: np.ndarray) -> QImage:
    """A QImage viewing the BGR uint8 array's memory (no copy, no colour conversion)."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 (h, w, 3) frame, got {frame.dtype} {frame.shape}")
    if not frame.flags["C_CONTIGUOUS"]:
        frame = np.ascontiguousarray(frame)
    h, w = frame.shape[:2]
    return QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_BGR888)


AREA_MIN = 16  # frame pixels a side: a smaller drag is taken as a slip, not an image area (as --roi)


class VideoView(QWidget):
    """Shows one frame at a time; set_frame() only schedules a repaint, so frames never queue up."""

    resized = pyqtSignal(object)  # paint_area(): the size a frame is scaled into, or None
    area_drawn = pyqtSignal(object)  # (x, y, w, h) in frame pixels dragged by the user, or None: cancelled

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._frame: np.ndarray | None = None  # keeps the memory behind _image alive
        self._display: np.ndarray | None = None  # the frame pre-shrunk for painting, if given
        self._image: QImage | None = None
        self.recording = False
        self.message = "No video"
        self.smooth = True
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._area_mode = False  # the next drag over the video sets the image area (begin_area)
        self.outline: tuple[int, int, int, int] | None = None  # the image area in use, outlined on screen
        self._drag: tuple[QPoint, QPoint] | None = None

    def set_frame(self, frame: np.ndarray | None, display: np.ndarray | None = None) -> None:
        """Show this frame at the next paint (replacing any frame not painted yet).

        `display` is the same frame already shrunk to paint_area() (scale_for_display), painted
        without scaling; `frame` stays what frame() returns (snapshots).
        """
        self._frame = None if frame is None else np.ascontiguousarray(frame)
        self._display = None if self._frame is None or display is None else np.ascontiguousarray(display)
        shown = self._display if self._display is not None else self._frame
        self._image = None if shown is None else bgr_qimage(shown)
        self.update()

    def paint_area(self) -> tuple[int, int] | None:
        """The area (w, h) frames are fitted into, in pixels; None where the screen scales pixels (HiDPI)."""
        if self.devicePixelRatioF() != 1.0:
            return None
        return self.width(), self.height()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self.resized.emit(self.paint_area())

    def frame(self) -> np.ndarray | None:
        """The frame on screen (annotated BGR), or None."""
        return self._frame

    def set_recording(self, on: bool) -> None:
        """Whether a recording runs (the window shows REC beside the readouts, never over the image)."""
        self.recording = on

    def image_rect(self) -> QRect:
        """Where the frame is drawn, in widget coordinates (empty without a frame)."""
        if self._image is None:
            return QRect()
        return fit_rect(self._image.size(), self.rect())

    # ---- the image area, dragged by the user
    def begin_area(self) -> None:
        """Let the next left-button drag over the video give the endoscope's image area (area_drawn);
        a right click, or a drag smaller than AREA_MIN frame pixels a side, cancels (area_drawn(None))."""
        self._area_mode, self._drag = True, None
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.update()

    @property
    def drawing_area(self) -> bool:
        return self._area_mode

    def frame_rect(self, rect: QRect) -> tuple[int, int, int, int] | None:
        """A rectangle in widget coordinates as (x, y, w, h) in frame pixels, clipped to the frame; None without
        a frame or when smaller than AREA_MIN pixels a side."""
        shown = self.image_rect()
        if self._frame is None or shown.isEmpty():
            return None
        fh, fw = self._frame.shape[:2]
        sx, sy = fw / shown.width(), fh / shown.height()
        x0 = min(max(round((rect.left() - shown.left()) * sx), 0), fw)
        y0 = min(max(round((rect.top() - shown.top()) * sy), 0), fh)
        x1 = min(max(round((rect.right() + 1 - shown.left()) * sx), 0), fw)
        y1 = min(max(round((rect.bottom() + 1 - shown.top()) * sy), 0), fh)
        if x1 - x0 < AREA_MIN or y1 - y0 < AREA_MIN:
            return None
        return x0, y0, x1 - x0, y1 - y0

    def widget_rect(self, area: tuple[int, int, int, int]) -> QRect:
        """A rectangle (x, y, w, h) in frame pixels, in widget coordinates (frame_rect's inverse)."""
        shown = self.image_rect()
        if self._frame is None or shown.isEmpty():
            return QRect()
        fh, fw = self._frame.shape[:2]
        sx, sy = shown.width() / fw, shown.height() / fh
        x, y, w, h = area
        return QRect(shown.left() + round(x * sx), shown.top() + round(y * sy), round(w * sx), round(h * sy))

    def set_outline(self, area: tuple[int, int, int, int] | None) -> None:
        """Outline this image area on screen (None: none)."""
        if area != self.outline:
            self.outline = area
            self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if not self._area_mode:
            super().mousePressEvent(event)
        elif event.button() == Qt.MouseButton.LeftButton:
            point = event.position().toPoint()
            self._drag = (point, point)
            self.update()
        else:
            self._end_area(None)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if self._drag is None:
            super().mouseMoveEvent(event)
            return
        self._drag = (self._drag[0], event.position().toPoint())
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if self._drag is None or event.button() != Qt.MouseButton.LeftButton:
            super().mouseReleaseEvent(event)
            return
        start = self._drag[0]
        self._end_area(self.frame_rect(QRect(start, event.position().toPoint()).normalized()))

    def _end_area(self, area: tuple[int, int, int, int] | None) -> None:
        self._area_mode, self._drag = False, None
        self.unsetCursor()
        self.update()
        self.area_drawn.emit(area)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(960, 540)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        if self._image is None:
            self._paint_message(painter)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
            painter.drawImage(QRectF(self.image_rect()), self._image)
        if self.outline is not None and self._image is not None:  # on screen only, like the drag below
            painter.setPen(QPen(QColor(255, 220, 0), 2, Qt.PenStyle.DotLine))
            painter.drawRect(self.widget_rect(self.outline))
        if self._area_mode:  # on screen only, never in the frame (recordings and snapshots stay clean)
            self._paint_area_hint(painter)
        painter.end()

    def _paint_area_hint(self, painter: QPainter) -> None:
        painter.setPen(QPen(QColor(255, 220, 0), 2, Qt.PenStyle.DashLine))
        if self._drag is not None:
            painter.drawRect(QRect(*self._drag).normalized())
        painter.drawText(self.rect().adjusted(0, 8, 0, 0), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                         "Drag over the endoscope's image (right-click: cancel)")

    def _paint_message(self, painter: QPainter) -> None:
        painter.setPen(QColor(160, 160, 160))
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
