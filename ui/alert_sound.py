"""The alert tone: a short two-note chime, played when a polyp appears (View > Sound when a polyp appears).

The tone is made here (a WAV of 0.25 s, written once to the user's cache folder) and played with
QtMultimedia's QSoundEffect, which starts it at once and never blocks. QtMultimedia needs the
system's sound libraries (PulseAudio's client library on Linux): where it cannot load, or the tone
cannot be written or played, the window falls back to the system bell (`QApplication.beep`) and
says why once in its status bar; the video never waits for either.
"""

from __future__ import annotations

import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QLoggingCategory, QObject, QStandardPaths, QUrl, pyqtSignal, qInstallMessageHandler
from PyQt6.QtWidgets import QApplication

RATE = 44100
NOTES = ((880.0, 0.11), (1320.0, 0.14))  # (Hz, s): a rising fifth, short and distinct from monitor alarms
VOLUME = 0.5
FADE_S = 0.01  # each note fades in and out over this (no clicks)
TONE_NAME = "polypview-alert.wav"
QUIET_PREFIXES = ("PulseAudioService", "QSoundEffect")  # a missing sound server is said once, in the status bar
_quieted = False


def tone_samples() -> np.ndarray:
    """The chime as int16 mono samples at RATE."""
    parts = []
    fade = int(FADE_S * RATE)
    for hz, seconds in NOTES:
        t = np.arange(int(seconds * RATE)) / RATE
        note = np.sin(2 * np.pi * hz * t)
        ramp = np.ones_like(note)
        ramp[:fade] = np.linspace(0, 1, fade)
        ramp[-fade:] = np.linspace(1, 0, fade)
        parts.append(note * ramp)
    return (np.concatenate(parts) * 0.8 * 32767).astype(np.int16)


def write_tone(path: Path) -> Path:
    """Write the chime as a 16-bit mono WAV file at `path` (its folder made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(tone_samples().tobytes())
    return path


def tone_path() -> Path:
    """Where the tone is kept: the user's cache folder, else the temporary folder."""
    cache = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
    return Path(cache or tempfile.gettempdir()) / TONE_NAME


def quiet_multimedia() -> None:
    """Keep QtMultimedia's start-up chatter (codec probing, no sound server) off the terminal: where the tone
    cannot play, the window says so in one line instead. Every other Qt message goes on as before."""
    global _quieted
    if _quieted:
        return
    _quieted = True
    QLoggingCategory.setFilterRules("qt.multimedia.*=false")
    previous = None

    def handler(mode, context, message):
        if message.startswith(QUIET_PREFIXES):
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            print(message, file=sys.stderr)

    previous = qInstallMessageHandler(handler)


class AlertSound(QObject):
    """Plays the chime (kept at `path`, default `tone_path()`); `fallback` says why the system bell is used
    instead ("" when the chime plays), and `fell_back` is emitted with it the first time the bell rings."""

    fell_back = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None, path: Path | None = None):
        super().__init__(parent)
        self._effect = None
        self.fallback = ""
        self._rang = False  # the bell has rung instead of the tone
        quiet_multimedia()
        try:
            from PyQt6.QtMultimedia import QSoundEffect
        except (ImportError, OSError) as exc:  # e.g. libpulse.so.0 missing on a Linux without sound
            self.fallback = f"sound library not available ({exc})"
            return
        try:
            path = write_tone(path or tone_path())
        except OSError as exc:
            self.fallback = f"cannot write the alert tone ({exc})"
            return
        self._error, self._ready = QSoundEffect.Status.Error, QSoundEffect.Status.Ready
        self._waiting = False  # a play asked for while the tone was still loading
        effect = QSoundEffect(self)
        effect.statusChanged.connect(self._status_changed)
        effect.setSource(QUrl.fromLocalFile(str(path)))
        effect.setVolume(VOLUME)
        self._effect = effect

    def play(self) -> None:
        """Start the chime (or the bell) and return at once."""
        if self._effect is not None and self._effect.status() != self._error:
            self._waiting = self._effect.status() != self._ready  # loading: it plays when loaded, else the bell
            self._effect.play()
            return
        self._bell()

    def _status_changed(self) -> None:
        if self._effect is not None and self._effect.status() == self._error and self._waiting:
            self._waiting = False
            self._bell()

    def _bell(self) -> None:
        first = not self._rang
        self._rang = True
        if self._effect is not None and not self.fallback:
            self.fallback = "no sound output could play the alert tone"
        QApplication.beep()
        if first:
            self.fell_back.emit(self.fallback)
