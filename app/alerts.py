"""When a polyp appears: the moment the window sounds its alert and `batch` lists an appearance.

Commercial CADe systems can sound a short tone when a lesion is first marked, so that an endoscopist
looking at the bowel wall, not at the mask, still notices it. A tone on every frame with a mask would
be noise: the network marks mucosa for a frame or two now and then, and a polyp stays on screen for
seconds. `AlertGate` turns the per-frame "a polyp is drawn" into one event per appearance:

* an appearance starts when polyps have been drawn for `hold_s` (gaps shorter than `gap_s`, a missed
  frame or two, do not restart the count), and it is announced once, at that moment;
* it ends when nothing has been drawn for `quiet_s`; only then can the next appearance be announced
  (a polyp that drops out for a moment, or a second polyp beside the first, makes no second tone).

Time is the video's own (frame pts, seconds): a jump backwards or a gap longer than `quiet_s` (a seek,
a new input) starts afresh. No Qt here: the window plays the tone, `batch` writes the times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from polypview.errors import ConfigError

HOLD_S = 0.3  # polyps drawn this long before an appearance is announced
GAP_S = 0.15  # undrawn stretches shorter than this do not restart the hold
QUIET_S = 2.0  # nothing drawn this long ends an appearance
EPS = 1e-6  # frame times are sums of floats: 9 frames at 1/30 s are 0.3 s


@dataclass(frozen=True)
class AlertTiming:
    """The gate's three times, in seconds."""

    hold_s: float = HOLD_S
    gap_s: float = GAP_S
    quiet_s: float = QUIET_S

    def __post_init__(self) -> None:
        if not (self.hold_s >= 0 and self.gap_s >= 0 and self.quiet_s > 0):
            raise ConfigError(f"alert times must be hold >= 0, gap >= 0 and quiet > 0 s, got {self.hold_s:g}, "
                              f"{self.gap_s:g} and {self.quiet_s:g}")


class AlertGate:
    """Fed each shown frame's time and whether a polyp is drawn on it; says when an appearance begins."""

    def __init__(self, timing: AlertTiming = AlertTiming()):
        self.timing = timing
        self.reset()

    def reset(self) -> None:
        """Forget the past (a new input, a seek): the next polyp held long enough is announced."""
        self._last_t: float | None = None  # time of the last frame fed
        self._run_start: float | None = None  # start of the current run of drawn frames (short gaps bridged)
        self._last_drawn: float | None = None  # time of the last frame with a polyp drawn
        self._announced = False  # the current appearance was announced (until quiet_s without a polyp)

    def update(self, t: float, drawn: bool) -> bool:
        """True when the frame at `t` s, with (`drawn`) or without a polyp drawn, begins an appearance."""
        timing = self.timing
        if self._last_t is not None and (t < self._last_t or t - self._last_t > timing.quiet_s + EPS):
            self.reset()  # a seek, or the input changed
        self._last_t = t
        if not drawn:
            if self._last_drawn is not None and t - self._last_drawn > timing.gap_s + EPS:
                self._run_start = None
            if self._announced and self._last_drawn is not None and t - self._last_drawn >= timing.quiet_s - EPS:
                self._announced = False
            return False
        if self._run_start is None or (self._last_drawn is not None and t - self._last_drawn > timing.gap_s + EPS):
            self._run_start = t  # a new run (frames between may not have been fed)
        self._last_drawn = t
        if self._announced or t - self._run_start < timing.hold_s - EPS:
            return False
        self._announced = True
        return True


def appearances(frames: Iterable[tuple[float, bool]], timing: AlertTiming = AlertTiming()) -> list[float]:
    """The times (s) at which `AlertGate` announces an appearance, over (time, polyp drawn) frames in order."""
    gate = AlertGate(timing)
    return [t for t, drawn in frames if gate.update(t, drawn)]


def clock(seconds: float) -> str:
    """A video time as m:ss.s (0:03.3, 12:07.0)."""
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes)}:{rest:04.1f}"
