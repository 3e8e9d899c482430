"""What the window remembers between sessions: model, overlay, HUD, the alert sound, window geometry, folders, recent files,
the last capture device. Stored with QSettings (the platform's own place: ~/.config/polypview/polypview.conf
on Linux, the registry on Windows); `POLYPVIEW_SETTINGS=FILE.ini` puts them in a file instead.

The command line wins over what is remembered; a window built without Preferences (tests, the bench's
probe) remembers nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings

RECENT_MAX = 10
# The region peak is not remembered: it belongs to the model (its file's own, else the app's), set on each load.
OVERLAY_FIELDS = {"enabled": bool, "style": str, "opacity": float, "threshold": float, "min_area": float,
                  "legend": bool, "one_class_per_region": bool, "name_tags": bool, "class_confidence": float}


class Preferences:
    """Typed access to a QSettings store (None: an in-memory store that is never written)."""

    def __init__(self, store: QSettings | None = None):
        self.store = store
        self._memory: dict[str, object] = {}

    @classmethod
    def for_user(cls) -> Preferences:
        path = os.environ.get("POLYPVIEW_SETTINGS")
        if path:
            return cls.from_file(path)
        return cls(QSettings("polypview", "polypview"))

    @classmethod
    def from_file(cls, path: str | Path) -> Preferences:
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    # ---- raw access
    def get(self, key: str, kind: type, default=None):
        if self.store is None:
            return self._memory.get(key, default)
        if not self.store.contains(key):
            return default
        value = self.store.value(key)
        try:
            if kind is bool:
                return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
            if kind is list:
                return [str(v) for v in value] if isinstance(value, (list, tuple)) else ([str(value)] if value else [])
            return kind(value)
        except (TypeError, ValueError):  # a hand-edited file: fall back to the default
            return default

    def set(self, key: str, value) -> None:
        if self.store is None:
            self._memory[key] = value
            return
        self.store.setValue(key, value)

    def sync(self) -> None:
        if self.store is not None:
            self.store.sync()

    # ---- what the window keeps
    def overlay(self) -> dict:
        """Remembered OverlaySettings fields (only those ever saved)."""
        values = {name: self.get(f"overlay/{name}", kind) for name, kind in OVERLAY_FIELDS.items()}
        return {k: v for k, v in values.items() if v is not None}

    def save_overlay(self, settings) -> None:
        for name in OVERLAY_FIELDS:
            self.set(f"overlay/{name}", getattr(settings, name))

    @property
    def model(self) -> str | None:
        return self.get("model", str)

    @model.setter
    def model(self, value: str | None) -> None:
        self.set("model", value or "")

    @property
    def hud(self) -> bool:
        return self.get("hud", bool, True)

    @hud.setter
    def hud(self, on: bool) -> None:
        self.set("hud", bool(on))

    @property
    def alert_sound(self) -> bool:
        return self.get("alert_sound", bool, False)

    @alert_sound.setter
    def alert_sound(self, on: bool) -> None:
        self.set("alert_sound", bool(on))

    def geometry(self) -> QByteArray | None:
        value = self.get("window/geometry", QByteArray)
        return value if value else None

    def save_geometry(self, geometry: QByteArray) -> None:
        self.set("window/geometry", geometry)

    def folder(self, kind: str) -> str | None:
        """The last folder used for `kind` (videos, models, recordings)."""
        return self.get(f"folders/{kind}", str)

    def set_folder(self, kind: str, folder: str | Path) -> None:
        self.set(f"folders/{kind}", str(folder))

    def recent(self) -> list[str]:
        return self.get("recent", list, [])

    def add_recent(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        self.set("recent", [path] + [p for p in self.recent() if p != path][: RECENT_MAX - 1])

    @property
    def device(self) -> dict | None:
        """The last capture device and its format: {"device", "size", "fps", "fourcc"}."""
        device = self.get("device/spec", str)
        if not device:
            return None
        return {"device": device, "size": self.get("device/size", str) or None,
                "fps": self.get("device/fps", float), "fourcc": self.get("device/fourcc", str) or None}

    @device.setter
    def device(self, value: dict) -> None:
        self.set("device/spec", str(value["device"]))
        self.set("device/size", value.get("size") or "")
        if value.get("fps"):
            self.set("device/fps", float(value["fps"]))
        self.set("device/fourcc", value.get("fourcc") or "")
