"""The page shown when no input was given: Open file / Open device / Demo, or drop a video file."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

TITLE_STYLE = "QLabel { font-size: 22px; font-weight: bold; }"
HINT_STYLE = "QLabel { color: #888; }"


class StartPage(QWidget):
    """Three big choices; the window handles the dropped files (drops work on every page)."""

    open_file = pyqtSignal()
    open_device = pyqtSignal()
    open_demo = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        title = QLabel("polypview")
        title.setStyleSheet(TITLE_STYLE)
        hint = QLabel("Open a recorded procedure, a capture card, or the demo clip — or drop a video file here.")
        hint.setStyleSheet(HINT_STYLE)
        hint.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.file_button = self._button("Open file…", self.open_file, buttons)
        self.device_button = self._button("Open device…", self.open_device, buttons)
        self.demo_button = self._button("Demo", self.open_demo, buttons)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        for widget in (title, hint):
            widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(widget)
        layout.addLayout(buttons)
        layout.addStretch(1)

    @staticmethod
    def _button(text: str, signal, layout: QHBoxLayout) -> QPushButton:
        button = QPushButton(text)
        button.setFixedSize(200, 72)
        button.clicked.connect(signal.emit)
        layout.addWidget(button)
        return button
