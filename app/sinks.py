"""The one sink for runs without a window (the headless runner, the bench, tests): counts frames, keeps errors,
notes when polyps appear (app/alerts.py), optionally shows a progress bar and keeps the last frame; the window
has its own (ui/bridge.py)."""

from __future__ import annotations

import sys
import threading

from polypview.alerts import AlertGate
from polypview.errors import PolypviewError
from polypview.protocols import Presented
from polypview.stats import Summary


class HeadlessSink:
    """Counts presented frames (a frame shown again with its own mask once), keeps errors; `failed` is set by
    the first error and `finished` at the end. `progress`: a bar on stderr (quiet when stderr is not a TTY)."""

    def __init__(self, total: int | None = None, progress: bool = False, keep_last: bool = False):
        self.frames = 0
        self.errors: list[PolypviewError] = []
        self.failed = threading.Event()
        self.finished = threading.Event()
        self.keep_last = keep_last
        self.last: Presented | None = None
        self.appearances: list[float] = []  # video times (s) at which a polyp appearance began
        self._gate = AlertGate()
        self._bar = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)

    def on_frame(self, p: Presented) -> None:
        if not p.reshown:
            self.frames += 1
            if self._bar is not None:
                self._bar.update(1)
        if self.keep_last:
            self.last = p
        if self._gate.update(float(p.pts or 0.0), bool(p.marked)):
            self.appearances.append(float(p.pts or 0.0))

    def on_error(self, e: PolypviewError) -> None:
        self.errors.append(e)
        self.failed.set()

    def on_finished(self, summary: Summary) -> None:
        self.finished.set()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
