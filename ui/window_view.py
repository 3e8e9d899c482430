"""The window's readouts and screen modes: the HUD strip and the slow-model banner, full screen.

A mixin of MainWindow (it uses the window's widgets, actions and session).
"""

from __future__ import annotations

from typing import Any

SPEED_WINDOW = 12  # HUD refreshes (3 s) over which the share of frames with a mask is judged
SPEED_MIN_FRAMES = 20
SLOW_SHARE = 0.5  # fewer masked frames than this: the model is too slow for the machine


class ViewMixin:
    """HUD refresh, the too-slow-model check, the HUD toggle and full screen."""

    # ---- HUD
    def refresh_hud(self) -> None:
        """Show the pipeline's current Stats (called by the HUD timer)."""
        if self.pipeline is None:
            return
        stats = self.pipeline.stats()
        self.show_area_outline()
        self.hud.show_stats(stats, self.bridge.superseded if self.bridge else 0, self._stale,
                            masks_off=not self.overlay.enabled)
        self._check_speed(stats)
        self._show_elapsed()
        if self.record_action.isChecked() and not self.session.recording:
            self._stop_recording()  # the recorder gave up (disk full...): finalise what it wrote
            self._show_recording(False)

    def _check_speed(self, stats: Any) -> None:
        """Say plainly when the model is too slow for this machine to mask most frames.

        With masks switched off no frame gets one: that says nothing about the model's speed, so the
        check starts over when they come back."""
        if not self.overlay.enabled:
            self._mask_samples = []
            self.banner.hide()
            return
        self._mask_samples = (self._mask_samples + [(stats.frames_shown, stats.masks_shown)])[-SPEED_WINDOW:]
        (f0, m0), (f1, m1) = self._mask_samples[0], self._mask_samples[-1]
        if self.engine is None or self.finished or self.session.paused or f1 - f0 < SPEED_MIN_FRAMES:
            return
        share = (m1 - m0) / (f1 - f0)
        if share < SLOW_SHARE:
            fast = self._faster_model()
            self.banner.warn(self.engine.name, share, stats.inference_ms, fast)
        elif share > SLOW_SHARE + 0.25:
            self.banner.hide()

    def _faster_model(self) -> str | None:
        """The shipped real-time default, when it is not the model already running."""
        from polypview.inference.runtime.engine import DEFAULT_MODEL

        return self.session.faster_model(DEFAULT_MODEL)

    def toggle_hud(self) -> None:
        """Show or hide the readouts strip below the video (remembered)."""
        self.hud.setVisible(self.hud_action.isChecked())
        self.prefs.hud = self.hud_action.isChecked()

    # ---- full screen
    def toggle_fullscreen(self) -> None:
        """Video and HUD only, over the whole screen; F or Esc leaves."""
        if self.isFullScreen():
            self.leave_fullscreen()
            return
        self.panel.hide()
        self.transport.hide()
        self.statusBar().hide()
        self.menuBar().hide()
        self.fullscreen_action.setChecked(True)
        self.showFullScreen()
        if self.screen() is not None and self.size() != self.screen().size():
            self.setGeometry(self.screen().geometry())  # no window manager (a kiosk X server) to do it

    def leave_fullscreen(self) -> None:
        """Back to the normal window (Esc never closes the window: too easy to hit mid-procedure)."""
        self.panel.show()
        self.transport.show()
        self.statusBar().show()
        self.menuBar().show()
        self.fullscreen_action.setChecked(False)
        if self.isFullScreen():
            self.showNormal()
