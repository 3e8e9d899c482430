"""The pipeline's output stages: draw and present (to the sink), and the record tap.

`Drawer` draws a result's mask on a frame and hands it to the sink; `LivePresenter` and
`OrderedPresenter` are the presenter loops of the live and every-frame plans; `RecordTap` holds the
recorder, swapped in and out while the pipeline runs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from polypview.protocols import Presented
from polypview.recorder import Recorder, RecordingReport, RecordItem
from polypview.sources import Frame
from polypview.stages import END, POLL_S, Control, ModelState, Result, SlotAndDisplay
from polypview.stats import Stats, StatsCollector

# ---------------------------------------------------------------------------------------- record tap


class RecordTap:
    """The recorder, swapped in and out while the pipeline runs; frames are offered as they are shown."""

    def __init__(self, control: Control, stats: StatsCollector, fps: float, size: tuple[int, int], queue_size: int):
        self.control, self.stats = control, stats
        self.fps, self.size, self.queue_size = fps, size, queue_size
        self.lock = threading.Lock()
        self.recorder: Recorder | None = None
        self.reports: list[RecordingReport] = []
        self._held: tuple | None = None

    def start(self, path, include_hud: bool) -> None:
        recorder = Recorder(path, self.fps, self.size, include_hud=include_hud, queue_size=self.queue_size,
                            on_written=self.stats.recorded, on_error=self.control.report)
        with self.lock:
            old, self.recorder = self.recorder, recorder
        if old is not None:
            self.reports.append(old.close())

    def stop(self, timeout: float) -> RecordingReport | None:
        with self.lock:
            recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        report = recorder.close(timeout)
        self.reports.append(report)
        return report

    def offer(self, seq: int, image: np.ndarray, stats: Stats) -> None:
        """Live: queue the frame if the recorder has room (converted on the recorder's thread), else count a drop."""
        recorder = self.recorder
        if recorder is None:
            return
        if recorder.failed or recorder.full:
            self._drop(recorder, seq)
            return
        if not recorder.submit(RecordItem(seq, None, self._hud(recorder, stats), bgr=image), block=False,
                               stop=self.control.stop):
            self.stats.drop("record", seq)

    def write(self, seq: int, image: np.ndarray, stats: Stats) -> None:
        """Every frame: convert here (a stage of its own beside the encoder) and wait for room."""
        recorder = self.recorder
        if recorder is None:
            return
        if recorder.failed:
            self._drop(recorder, seq)
            return
        item = RecordItem(seq, recorder.convert(image), self._hud(recorder, stats))
        if not recorder.submit(item, block=True, stop=self.control.stop):
            self.stats.drop("record", seq)

    def hold(self, seq: int, image: np.ndarray, stats: Stats) -> None:
        """Live with re-show: keep the frame on screen; it is offered when the next one comes (or at the end)."""
        self._held = (seq, image, stats)

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self.offer(*held)

    def _drop(self, recorder: Recorder, seq: int) -> None:
        recorder.count_drop()  # skip the conversion: the frame could not be queued anyway
        self.stats.drop("record", seq)

    @staticmethod
    def _hud(recorder: Recorder, stats: Stats) -> list[str]:
        return stats.hud_lines() if recorder.include_hud else []


# ---------------------------------------------------------------------------------------- draw and present


class Drawer:
    """Draw and present: a frame with a result's mask drawn (as the overlay settings say), handed to the sink."""

    def __init__(self, state: ModelState, stats: StatsCollector, snapshot: Callable[[], Stats], sink):
        self.state, self.stats, self.snapshot, self.sink = state, stats, snapshot, sink

    def show(self, frame: Frame, result: Result | None, stale: bool, reshown: bool = False) -> Presented:
        state = self.state
        with state.lock:
            settings, overlay = state.settings, state.overlay
        if result is not None:
            overlay = result.overlay
        if not settings.enabled:
            result, stale = None, False
        prediction = result.prediction if result is not None else None
        image, marked = frame.image, False
        if overlay is not None and settings.enabled:
            image, marked = overlay.draw_marked(frame.image, prediction, settings, state.roi)
        overlay_seq = result.seq if result is not None else None
        if reshown:
            self.stats.reshown(frame.seq, time.monotonic(), overlay_seq)
        else:
            self.stats.presented(frame.seq, time.monotonic(), overlay_seq, stale)
        shown = Presented(frame.seq, image, frame.image, overlay_seq, stale, self.snapshot(), frame.pts, reshown,
                          prediction, marked)
        if self.sink is not None:
            self.sink.on_frame(shown)
        return shown


class LivePresenter:
    """Live: shows each frame from the display queue at once with the newest result that is not from the future
    and not older than the staleness limit; shows it again when its own mask comes while it is still the newest
    frame (`reshow`); each frame reaches the record tap once, in its last shown form."""

    def __init__(self, control: Control, state: ModelState, drawer: Drawer, tap: RecordTap, handoff: SlotAndDisplay,
                 staleness_s: float, reshow: bool):
        self.control, self.state, self.drawer, self.tap = control, state, drawer, tap
        self.display, self.wake = handoff.display, handoff.wake
        self.staleness_s, self.reshow = staleness_s, reshow

    def run(self) -> None:
        shown: Presented | None = None  # the frame on screen
        current: Frame | None = None
        try:
            while not self.control.stop.is_set():
                self.wake.clear()  # before looking, so a frame or result arriving meanwhile is not missed
                try:
                    frame = self.display.get_nowait()
                except queue.Empty:
                    again = self._show_again(current, shown)
                    if again is None:
                        self.wake.wait(POLL_S)
                    else:
                        shown = again
                    continue
                if frame is END:
                    return
                self.tap.release()
                result, stale = self._pick(frame)
                current, shown = frame, self._show(frame, result, stale)
        finally:
            self.tap.release()

    def _show(self, frame: Frame, result: Result | None, stale: bool, reshown: bool = False) -> Presented:
        shown = self.drawer.show(frame, result, stale, reshown)
        if self.reshow:
            self.tap.hold(frame.seq, shown.image, shown.stats)  # recorded when the next frame comes
        else:
            self.tap.offer(frame.seq, shown.image, shown.stats)
        return shown

    def _show_again(self, frame: Frame | None, shown: Presented | None) -> Presented | None:
        """The frame on screen again with its own mask, if that has come and no newer frame waits."""
        if frame is None or shown is None or not self.reshow or shown.overlay_seq == frame.seq:
            return None
        own = self.state.own_result(frame.seq)
        if own is None or not self.display.empty():
            return None  # a frame waiting in the queue will carry this mask now anyway
        return self._show(frame, own, stale=False, reshown=True)

    def _pick(self, frame: Frame) -> tuple[Result | None, bool]:
        """(result, stale): the newest result not from the future, if its frame entered within the staleness limit."""
        with self.state.lock:
            engine = self.state.engine
        if engine is None:
            return None, False
        newest = self.state.newest_for(frame.seq)
        if newest is None or time.monotonic() - newest.t_enter > self.staleness_s:
            return None, True
        return newest, False


class OrderedPresenter:
    """Every frame: results from the workers put back in entry order, smoothed in order, drawn, presented and
    written to the record tap (waiting for room: nothing is dropped)."""

    def __init__(self, control: Control, state: ModelState, drawer: Drawer, tap: RecordTap, inbox: queue.Queue,
                 workers: int):
        self.control, self.state, self.drawer, self.tap = control, state, drawer, tap
        self.inbox, self.workers = inbox, workers

    def run(self) -> None:
        waiting: dict[int, tuple] = {}  # results that overtook an earlier frame, by entry order
        next_order, ended = 0, 0
        while ended < self.workers:
            item = self.control.get(self.inbox)
            if item is END:
                ended += 1
                if self.control.stop.is_set():
                    return
                continue
            waiting[item[0]] = item[1:]
            while next_order in waiting:
                frame, result = waiting.pop(next_order)
                next_order += 1
                self._show(frame, result)

    def _show(self, frame: Frame, result: Result | None) -> None:
        if result is not None:
            result.prediction = self.state.smooth(result.prediction)
        with self.state.lock:
            stale = result is None and self.state.engine is not None
        shown = self.drawer.show(frame, result, stale)
        self.tap.write(frame.seq, shown.image, shown.stats)
