"""Every dialog the window opens goes through these functions, so tests can replace them."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

VIDEO_FILTER = "Videos (*.mp4 *.mkv *.avi *.mov *.webm *.mpg *.mpeg *.ts *.m4v *.wmv);;All files (*)"
MODEL_FILTER = "ONNX model files (*.onnx);;All files (*)"


def show_error(parent: QWidget | None, message: str, title: str = "polypview") -> None:
    """Show one error to the user (the single route for errors in the GUI: never a traceback)."""
    QMessageBox.critical(parent, title, message)


def ask_video_file(parent: QWidget | None) -> str | None:
    """Ask for a video file; None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Open video file", str(Path.cwd()), VIDEO_FILTER)
    return path or None


def ask_model_file(parent: QWidget | None) -> str | None:
    """Ask for an ONNX model file; None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Open model file", str(Path.cwd()), MODEL_FILTER)
    return path or None


def ask_device(parent: QWidget | None) -> str | None:
    """Ask for a capture device (index or /dev/videoN); None when cancelled."""
    prompt = "Device index or path (e.g. 0 or /dev/video0):"
    text, ok = QInputDialog.getText(parent, "Open capture device", prompt, text="0")
    text = text.strip()
    return text if ok and text else None
