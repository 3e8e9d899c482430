"""The pipeline's input stages: read and pace, the hand-offs (latest-frame slot and display queue, or the
ordered queue) and infer; the output stages (draw and present, the record tap) are in present.py.

Each stage is a small object with one job and no mode flag; `pipeline.py` composes them into the two
plans (live and every-frame) and runs each plan's loops in threads. What the stages share is passed
in explicitly: a `Control` (stop and run events, error report, queue hand-offs that give up on stop),
the `ModelState` (engine, overlay settings, epoch, recent results, image area) and the statistics.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from polypview.errors import PolypviewError
from polypview.overlay import Overlay, OverlaySettings
from polypview.protocols import Engine, Source
from polypview.roi import detect_roi, find_image_area, same_area
from polypview.sources import Frame
from polypview.stats import StatsCollector

END = None  # end-of-stream marker on the queues
POLL_S = 0.1  # how often a waiting stage looks at the stop event
RESULT_HISTORY = 16  # recent results kept so a lagging presenter finds one not from the future
CATCH_UP_S = 0.5  # a paced source this late re-anchors its clock instead of rushing to catch up
ROI_ATTEMPTS = 10  # a capture may start on black frames: look for the image area this many times...
ROI_EVERY = 30  # ...once every this many frames, until it is found
ROI_RECHECK_EVERY = 300  # then the area is checked again every this many frames (10 s at 30 fps)...
ROI_CONFIRM = 2  # ...and a different one is taken once this many checks in a row agree on it


@dataclass
class Result:
    """One inference result, tagged with the frame it came from."""

    seq: int
    t_enter: float
    prediction: Any
    overlay: Overlay | None
    epoch: int  # results from before a seek or a model change are never drawn


class Control:
    """What every stage shares: stop and run (pause) events, the error report, and stop-aware queue hand-offs."""

    def __init__(self, on_error: Callable[[PolypviewError], None] | None = None):
        self.stop = threading.Event()
        self.running = threading.Event()
        self.running.set()
        self.errors: list[PolypviewError] = []
        self._on_error = on_error
        self._on_stop: list[Callable[[], None]] = []

    def report(self, error: PolypviewError) -> None:
        """Keep an error for the summary and hand it to the sink."""
        self.errors.append(error)
        if self._on_error is not None:
            self._on_error(error)

    def when_stopping(self, wake: Callable[[], None]) -> None:
        """Call `wake` on stop (a stage blocked on its own event or slot)."""
        self._on_stop.append(wake)

    def stop_all(self) -> None:
        self.stop.set()
        self.running.set()
        for wake in self._on_stop:
            wake()

    def put(self, q: queue.Queue, item) -> bool:
        """Blocking put that gives up when the pipeline stops."""
        while not self.stop.is_set():
            try:
                q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def put_end(self, q: queue.Queue) -> None:
        """Deliver the end marker even to a full queue (the consumer may be gone after a stop)."""
        if not self.put(q, END):
            try:
                q.put_nowait(END)
            except queue.Full:
                pass

    def get(self, q: queue.Queue):
        """Blocking get; END when the pipeline stops."""
        while not self.stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return END


def overlay_for(engine: Engine | None) -> Overlay | None:
    if engine is None:
        return None
    return Overlay(engine.info.classes, engine.info.colors)


class ModelState:
    """The model side that stages read and the controls change: engine, overlay settings, epoch, results, image area."""

    def __init__(self, engine: Engine | None, find_roi: bool | tuple[int, int, int, int]):
        self.lock = threading.RLock()
        self.engine = engine
        self.overlay = overlay_for(engine)
        self.settings = OverlaySettings()
        self.temporal: Callable | None = None  # runtime.temporal.TemporalSteps of the current settings
        self.epoch = 0
        self.results: deque[Result] = deque(maxlen=RESULT_HISTORY)
        self.failed_engines: set[int] = set()
        self._roi_choice = 0  # counts the areas set (set_roi): a look started before one is not applied
        self._use_roi(find_roi)

    def _use_roi(self, find_roi: bool | tuple[int, int, int, int]) -> None:
        # an area the user gave is kept as it is; True: found, then re-checked; False: the whole frame
        self.roi: tuple[int, int, int, int] | None = find_roi if isinstance(find_roi, tuple) else None
        self._find_roi = find_roi is True
        self._roi_attempts = 0 if self._find_roi else ROI_ATTEMPTS
        self._roi_candidate: tuple | None = None  # a different area seen at the last re-checks...
        self._roi_agree = 0  # ...and at how many in a row

    def set_roi(self, find_roi: bool | tuple[int, int, int, int]) -> None:
        """Where the endoscope's image lies from now on: an area the user gave, found anew (True) or the
        whole frame (False); each polyp's class memory belonged to the old area's regions."""
        with self.lock:
            self._use_roi(find_roi)
            self._roi_choice += 1
            self.temporal = None

    def new_epoch(self) -> None:
        """Forget results and smoothing (after a seek or a model change); call with the lock held."""
        self.epoch += 1
        self.results.clear()
        self.temporal = None

    def set_engine(self, engine: Engine | None) -> None:
        with self.lock:
            self.engine = engine
            self.overlay = overlay_for(engine)
            self.new_epoch()

    def set_overlay(self, settings: OverlaySettings) -> None:
        with self.lock:
            from polypview.inference.runtime.temporal import TemporalSteps

            if TemporalSteps.key(settings) != TemporalSteps.key(self.settings):
                self.temporal = None
            self.settings = settings

    def look_for_roi(self, frame: Frame) -> None:
        """Find the endoscope image area (retrying now and then while frames are black), then keep
        checking it: a capture card opened on the tower's menu, or a layout changed mid-procedure
        (picture in picture, another scope), gets its new area once two checks in a row agree on it."""
        if not self._find_roi:
            return
        choice = self._roi_choice
        # The image is looked at outside the lock (the presenter takes it every frame); what it finds is applied
        # under it, and only if the user has not set an area meanwhile (set_roi).
        if self.roi is None and self._roi_attempts < ROI_ATTEMPTS:
            if frame.seq % ROI_EVERY == 0:
                found = detect_roi(frame.image)
                with self.lock:
                    if choice == self._roi_choice:
                        self._roi_attempts += 1
                        self.roi = found
            return
        if frame.seq % ROI_RECHECK_EVERY:
            return
        area, seen = find_image_area(frame.image)
        if not seen:  # a black frame tells nothing: neither for the area kept nor for a new one
            return
        with self.lock:
            if choice == self._roi_choice:
                self._recheck(area, frame.image.shape)

    def _recheck(self, area, shape) -> None:
        """A re-check saw `area`: the area in use stays, or a new one is taken once ROI_CONFIRM checks agree."""
        if same_area(area, self.roi, shape):
            self._roi_candidate, self._roi_agree = None, 0
            return
        if self._roi_agree and same_area(area, self._roi_candidate, shape):
            self._roi_agree += 1
        else:
            self._roi_candidate, self._roi_agree = area, 1
        if self._roi_agree >= ROI_CONFIRM:
            self.roi, self.temporal = area, None  # class memory belongs to the old area's regions
            self._roi_candidate, self._roi_agree = None, 0

    def smooth(self, prediction):
        """The overlay's temporal steps: score smoothing, then each polyp's class memory (frames in order)."""
        with self.lock:
            settings, overlay, temporal = self.settings, self.overlay, self.temporal
        if temporal is None:
            from polypview.inference.runtime.temporal import TemporalSteps

            temporal = TemporalSteps(settings, len(overlay.class_names) if overlay is not None else 1)
            with self.lock:
                if settings is self.settings:
                    self.temporal = temporal
        return temporal(prediction)

    def keep(self, result: Result) -> None:
        """Keep a result of the current epoch (`new_epoch` empties the list: it only ever holds this epoch's)."""
        with self.lock:
            if result.epoch == self.epoch:
                self.results.append(result)

    def newest_for(self, seq: int) -> Result | None:
        """The newest result of this epoch from a frame at or before `seq`."""
        with self.lock:
            return next((r for r in reversed(self.results) if r.seq <= seq), None)

    def own_result(self, seq: int) -> Result | None:
        """The result of frame `seq` itself, while overlays are shown."""
        with self.lock:
            if not self.settings.enabled:
                return None
            return next((r for r in reversed(self.results) if r.seq == seq), None)


# ---------------------------------------------------------------------------------------- read and pace


class LatestSlot:
    """A one-frame mailbox: `put` replaces an untaken frame (returned, so the caller counts the drop)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False

    def put(self, frame: Frame | None) -> Frame | None:
        with self._cond:
            old, self._frame = self._frame, frame
            self._cond.notify()
            return old

    def take(self, timeout: float) -> Frame | None:
        """The newest frame, waiting up to `timeout`; None when none came or the slot is closed."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def clear(self) -> Frame | None:
        return self.put(None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class Pacer:
    """Holds frames until their pts is due against the monotonic clock (files played at their own rate)."""

    def __init__(self):
        self._anchor: tuple[float, float] | None = None

    def reset(self) -> None:
        self._anchor = None

    def wait_s(self, pts: float, now: float) -> float:
        """Seconds to wait before showing a frame with this pts (re-anchors after jumps and stalls)."""
        if self._anchor is not None:
            due = self._anchor[0] + (pts - self._anchor[1])
            if pts >= self._anchor[1] and now - due < CATCH_UP_S:
                return max(0.0, due - now)
        self._anchor = (now, pts)
        return 0.0


class FrameOut(Protocol):
    """Where the reader hands frames: the plan decides (slot and display, or the ordered inference queue)."""

    def put(self, frame: Frame) -> None: ...

    def clear(self) -> None: ...  # after a seek: forget frames not yet taken

    def end(self) -> None: ...


class Reader:
    """Read and pace: frames from the source, paced to their own rate when a pacer is given, into `out`.

    Honours pause (still showing a frame sought to), seeks (a new epoch: older results are never drawn),
    the frame limit, and reports what was wrong with the input at its end."""

    def __init__(self, control: Control, source: Source, state: ModelState, stats: StatsCollector, out: FrameOut,
                 pacer: Pacer | None, max_frames: int | None):
        self.control, self.source, self.state, self.stats = control, source, state, stats
        self.out, self.pacer, self.max_frames = out, pacer, max_frames
        self._seek_to: float | None = None

    def request_seek(self, seconds: float) -> None:
        """Jump in a file (done by the reader's thread before its next read)."""
        with self.state.lock:
            self._seek_to = float(seconds)

    def run(self) -> None:
        try:
            while not self.control.stop.is_set() and not self._limit_reached():
                if not self._wait_running():
                    break
                frame = self._read()
                if frame is None:
                    self._check_input()
                    break
                self._emit(frame, self.pacer)
        finally:
            self.out.end()

    def _limit_reached(self) -> bool:
        return self.max_frames is not None and self.stats.frames_read >= self.max_frames

    def _wait_running(self) -> bool:
        """Block while paused (still honouring seeks); False when stopping."""
        control = self.control
        if control.running.is_set():
            self._apply_seek()
            return True
        while not control.running.wait(POLL_S):
            if control.stop.is_set():
                return False
            if self._seek_to is not None:  # show the frame sought to, then stay paused
                self._apply_seek()
                frame = self._read()
                if frame is not None:
                    self._emit(frame, None)
        if self.pacer is not None:
            self.pacer.reset()
        self._apply_seek()
        return not control.stop.is_set()

    def _apply_seek(self) -> None:
        with self.state.lock:
            target, self._seek_to = self._seek_to, None
        if target is None:
            return
        self.source.seek(target)  # outside the lock: decoding up to the target must not stall the display
        with self.state.lock:
            self.state.new_epoch()
        self.out.clear()
        if self.pacer is not None:
            self.pacer.reset()

    def _check_input(self) -> None:
        """At the end of input, report what was wrong with it (corrupt packets, truncation)."""
        problem = self.source.problem()
        if problem is not None and not self.control.errors:
            self.control.report(problem)

    def _read(self) -> Frame | None:
        try:
            frame = self.source.read()
        except PolypviewError as exc:  # a capture card unplugged, an unreadable file mid-way
            self.control.report(exc)
            return None
        if frame is not None:
            self.state.look_for_roi(frame)
        return frame

    def _emit(self, frame: Frame, pacer: Pacer | None) -> None:
        if pacer is not None:
            delay = pacer.wait_s(frame.pts, time.monotonic())
            if delay > 0 and self.control.stop.wait(delay):
                return
            frame.t_enter = time.monotonic()  # the frame enters when its time comes, like a capture
        self.stats.entered(frame.seq, frame.pts, frame.t_enter)
        self.out.put(frame)


class SlotAndDisplay:
    """Live hand-off: every frame to the bounded display queue (the oldest dropped, counted, when the display
    lags) and to the latest-frame slot (a frame the model had no time for is replaced, counted)."""

    def __init__(self, control: Control, stats: StatsCollector, display_size: int):
        self.control, self.stats = control, stats
        self.slot = LatestSlot()
        self.display: queue.Queue = queue.Queue(maxsize=display_size)
        self.wake = threading.Event()  # the presenter: a frame or a result came
        control.when_stopping(self.slot.close)
        control.when_stopping(self.wake.set)

    def put(self, frame: Frame) -> None:
        dropped = self.slot.put(frame)
        if dropped is not None:
            self.stats.drop("inference", dropped.seq)
        while True:
            try:
                self.display.put_nowait(frame)
                self.wake.set()
                return
            except queue.Full:
                pass
            try:
                old = self.display.get_nowait()
            except queue.Empty:
                continue
            self.stats.drop("display", old.seq)

    def clear(self) -> None:
        self.slot.clear()

    def end(self) -> None:
        self.slot.close()
        self.control.put_end(self.display)


class InOrder:
    """Every-frame hand-off: each frame, numbered in the order it entered, onto the blocking inference queue."""

    def __init__(self, control: Control, size: int):
        self.control = control
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self._order = 0

    def put(self, frame: Frame) -> None:
        self.control.put(self.queue, (self._order, frame))
        self._order += 1

    def clear(self) -> None:
        """Frames already queued keep their place: every frame is shown."""

    def end(self) -> None:
        self.control.put_end(self.queue)


# ---------------------------------------------------------------------------------------- infer


class Inferer:
    """Runs the current engine on frames; a failing model is reported once and the video goes on without it."""

    def __init__(self, control: Control, state: ModelState, stats: StatsCollector):
        self.control, self.state, self.stats = control, state, stats

    def infer(self, frame: Frame) -> Result | None:
        """The engine's result for this frame; None without an engine or when it failed."""
        state = self.state
        with state.lock:
            engine, overlay, epoch, roi = state.engine, state.overlay, state.epoch, state.roi
        if engine is None:
            return None
        t0 = time.monotonic()
        try:
            prediction = engine.predict(frame.image, roi)
        except Exception as exc:
            self._failed(engine, exc)
            return None
        t1 = time.monotonic()
        self.stats.inferred(frame.seq, t0, t1, prediction.timings.get("inference"))
        return Result(frame.seq, frame.t_enter, prediction, overlay, epoch)

    def _failed(self, engine: Engine, exc: Exception) -> None:
        state = self.state
        with state.lock:
            if id(engine) in state.failed_engines:  # every-frame workers running side by side may both fail
                return
            state.failed_engines.add(id(engine))
            if state.engine is engine:
                state.engine = None
        error = exc if isinstance(exc, PolypviewError) else PolypviewError(
            f"model {engine.name} failed on a frame ({exc}); showing video without the overlay")
        self.control.report(error)

    def newest_loop(self, slot: LatestSlot, wake: threading.Event) -> None:
        """Live: always the newest frame; results kept (smoothed in arrival order) for the presenter."""
        while not self.control.stop.is_set():
            frame = slot.take(POLL_S)
            if frame is None:
                if slot.closed:
                    return
                continue
            result = self.infer(frame)
            if result is not None:
                result.prediction = self.state.smooth(result.prediction)
                self.state.keep(result)
                wake.set()

    def ordered_loop(self, inbox: queue.Queue, outbox: queue.Queue) -> None:
        """Every frame: (order, frame) in, (order, frame, result) out; smoothing is the presenter's (in order)."""
        control = self.control
        while True:
            item = control.get(inbox)
            if item is END:
                control.put_end(inbox)  # the other workers stop too
                break
            order, frame = item
            if not control.put(outbox, (order, frame, self.infer(frame))):
                break
        control.put_end(outbox)
