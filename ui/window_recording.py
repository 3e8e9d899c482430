"""The window's recording controls: start and stop, the REC indicator, file names, snapshots, the folder.

A mixin of MainWindow (it uses the window's widgets, actions, preferences and session).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from polypview.errors import OutputError, PolypviewError
from polypview.session import timestamp
from polypview.ui import dialogs

log = logging.getLogger("polypview.window")


class RecordingMixin:
    """Record (R), the REC indicator with its elapsed time, snapshots (S) and the recordings folder."""

    # ---- recording and snapshots
    def toggle_recording(self) -> None:
        """Start recording to a timestamped file in the recordings folder, or stop."""
        self._set_recording(not self.session.recording)

    def _set_recording(self, on: bool) -> None:
        if self.pipeline is None:
            on = False
        elif on and not self.session.recording:
            on = self._start_recording(self.new_recording_path())
        elif not on and self.session.recording:
            self._stop_recording()
        self._show_recording(on)

    def _show_recording(self, on: bool) -> None:
        if on and not self.view.recording:
            self.recording_started = time.monotonic()
        self.record_action.setChecked(on)
        self.record_action.setText("Stop recording" if on else "Record")
        self.view.set_recording(on)
        self.rec_label.setVisible(on)
        self._show_elapsed()

    def _show_elapsed(self) -> None:
        if self.view.recording:
            seconds = int(time.monotonic() - self.recording_started)
            self.rec_label.setText(f"● REC {seconds // 60}:{seconds % 60:02d}")

    def new_recording_path(self) -> Path:
        """recordings/polypview-YYYYmmdd-HHMMSS.mp4 (a counter avoids overwriting)."""
        return self.session.new_recording_path(self.recordings_dir)

    def _start_recording(self, path: Path) -> bool:
        try:
            self.session.start_recording(path)
        except OSError as exc:
            message = (str(exc) if isinstance(exc, PolypviewError) else
                       f"cannot record to {path}: {exc.strerror or exc}; choose another folder "
                       "(File → Recordings folder)")
            self.show_error(message)
            return False
        self.statusBar().showMessage(f"Recording to {path}", 0)
        log.info("recording to %s", path)
        return True

    def _stop_recording(self) -> None:
        try:
            report = self.session.stop_recording()
        except PolypviewError as exc:
            self.show_error(str(exc))
            return
        path = report.path if report else self.recording_path
        log.info("recording stopped: %s%s", path, f" ({report.error})" if report is not None and report.error else "")
        if report is not None and report.error:  # the error itself came as a dialog when it happened
            self.statusBar().showMessage(f"Recording stopped early; what was written is in {path}", 0)
        else:
            self.statusBar().showMessage(f"Saved {path}", 8000)

    def snapshot(self) -> Path | None:
        """Save the annotated frame on screen as a PNG in the recordings folder."""
        frame = self.view.frame()
        if frame is None:
            return None
        path = self.recordings_dir / f"snapshot-{timestamp()}-{int(time.time() * 1000) % 1000:03d}.png"
        try:
            save_png(frame, path)
        except OutputError as exc:
            self.show_error(str(exc))
            return None
        self.statusBar().showMessage(f"Snapshot saved to {path}", 5000)
        return path


    def choose_recordings_folder(self) -> None:
        """Ask where recordings and snapshots go (remembered)."""
        folder = dialogs.ask_folder(self, "Recordings folder", str(self.recordings_dir))
        if folder:
            self.prefs.set_folder("recordings", folder)
            self.options.recordings_dir = Path(folder)
            self.statusBar().showMessage(f"Recordings go to {folder}", 5000)

    @property
    def recordings_dir(self) -> Path:
        """The command line's folder, else the remembered one, else ./recordings."""
        remembered = self.prefs.folder("recordings")
        return self.options.recordings_dir or (Path(remembered) if remembered else Path.cwd() / "recordings")


def save_png(frame, path: Path) -> None:
    """Write a BGR frame as PNG; OutputError when the folder cannot be written."""
    import cv2

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), frame)
    except (OSError, cv2.error) as exc:
        raise OutputError(f"cannot write {path}: {exc}; choose a writable folder") from None
    if not ok:
        raise OutputError(f"cannot write {path}: check that the folder exists, is writable and has space")
