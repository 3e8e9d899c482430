"""Every dialog the window opens goes through these functions, so tests can replace them."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QFileDialog, QMessageBox, QWidget

VIDEO_FILTER = "Videos (*.mp4 *.mkv *.avi *.mov *.webm *.mpg *.mpeg *.ts *.m4v *.wmv);;All files (*)"
MODEL_FILTER = "ONNX model files (*.onnx);;All files (*)"


def show_error(parent: QWidget | None, message: str, title: str = "polypview") -> None:
    """Show one error to the user (the single route for errors in the GUI: never a traceback)."""
    QMessageBox.critical(parent, title, message)


def show_info(parent: QWidget | None, title: str, text: str) -> None:
    """An information box (About, the list of shortcuts)."""
    QMessageBox.information(parent, title, text)


def ask_yes_no(parent: QWidget | None, title: str, question: str) -> bool:
    """A question with Yes / No (No is the default answer)."""
    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    answer = QMessageBox.question(parent, title, question, buttons, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_video_file(parent: QWidget | None, folder: str | None = None) -> str | None:
    """Ask for a video file (starting in `folder`); None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Open video file", folder or str(Path.cwd()), VIDEO_FILTER)
    return path or None


def ask_model_file(parent: QWidget | None, folder: str | None = None) -> str | None:
    """Ask for an ONNX model file; None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Open model file", folder or str(Path.cwd()), MODEL_FILTER)
    return path or None


def ask_folder(parent: QWidget | None, title: str, folder: str | None = None) -> str | None:
    """Ask for a folder; None when cancelled."""
    path = QFileDialog.getExistingDirectory(parent, title, folder or str(Path.cwd()))
    return path or None


def ask_device(parent: QWidget | None, devices: list, last: dict | None = None) -> dict | None:
    """Ask for a capture device and format (see device_dialog.py); None when cancelled."""
    from polypview.ui.device_dialog import DeviceDialog

    dialog = DeviceDialog(parent, devices, last)
    return dialog.choice() if dialog.exec() == DeviceDialog.DialogCode.Accepted else None
