"""The heads-up display (pipeline Stats as text, in a strip below the video) and the class legend."""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from polypview.stats import hud_lines

HUD_STYLE = "QLabel {{ background-color: #161616; color: #e8e8e8; padding: 4px 8px; font-family: monospace;" \
            " font-size: {px}px; }}"
SEPARATOR = "   │   "


def hud_font_px(window_height: int) -> int:
    """The HUD's font size for a window (or screen) this tall: readable from across the room."""
    return max(11, min(28, round(window_height / 55)))


class HudWidget(QLabel):
    """The readouts, in a strip of their own below the video: never drawn over the image, where towers
    burn in patient data. Refreshed by a timer, not per frame."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.set_font_px(11)
        self.show_stats(None)

    def set_font_px(self, px: int) -> None:
        self.setStyleSheet(HUD_STYLE.format(px=px))

    def show_stats(self, stats: Any, gui_superseded: int = 0, stale: bool = False, masks_off: bool = False) -> None:
        """Replace the text with this snapshot."""
        self.setText(SEPARATOR.join(hud_lines(stats, gui_superseded, stale, masks_off)))


class LegendWidget(QWidget):
    """The model's classes with their colour swatches."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.set_classes((), ())

    def set_classes(self, names: tuple[str, ...], colors_rgb: tuple[tuple[int, int, int], ...]) -> None:
        """Show one row per class (or a note when no model is loaded)."""
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget()
            if widget is not None:
                widget.setParent(None)  # gone from the panel now, not at the next event loop
                widget.deleteLater()
        if not names:
            self._layout.addWidget(QLabel("no model loaded"))
        for name, rgb in zip(names, colors_rgb):
            self._layout.addWidget(_legend_row(name, QColor(*rgb)))


def _legend_row(name: str, color: QColor) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    swatch = QLabel()
    swatch.setFixedSize(16, 16)
    swatch.setStyleSheet(f"background-color: {color.name()}; border: 1px solid #444;")
    layout.addWidget(swatch)
    layout.addWidget(QLabel(name), 1)
    return row
