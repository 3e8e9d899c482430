"""The video surface: paints the newest annotated BGR frame, scaled to fit with its aspect ratio."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRect, QRectF, QSize, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

REC_RED = QColor(220, 20, 20)


def fit_rect(image_size: QSize, area: QRect) -> QRect:
    """The largest rectangle with the image's aspect ratio centred in `area`."""
    if image_size.isEmpty() or area.isEmpty():
        return QRect()
    scaled = image_size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = area.x() + (area.width() - scaled.width()) // 2
    y = area.y() + (area.height() - scaled.height()) // 2
    return QRect(x, y, scaled.width(), scaled.height())


def bgr_qimage(frame: np.ndarray) -> QImage:
    """A QImage viewing the BGR uint8 array's memory (no copy, no colour conversion)."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 (h, w, 3) frame, got {frame.dtype} {frame.shape}")
    if not frame.flags["C_CONTIGUOUS"]:
        frame = np.ascontiguousarray(frame)
    h, w = frame.shape[:2]
    return QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_BGR888)


class VideoView(QWidget):
    """Shows one frame at a time; set_frame() only schedules a repaint, so frames never queue up."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._frame: np.ndarray | None = None  # keeps the memory behind _image alive
        self._image: QImage | None = None
        self.recording = False
        self.message = "No video"
        self.smooth = True
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_frame(self, frame: np.ndarray | None) -> None:
        """Show this frame at the next paint (replacing any frame not painted yet)."""
        self._frame = None if frame is None else np.ascontiguousarray(frame)
        self._image = None if self._frame is None else bgr_qimage(self._frame)
        self.update()

    def frame(self) -> np.ndarray | None:
        """The frame on screen (annotated BGR), or None."""
        return self._frame

    def set_recording(self, on: bool) -> None:
        """Show or hide the red REC indicator."""
        self.recording = on
        self.update()

    def image_rect(self) -> QRect:
        """Where the frame is drawn, in widget coordinates (empty without a frame)."""
        if self._image is None:
            return QRect()
        return fit_rect(self._image.size(), self.rect())

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
        if self.recording:
            self._paint_rec(painter)
        painter.end()

    def _paint_message(self, painter: QPainter) -> None:
        painter.setPen(QColor(160, 160, 160))
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)

    def _paint_rec(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        x, y = self.width() - 84, 12
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(x - 8, y - 4, 80, 30, 6, 6)
        painter.setBrush(REC_RED)
        painter.drawEllipse(x, y + 4, 14, 14)
        font = QFont(painter.font())
        font.setBold(True)
        font.setPointSize(12)
        painter.setFont(font)
        painter.setPen(REC_RED)
        painter.drawText(x + 20, y + 18, "REC")
