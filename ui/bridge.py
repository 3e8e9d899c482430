"""Pipeline threads -> GUI thread: the Sink callbacks become Qt signals; workers never touch widgets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

from polypview.alerts import AlertGate
from polypview.ui.video_view import scale_for_display


class SinkBridge(QObject):
    """A pipeline Sink whose callbacks are re-emitted as signals delivered on the GUI thread.

    Frames go through a one-slot mailbox: the newest frame replaces an unpainted older one
    (counted in `superseded`), so a busy GUI thread never builds up a queue of frames. When the
    GUI sets `paint_area`, each frame is also shrunk to its painted size here, on the pipeline's
    thread, so painting it is a plain copy on the GUI thread.
    """

    frame_ready = pyqtSignal()  # the mailbox holds a frame: call take()
    polyp_appeared = pyqtSignal(float)  # a polyp appearance begins on the frame at this time (s): `alerts`
    error = pyqtSignal(object)  # PolypviewError
    finished = pyqtSignal(object)  # Summary

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._latest = None
        self._taken_seq = None  # seq of the frame the GUI thread took last
        self._pending = False
        self._closed = False
        self.presented = 0  # frames the pipeline presented (counted on its thread)
        self.paint_area: tuple[int, int] | None = None  # set by the GUI thread (VideoView.paint_area)
        self.superseded = 0  # presented frames replaced before the GUI painted them
        self.alerts: AlertGate | None = None  # set by the GUI thread: every presented frame is fed to it

    # Sink protocol (pipeline threads)
    def on_frame(self, presented: Any) -> None:
        """Store the newest frame; wake the GUI thread only if it is not already due to look."""
        display = scale_for_display(presented.image, self.paint_area) if not self._closed else None
        with self._lock:
            if self._closed:
                return
            if not presented.reshown:
                self.presented += 1  # a frame shown again with its own mask is the same frame
            old = self._latest[0].seq if self._latest is not None else None
            if old is not None and old != presented.seq and old != self._taken_seq:
                self.superseded += 1  # a frame never painted (not: a re-show of one already painted)
            self._latest = (presented, display)
            notify, self._pending = not self._pending, True
        if notify:
            self._emit(self.frame_ready)
        alerts = self.alerts
        if alerts is not None and alerts.update(float(presented.pts or 0.0), bool(presented.marked)):
            self._emit(self.polyp_appeared, float(presented.pts or 0.0))

    def on_error(self, error: Exception) -> None:
        """Forward an error to the GUI thread."""
        if not self._closed:
            self._emit(self.error, error)

    def on_finished(self, summary: Any) -> None:
        """Forward the end of the run to the GUI thread."""
        if not self._closed:
            self._emit(self.finished, summary)

    # GUI thread
    def take(self) -> tuple[Any, Any] | None:
        """(newest unpainted frame, its image shrunk for painting or None), or None; empties the mailbox."""
        with self._lock:
            latest, self._latest, self._pending = self._latest, None, False
            if latest is not None:
                self._taken_seq = latest[0].seq
        return latest

    def close(self) -> None:
        """Ignore every later callback (the window is going away)."""
        with self._lock:
            self._closed = True
            self._latest = None

    def _emit(self, signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the QObject was deleted while a worker was still reporting
            pass


class BackgroundCall(QObject):
    """Run one slow call (e.g. loading an engine) on a worker thread; report through signals."""

    done = pyqtSignal(object, object)  # (tag, result)
    failed = pyqtSignal(object, object)  # (tag, exception)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._threads: list[threading.Thread] = []

    def start(self, tag: Any, fn: Callable[[], Any]) -> None:
        """Call fn() on a daemon thread; emit done(tag, result) or failed(tag, exc)."""
        thread = threading.Thread(target=self._run, args=(tag, fn), name=f"polypview-{tag}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self, timeout: float) -> bool:
        """Join the running calls; True when none is left."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _run(self, tag: Any, fn: Callable[[], Any]) -> None:
        try:
            result = fn()
        except Exception as exc:  # reported to the GUI as a dialog, never a traceback
            self._emit(self.failed, tag, exc)
        else:
            if not self._emit(self.done, tag, result) and hasattr(result, "close"):
                result.close()  # nobody is left to receive it

    def _emit(self, signal, *args) -> bool:
        try:
            signal.emit(*args)
        except RuntimeError:
            return False
        return True
