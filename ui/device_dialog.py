"""Open device: the capture devices the system has, with their sizes, rates and pixel formats."""

from __future__ import annotations

from typing import Any

from PyQt6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QWidget

DRIVER_DEFAULT = "driver default"
OTHER = "Other (index or path)…"


class DeviceDialog(QDialog):
    """Pick a listed device and one of its formats, or type a device index or path."""

    def __init__(self, parent: QWidget | None, devices: list[Any], last: dict | None = None):
        super().__init__(parent)
        self.setWindowTitle("Open capture device")
        self.devices = list(devices)
        self.device_combo = QComboBox()
        self.device_combo.addItems([d.label() for d in self.devices] + [OTHER])
        self.other = QLineEdit()
        self.other.setPlaceholderText("0, 1, … or /dev/videoN")
        self.format_combo = QComboBox()
        form = QFormLayout(self)
        if not self.devices:
            form.addRow(QLabel("No capture device was found: plug the capture card in, or type its index."))
        form.addRow("device", self.device_combo)
        form.addRow("index or path", self.other)
        form.addRow("format", self.format_combo)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.device_combo.currentIndexChanged.connect(self._device_changed)
        self._select(last)

    def _select(self, last: dict | None) -> None:
        paths = [d.path for d in self.devices]
        device = str(last["device"]) if last else None
        if device in paths:
            self.device_combo.setCurrentIndex(paths.index(device))
        elif device is not None or not self.devices:
            self.device_combo.setCurrentText(OTHER)
            self.other.setText(device or "0")
        self._device_changed()
        if last and last.get("size"):
            wanted = f"{last.get('fourcc') or ''} {last['size']} @ {last.get('fps') or 0:g} fps".strip()
            index = self.format_combo.findText(wanted)
            if index >= 0:
                self.format_combo.setCurrentIndex(index)

    def _device(self):
        i = self.device_combo.currentIndex()
        return self.devices[i] if 0 <= i < len(self.devices) else None

    def _device_changed(self) -> None:
        device = self._device()
        self.other.setEnabled(device is None)
        self.format_combo.clear()
        self.format_combo.addItem(DRIVER_DEFAULT)
        for fmt in device.formats if device else []:
            self.format_combo.addItem(fmt.label())

    def choice(self) -> dict | None:
        """{"device", "size" ("WxH" or None), "fps", "fourcc"}; None when no device is given."""
        device = self._device()
        spec = device.path if device else self.other.text().strip()
        if not spec:
            return None
        i = self.format_combo.currentIndex() - 1
        fmt = device.formats[i] if device and 0 <= i < len(device.formats) else None
        if fmt is None:
            return {"device": spec, "size": None, "fps": None, "fourcc": None}
        return {"device": spec, "size": f"{fmt.width}x{fmt.height}", "fps": fmt.fps, "fourcc": fmt.fourcc}
