"""`run_gui(args)`: the viewer's entry point when `--headless` is not given (called by app/run.py)."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from polypview import __version__
from polypview.logfile import start_log_file
from polypview.settings import Settings
from polypview.ui import dialogs
from polypview.ui.main_window import MainWindow
from polypview.ui.preferences import Preferences

SCREENSHOT_FRAMES = 45  # frames to play before the grab, so the HUD's rates have settled
SCREENSHOT_TIMEOUT_S = 20.0


def application() -> QApplication:
    """The process's QApplication (created once)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("polypview")
    return app


def build_window(options: Settings, services: Any = None, prefs: Preferences | None = None) -> MainWindow:
    """A started window (input opening, model loading on a worker thread)."""
    window = MainWindow(options, services, prefs)
    window.show()
    if options.fullscreen:
        window.toggle_fullscreen()
    window.start()
    return window


class ScreenshotTaker:
    """Grabs the window once it has shown enough frames with a mask (or at a timeout), then closes it."""

    def __init__(self, window: MainWindow, path: Path, frames: int, timeout_s: float = SCREENSHOT_TIMEOUT_S):
        self.window, self.path, self.frames = window, Path(path), frames
        self.saved = False
        self.ok = False
        self._timer = QTimer(window)
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._poll)
        self._timer.start()
        QTimer.singleShot(int(timeout_s * 1000), self.grab)

    def ready(self) -> bool:
        """Enough frames played, and the newest one carries a fresh mask."""
        p, bridge = self.window.last_presented, self.window.bridge
        if p is None or bridge is None or bridge.presented < self.frames:
            return False
        return p.overlay_seq is not None and not p.stale

    def _poll(self) -> None:
        if self.ready() or self.window.finished:
            self.grab()

    def grab(self) -> None:
        """Refresh the HUD, save the window as PNG, close the window."""
        if self.saved:
            return
        self.saved = True
        self._timer.stop()
        self.window.refresh_hud()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ok = self.window.grab().save(str(self.path))
        if not self.ok:
            dialogs.show_error(self.window, f"cannot write the screenshot {self.path}: check the folder")
        self.window.close()


def install_excepthook(window: MainWindow) -> None:
    """An unexpected exception in a slot becomes a dialog (PyQt6 would otherwise abort the process); its traceback
    goes to the console and the log file, for the bug report, not to the user."""

    def hook(kind, value, tb) -> None:
        traceback.print_exception(kind, value, tb, file=sys.stderr)
        if window.log_file:
            logging.getLogger("polypview.window").error("unexpected error", exc_info=(kind, value, tb))
        where = f"details in {window.log_file}" if window.log_file else "details on the console"
        dialogs.show_error(window, f"unexpected error: {value or kind.__name__} ({where})")

    sys.excepthook = hook


def run_gui(options: Settings, services: Any = None) -> int:
    """Open the window with the command line's settings; the exit code when it closes (1: no screenshot)."""
    app = application()
    log_file = start_log_file()
    logging.getLogger("polypview.window").info("polypview %s started: %s", __version__, " ".join(sys.argv[1:]))
    window = build_window(options, services, Preferences.for_user())
    window.log_file = log_file
    install_excepthook(window)
    taker = None  # kept referenced while the event loop runs
    if options.screenshot:
        taker = ScreenshotTaker(window, options.screenshot, options.frames or SCREENSHOT_FRAMES)
    app.exec()
    window.shutdown()
    return 1 if taker is not None and not taker.ok else 0
