"""The alert tone when a polyp appears (View > Sound when a polyp appears, key B, --alert-sound).

A mixin of MainWindow. The decision is the Qt-free `AlertGate` (app/alerts.py), fed every presented frame on
the pipeline's thread by the SinkBridge; the bridge's `polyp_appeared` signal reaches this mixin on the GUI
thread, which starts the tone and returns (the tone never holds up a frame). Off by default; remembered.
"""

from __future__ import annotations

from polypview.alerts import AlertGate


class AlertMixin:
    """The sound toggle (menu action and panel box kept in step) and the tone."""

    sound = None  # the AlertSound, made on first use (a test may set its own)

    def toggle_sound(self) -> None:
        """Sound on or off, from the menu action or key B."""
        self.set_sound(self.actions["sound"].isChecked())

    def set_sound(self, on: bool, remember: bool = True) -> None:
        """Sound a tone when a polyp appears (`on`), or stop; the action and the panel's box follow, and the
        preference unless `remember` is False (the command line's --alert-sound is not remembered)."""
        self.actions["sound"].setChecked(on)
        box = self.panel.sound_check
        box.blockSignals(True)
        box.setChecked(on)
        box.blockSignals(False)
        if remember:
            self.prefs.alert_sound = on
            self.statusBar().showMessage("Sound on: a tone when a polyp appears (B turns it off)" if on else
                                         "Sound off", 5000)
        self._arm_alerts()

    def _arm_alerts(self) -> None:
        """Give the running input's bridge a fresh gate when the sound is on (none when off)."""
        if self.bridge is not None:
            self.bridge.alerts = AlertGate() if self.actions["sound"].isChecked() else None

    def _polyp_appeared(self, bridge, seconds: float) -> None:
        if bridge is not self.bridge or not self.actions["sound"].isChecked():
            return
        if self.sound is None:  # made on first use: the sound system starts only if a tone is needed
            from polypview.ui.alert_sound import AlertSound

            self.sound = AlertSound(self)
            self.sound.fell_back.connect(self._sound_fell_back)
        self.sound.play()
        self.alerts_sounded += 1

    def _sound_fell_back(self, why: str) -> None:
        """Said once: the tone cannot play here, the system bell rings instead."""
        self.statusBar().showMessage(f"Alert sound: the system bell instead of the tone ({why})", 10000)
