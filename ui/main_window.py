"""The main window: wires the session (app/session.py: input, pipeline, engine) to the view, the HUD and the controls.

The window only wires and paints; what plays and with which engine is the Qt-free session's, the
recording controls are in window_recording.py and the HUD and full screen in window_view.py
(mixins of this class). Frames arrive through a SinkBridge (one-slot mailbox, newest
frame wins), engines load on a worker thread and are handed to the running pipeline with
`set_engine`, the HUD reads `pipeline.stats()` from a timer. Every error goes to
`dialogs.show_error`.

The actions, menus and shortcuts are listed in menus.py (F1 shows them); Esc leaves full screen and
never closes the window (too easy to hit mid-procedure). What the window remembers between sessions
lives in preferences.py; the command line wins over it.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QTimer
from PyQt6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QResizeEvent
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from polypview import __version__
from polypview.errors import PolypviewError
from polypview.overlay import UNSURE_NAME, UNSURE_RGB
from polypview.protocols import Source
from polypview.session import CoreServices, Session
from polypview.settings import Settings, source_spec
from polypview.ui import dialogs
from polypview.ui.bridge import BackgroundCall, SinkBridge
from polypview.ui.controls import NO_MODEL, OPEN_MODEL_ITEM, ControlPanel, SlowModelBanner, TransportBar
from polypview.ui.hud import HudWidget, hud_font_px
from polypview.ui.menus import about_text, build_actions, build_menus, shortcuts_text
from polypview.ui.preferences import Preferences
from polypview.ui.start_page import StartPage
from polypview.ui.video_view import VideoView
from polypview.ui.window_alert import AlertMixin
from polypview.ui.window_area import AreaMixin
from polypview.ui.window_recording import RecordingMixin, save_png
from polypview.ui.window_view import ViewMixin

__all__ = ["CoreServices", "MainWindow", "Settings", "save_png", "source_duration", "source_spec"]

log = logging.getLogger("polypview.window")

HUD_INTERVAL_MS = 250  # the HUD refreshes 4 times a second, never per frame
SEEK_STEP_S = 5.0
REC_STYLE = "QLabel { background-color: #161616; color: #ff4040; font-weight: bold; padding: 4px 8px; }"


class MainWindow(RecordingMixin, ViewMixin, AreaMixin, AlertMixin, QMainWindow):
    """The polypview window."""

    def __init__(self, options: Settings | None = None, services: Any = None, prefs: Preferences | None = None):
        super().__init__()
        self.options = options or Settings()
        self.session = Session(self.options, services or CoreServices())  # what plays, without Qt
        self.services = self.session.services
        self.prefs = prefs or Preferences()  # without a store: remembers nothing (tests, probes)
        self.bridge: SinkBridge | None = None
        self._mask_samples: list[tuple[int, int]] = []  # (frames shown, masks shown) at recent HUD refreshes
        self._stale = False
        self.last_presented = None
        self._errors_shown: set[str] = set()  # messages whose dialog is open right now
        self._errors_reported: set[int] = set()  # pipeline errors already shown (ids; the summary repeats them)
        self.overlay = self.services.overlay_settings(**{**self.prefs.overlay(), **self.options.overlay})
        self.recording_started = 0.0  # time.monotonic() when the running recording began
        self.alerts_sounded = 0  # alert tones started (View > Sound when a polyp appears)
        self.log_file: Path | None = None  # where run_gui keeps the log (None: not kept)
        self.loader = BackgroundCall(self)
        self.loader.done.connect(self._engine_loaded)
        self.loader.failed.connect(self._engine_failed)
        self.checker = BackgroundCall(self)  # Help > System check, off the GUI thread
        self.checker.done.connect(self._check_done)
        self.checker.failed.connect(lambda tag, exc: self.show_error(f"the system check failed: {exc}"))
        self.setWindowTitle("polypview")
        self.setAcceptDrops(True)
        self._build_actions()
        self._build_pages()
        self._restore_window()
        if self.options.alert_sound or self.prefs.alert_sound:
            self.set_sound(True, remember=not self.options.alert_sound)
        self.hud_timer = QTimer(self)
        self.hud_timer.setInterval(HUD_INTERVAL_MS)
        self.hud_timer.timeout.connect(self.refresh_hud)

    # ---- the session's state, read by the widgets (and the tests)
    @property
    def pipeline(self):
        return self.session.pipeline

    @property
    def source(self):
        return self.session.source

    @property
    def engine(self):
        return self.session.engine

    @property
    def finished(self) -> bool:
        return self.session.finished

    @property
    def recording_path(self) -> Path | None:
        return self.session.recording_path

    @property
    def last_recording(self):
        return self.session.last_recording

    # ---- construction
    def _build_actions(self) -> None:
        self.actions = build_actions(self)
        a = self.actions
        self.play_action, self.record_action, self.snapshot_action = a["play"], a["record"], a["snapshot"]
        self.open_action, self.fullscreen_action, self.escape_action = a["open"], a["fullscreen"], a["escape"]
        self.hud_action, self.masks_action, self.names_action = a["hud"], a["masks"], a["names"]
        self.hud_action.setChecked(self.prefs.hud)
        self.masks_action.setChecked(self.overlay.enabled)
        self.names_action.setChecked(self.overlay.name_tags)
        self.recent_menu = build_menus(self, self.actions)
        self._refresh_recent()

    def _build_pages(self) -> None:
        self.start_page = StartPage()
        self.start_page.open_file.connect(self.open_file_dialog)
        self.start_page.open_device.connect(self.open_device_dialog)
        self.start_page.open_demo.connect(lambda: self.open_input("demo"))
        self.view = VideoView()
        self.view.resized.connect(self._view_resized)
        self.view.area_drawn.connect(self._area_drawn)
        self.hud = HudWidget()
        self.hud.setVisible(self.hud_action.isChecked())
        self.rec_label = QLabel()
        self.rec_label.setStyleSheet(REC_STYLE)
        self.rec_label.hide()
        self.banner = SlowModelBanner()
        self.banner.switch.connect(self.load_model)
        self.transport = TransportBar(self.play_action)
        self.transport.seek_requested.connect(self.seek)
        actions = [self.record_action, self.snapshot_action, self.open_action, self.fullscreen_action,
                   self.hud_action]
        self.panel = ControlPanel(actions)
        self.panel.model_chosen.connect(self.choose_model)
        self.panel.overlay_changed.connect(self._overlay_changed)
        self.panel.sound_check.toggled.connect(self.set_sound)
        self.panel.set_overlay_values(**self._overlay_fields())
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_page)
        self.stack.addWidget(self._player_page())
        self.setCentralWidget(self.stack)
        self.resize(1280, 760)

    def _player_page(self) -> QWidget:
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.view, 1)
        strip = QHBoxLayout()  # the readouts: below the image, never over it
        strip.setSpacing(0)
        strip.addWidget(self.rec_label)
        strip.addWidget(self.hud, 1)
        column.addLayout(strip)
        column.addWidget(self.transport)
        page = QWidget()
        row = QHBoxLayout(page)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(left, 1)
        row.addWidget(self.panel)
        return page

    def _restore_window(self) -> None:
        geometry = self.prefs.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        px = hud_font_px(self.height())
        self.hud.set_font_px(px)
        self.rec_label.setStyleSheet(REC_STYLE.replace("}", f" font-size: {px}px; }}"))

    def _overlay_fields(self) -> dict:
        names = ("enabled", "style", "opacity", "threshold", "min_peak", "min_area", "legend",
                 "one_class_per_region", "name_tags", "class_confidence")
        return {name: getattr(self.overlay, name) for name in names}

    # ---- opening inputs
    def start(self) -> None:
        """Open the command line's input (or show the start page) and start loading the model."""
        self.refresh_models()
        model = self.options.model
        self.load_model(model if model is not None else self.session.remembered_model(self.prefs.model))
        if self.options.source is None or not self.open_input(self.options.source):
            self.stack.setCurrentWidget(self.start_page)

    def open_input(self, spec: Any, size=None, fps=None, fourcc=None) -> bool:
        """Play this input (file, device or "demo") in place of the current one; False on error.
        A device opens with `size`, `fps` and `fourcc` when given, else the command line's."""
        self._close_pipeline()
        records_from_start = self.options.record_path is not None
        self.bridge = bridge = SinkBridge(self)
        bridge.paint_area = self.view.paint_area()
        bridge.frame_ready.connect(partial(self._frame_ready, bridge))
        bridge.error.connect(partial(self._pipeline_error, bridge))
        bridge.finished.connect(partial(self._pipeline_finished, bridge))
        bridge.polyp_appeared.connect(partial(self._polyp_appeared, bridge))
        try:
            source = self.session.open(spec, bridge, self.overlay, size, fps, fourcc)
        except PolypviewError as exc:
            bridge.close()
            self.bridge = None
            self.show_error(str(exc))
            return False
        self._arm_alerts()
        self._mask_samples.clear()
        self.statusBar().clearMessage()
        self._show_player(source)
        log.info("input %s (%s)", spec, source.name or "")
        if records_from_start:
            self._show_recording(True)
        self.hud_timer.start()
        self.setWindowTitle(f"polypview — {source.name or spec}")
        if isinstance(spec, str) and spec != "demo" and not spec.startswith("/dev/"):
            self.prefs.add_recent(spec)
            self._refresh_recent()
        return True

    def _show_player(self, source) -> None:
        self.transport.set_duration(source_duration(source))
        self.play_action.setText("Pause")
        self.view.set_frame(None)
        self.view.message = "Starting…"
        self.stack.setCurrentIndex(1)

    def _close_pipeline(self) -> None:
        """Stop the running pipeline (finalising its recording); never hangs."""
        self.hud_timer.stop()
        if self.bridge is not None:
            self.bridge.close()
        self.bridge = None
        for error in self.session.close_input():  # e.g. the recording failed to finalise
            if id(error) not in self._errors_reported:
                self.show_error(str(error))
        self._show_recording(False)

    def open_file_dialog(self) -> None:
        """Ask for a video file (in the folder used last) and play it."""
        path = dialogs.ask_video_file(self, self.prefs.folder("videos"))
        if path:
            self.prefs.set_folder("videos", Path(path).parent)
            self.open_input(path)

    def open_device_dialog(self) -> None:
        """Ask for a capture device and its format (the system's devices listed, the last one first)."""
        try:
            devices = self.services.list_devices()
        except OSError:
            devices = []
        choice = dialogs.ask_device(self, devices, self.prefs.device)
        if choice:
            self.prefs.device = choice
            size = tuple(int(v) for v in choice["size"].split("x")) if choice.get("size") else self.options.size
            self.open_input(source_spec(None, choice["device"], False), size=size,
                            fps=choice.get("fps") or self.options.fps, fourcc=choice.get("fourcc") or self.options.fourcc)

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.prefs.recent():
            self.recent_menu.addAction(path, partial(self.open_input, path))
        self.recent_menu.setEnabled(bool(self.prefs.recent()))

    # ---- drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if _dropped_file(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        path = _dropped_file(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.open_input(path)

    def show_error(self, message: str) -> None:
        """Route an error to the dialog (and the log file); a message already on screen is not stacked again."""
        if message in self._errors_shown:
            return
        log.error("%s", message)
        self._errors_shown.add(message)
        try:
            dialogs.show_error(self, message)
        finally:
            self._errors_shown.discard(message)

    def _view_resized(self, area) -> None:
        if self.bridge is not None:
            self.bridge.paint_area = area

    # ---- pipeline callbacks (GUI thread, through the bridge)
    def _frame_ready(self, bridge: SinkBridge) -> None:
        taken = bridge.take() if bridge is self.bridge else None
        if taken is None:
            return
        presented, display = taken
        self.last_presented = presented
        self._stale = presented.stale
        self.view.set_frame(presented.image, display)
        self.transport.set_position(presented.pts or 0.0)
        if self.options.frames and bridge.presented >= self.options.frames and not self.options.screenshot:
            self.close()

    def _pipeline_error(self, bridge: SinkBridge, error: Exception) -> None:
        if bridge is self.bridge:
            self._errors_reported.add(id(error))
            self.show_error(str(error))

    def _pipeline_finished(self, bridge: SinkBridge, summary: Any) -> None:
        if bridge is not self.bridge:
            return
        self.session.ended()
        self.play_action.setText("Play")
        self.transport.show_end()
        saved = summary.recording if self.view.recording else None
        self._show_recording(False)
        self.refresh_hud()
        if saved:
            self.session.last_recording = saved
        note = f"; recording saved to {saved.path}" if saved else ""
        log.info("end of input: %d frames%s", getattr(summary, "frames", 0), note)
        self.statusBar().showMessage(f"End of input — press Space to play again{note}", 0)

    # ---- transport
    def toggle_play(self) -> None:
        """Pause/resume; after the end of a file, play it again from the start."""
        state = self.session.toggle_play()
        if state is None:
            return
        self.statusBar().clearMessage()
        if state == "replay":
            self.open_input(self.session.spec)
        else:
            self.play_action.setText("Pause" if state == "playing" else "Play")

    def seek(self, seconds: float) -> None:
        """Jump to this position of the file (after the end too: the file is opened again)."""
        if not self.session.seekable:
            return
        if self.finished and not self.open_input(self.session.spec):
            return
        self.statusBar().clearMessage()
        try:
            self.session.seek(seconds)
        except PolypviewError as exc:
            self.show_error(str(exc))

    def position(self) -> float:
        """Seconds into the input of the frame on screen."""
        return float(self.last_presented.pts or 0.0) if self.last_presented is not None else 0.0

    def seek_back(self) -> None:
        self.seek(self.position() - SEEK_STEP_S)

    def seek_forward(self) -> None:
        self.seek(self.position() + SEEK_STEP_S)

    def step_forward(self) -> None:
        """One frame on, when paused (the frame is shown with its own mask)."""
        self._step(+1)

    def step_back(self) -> None:
        self._step(-1)

    def _step(self, frames: int) -> None:
        target = self.session.step_target(self.position(), frames)
        if target is not None:
            self.seek(target)

    # ---- model
    def refresh_models(self) -> None:
        """List the shipped models, the current model file and 'none' in the model box."""
        engine = self.engine
        self.panel.set_models(self.session.shipped_models(), engine.name if engine is not None else NO_MODEL)

    def choose_model(self, choice: str) -> None:
        """Switch to a shipped model, a model file opened before, 'none', or ask for a model file."""
        if choice == OPEN_MODEL_ITEM:
            choice = dialogs.ask_model_file(self, self.prefs.folder("models"))
            if not choice:
                self.refresh_models()
                return
        self.load_model(self.session.models.files.get(choice, choice))

    def load_model(self, model: str | None) -> None:
        """Load an engine on a worker thread; the video keeps playing meanwhile ('none': video only)."""
        request = self.session.request_model(model)
        if request is None:  # 'none': video only, at once
            self.prefs.model = NO_MODEL
            self._engine_changed()
            return
        self.statusBar().showMessage(f"Loading model {model or '(default)'}…", 0)
        self.loader.start(*request)

    def _engine_loaded(self, request: int, engine: Any) -> None:
        remembered = self.session.engine_loaded(request, engine)
        if remembered is None:  # a newer request won, or the window is closing
            return
        self.prefs.model = remembered
        self._engine_changed()
        self.statusBar().showMessage(f"Model {engine.name} on {engine.backend} {engine.provider}", 5000)

    def _engine_changed(self) -> None:
        self._mask_samples.clear()
        self.banner.hide()
        self._show_legend()
        self.refresh_models()
        overlay = self.session.overlay_for_engine(self.overlay)  # the new model's own region peak
        if overlay != self.overlay:
            self.overlay = overlay
            self.panel.set_overlay_values(**self._overlay_fields())
            if self.pipeline is not None:
                self.pipeline.set_overlay(self.overlay)

    def _engine_failed(self, request: int, error: Exception) -> None:
        if not self.session.engine_failed(request):
            return
        self.statusBar().clearMessage()
        self.refresh_models()
        self.show_error(str(error) if isinstance(error, PolypviewError) else f"model failed to load: {error}")

    # ---- overlay
    def _show_legend(self) -> None:
        """The panel's legend: the model's classes, and "class uncertain" in yellow when that is drawn."""
        info = self.engine.info if self.engine is not None else None
        names, colors = (tuple(info.classes), tuple(info.colors)) if info else ((), ())
        if len(names) >= 2 and self.overlay.class_confidence > 0 and self.overlay.one_class_per_region:
            names, colors = names + (UNSURE_NAME,), colors + (UNSURE_RGB,)
        self.panel.legend.set_classes(names, colors)

    def _overlay_changed(self) -> None:
        unsure = (self.overlay.class_confidence, self.overlay.one_class_per_region)
        self.overlay = dataclasses.replace(self.overlay, **self.panel.overlay_values())
        if unsure != (self.overlay.class_confidence, self.overlay.one_class_per_region):
            self._show_legend()
        self.masks_action.setChecked(self.overlay.enabled)
        self.names_action.setChecked(self.overlay.name_tags)
        self.prefs.save_overlay(self.overlay)
        if self.pipeline is not None:
            self.pipeline.set_overlay(self.overlay)

    def toggle_masks(self) -> None:
        """Masks on or off (M), as the panel's "show masks" box."""
        self.panel.overlay_check.setChecked(self.masks_action.isChecked())

    def toggle_names(self) -> None:
        """Class names on the polyps on or off (N), as the panel's "class name on each polyp" box."""
        self.panel.tags_check.setChecked(self.names_action.isChecked())

    def show_shortcuts(self) -> None:
        dialogs.show_info(self, "Keyboard shortcuts", shortcuts_text())

    def system_check(self) -> None:
        """Help > System check: `polypview check`'s findings in a dialog (the window itself is open, so it is not
        tried; the speed is measured beside whatever plays)."""
        from polypview.check import report

        self.statusBar().showMessage("Checking this machine…", 0)
        model = self.session.models.files.get(self.engine.name, self.engine.name) if self.engine is not None else None
        self.checker.start("check", lambda: report(model, frames=10, window=False))

    def _check_done(self, tag: Any, text: str) -> None:
        self.statusBar().clearMessage()
        playing = " (measured while the video plays)" if self.pipeline is not None and not self.finished else ""
        dialogs.show_info(self, "System check", f"{text}\n\nThe window: open.{playing}")

    def show_about(self) -> None:
        engine = self.engine
        dialogs.show_info(self, "About polypview", about_text(__version__, engine.name if engine else None,
                                                               engine.provider if engine else None, self.log_file))

    # ---- closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        if not self.session.closed and self.session.recording and not dialogs.ask_yes_no(
                self, "Recording in progress", "A recording is running. Stop it (the file is kept) and close?"):
            event.ignore()
            return
        if not self.isFullScreen():
            self.prefs.save_geometry(self.saveGeometry())
        self.prefs.sync()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the pipeline (finalising the recording), then close the engines. Idempotent."""
        if self.session.closed:
            return
        self.session.closed = True  # engines that finish loading from now on are only kept to be closed
        self._close_pipeline()
        self.session.shutdown(self.loader.wait)


def source_duration(source: Source) -> float | None:
    """Seconds of a seekable input (None for live or endless inputs: no seek slider)."""
    if not source.seekable:
        return None
    count, fps = source.frame_count, source.fps
    return source.duration or (count / fps if count and fps else None)


def _dropped_file(mime) -> str | None:
    """The first local file of a drag, if any."""
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            return url.toLocalFile()
    return None
