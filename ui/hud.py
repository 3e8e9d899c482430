"""The heads-up display: pipeline Stats as a few lines of text, refreshed by a timer (not per frame)."""

from __future__ import annotations

import math
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

HUD_STYLE = (
    "QLabel { background-color: rgba(0, 0, 0, 150); color: #e8e8e8; padding: 6px;"
    " border-radius: 6px; font-family: monospace; font-size: 11px; }"
)


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    """A number for the HUD; '–' for missing or not-a-number values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fmt.format(value)


def format_drops(drops: dict[str, int] | None, gui_superseded: int = 0) -> str:
    """'total (stage n, ...)' with the GUI's own unpainted frames as the 'gui' stage."""
    counts = {k: int(v) for k, v in (drops or {}).items() if v}
    if gui_superseded:
        counts["gui"] = gui_superseded
    if not counts:
        return "0"
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return f"{sum(counts.values())} ({detail})"


def hud_lines(stats: Any, gui_superseded: int = 0, stale: bool = False) -> list[str]:
    """The HUD text for one Stats snapshot (pure: testable without Qt widgets)."""
    if stats is None:
        return ["waiting for video…"]
    engine = f"{stats.model or 'no model'} · {stats.backend or '–'} {stats.provider or ''}".rstrip()
    lines = [
        f"display   {_num(stats.display_fps)} fps",
        f"inference {_num(stats.inference_fps)} fps  {_num(stats.inference_ms)} ms",
        f"delay     p50 {_num(stats.annotation_delay_p50_ms, '{:.0f}')} ms"
        f"  p95 {_num(stats.annotation_delay_p95_ms, '{:.0f}')} ms",
        f"dropped   {format_drops(stats.drops, gui_superseded)}",
        engine,
    ]
    if getattr(stats, "decode_errors", 0):
        lines.append(f"skipped   {stats.decode_errors} bad packets")
    if stale:
        lines.append("overlay   none (mask too old)")
    return lines


class HudWidget(QLabel):
    """A translucent text panel laid over the video's top-left corner."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setStyleSheet(HUD_STYLE)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.show_stats(None)

    def show_stats(self, stats: Any, gui_superseded: int = 0, stale: bool = False) -> None:
        """Replace the text with this snapshot."""
        self.setText("\n".join(hud_lines(stats, gui_superseded, stale)))
        self.adjustSize()


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
