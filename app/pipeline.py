"""The video pipeline: source thread -> inference worker -> presenter -> recorder, with counted drops.

live mode: the source thread paces files to their own frame rate and puts every frame on the
  bounded display queue and into the latest-frame slot; the inference worker always takes the
  newest frame (skipped frames are counted as "inference" drops, never dropped from display);
  the presenter draws each frame with the newest result that is not from the future and not
  older than the staleness limit and hands it to the sink at once; when the frame's own mask
  comes while it is still the newest frame (a model faster than the frame interval), the frame
  is shown again with it ("re-show"), so the mask is on screen as soon as it exists instead of
  one frame later. Each frame is queued for the recorder once, in its last shown form, when
  the next one comes (at once without re-show).
sync mode: every frame is inferred and drawn with its own mask; the stages still run in their
  own threads (decode | infer | draw+convert | encode) and every hand-off blocks, so order is kept.
Each stage only waits with timeouts on a shared stop event, so `stop()` never hangs.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from polypview.defaults import STALENESS_MS
from polypview.errors import ConfigError, OutputError, PolypviewError
from polypview.overlay import Overlay, OverlaySettings, detect_roi
from polypview.recorder import Recorder, RecordingReport, RecordItem, check_output_path
from polypview.sources import Frame, Source
from polypview.stats import Stats, StatsCollector, Summary

MODES = ("live", "sync")
END = None  # end-of-stream marker on the queues
POLL_S = 0.1  # how often a waiting stage looks at the stop event
RESULT_HISTORY = 16  # recent results kept so a lagging presenter finds one not from the future
CATCH_UP_S = 0.5  # a paced source this late re-anchors its clock instead of rushing to catch up
ROI_ATTEMPTS = 10  # a capture may start on black frames: look for the image area this many times...
ROI_EVERY = 30  # ...once every this many frames, until it is found


@dataclass
class PipelineConfig:
    """How the pipeline runs; see the module docstring for the modes."""

    mode: str = "live"
    staleness_s: float = STALENESS_MS / 1000
    record_path: Path | None = None
    record_hud: bool = False
    metrics_path: Path | None = None
    realtime: bool = True  # live mode: play files at their own frame rate (False: as fast as possible)
    max_frames: int | None = None  # stop after this many frames
    display_queue: int = 4
    sync_queue: int = 4
    # every-frame mode: inference workers running side by side (results are put back in order). One worker
    # with one ORT thread leaves the second core of a 2-core machine half idle; two fill it.
    sync_workers: int = 2
    record_queue: int = 32
    roi: bool = True  # detect the endoscope image area on the first frame
    reshow: bool = True  # live: show a frame again when its own mask comes before the next frame

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown pipeline mode {self.mode!r}; valid modes: {', '.join(MODES)}")
        if self.staleness_s <= 0:
            raise ConfigError(f"the staleness limit must be positive, got {self.staleness_s * 1000:.0f} ms")


@dataclass
class Presented:
    """A frame as handed to the sink."""

    seq: int
    image: np.ndarray  # annotated BGR (the raw frame itself when nothing is drawn)
    raw: np.ndarray  # the source frame
    overlay_seq: int | None  # seq of the frame whose mask is drawn, None when none is
    stale: bool  # a model is running but no mask young enough was available
    stats: Stats
    pts: float
    reshown: bool = False  # the same frame again, now with its own mask (count it once)
    prediction: Any = None  # the Prediction whose mask is drawn (None when none is)


@dataclass
class Result:
    """One inference result, tagged with the frame it came from."""

    seq: int
    t_enter: float
    prediction: Any
    overlay: Overlay
    epoch: int  # results from before a seek or a model change are never drawn


class Sink(Protocol):
    """What the pipeline calls from its threads (the GUI turns these into Qt signals)."""

    def on_frame(self, p: Presented) -> None: ...

    def on_error(self, e: PolypviewError) -> None: ...

    def on_finished(self, summary: Summary) -> None: ...


class LatestSlot:
    """A one-frame mailbox: `put` replaces an untaken frame (returned, so the caller counts the drop)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False

    def put(self, frame: Frame) -> Frame | None:
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


def _overlay_for(engine) -> Overlay | None:
    if engine is None:
        return None
    return Overlay(engine.info.classes, engine.info.colors)


class Pipeline:
    """Wires a Source, an engine (or None) and a Sink; see the module docstring."""

    def __init__(self, source: Source, engine, config: PipelineConfig | None = None, sink: Sink | None = None):
        self.source = source
        self.config = config or PipelineConfig()
        self.sink = sink
        self.stats_collector = StatsCollector(keep_records=self.config.metrics_path is not None)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._lock = threading.RLock()
        self._engine = engine
        self._overlay = _overlay_for(engine)
        self._settings = OverlaySettings()
        self._smoother = None
        self._epoch = 0
        self._seek_to: float | None = None
        self._roi = None
        self._roi_attempts = 0 if self.config.roi else ROI_ATTEMPTS
        self._results: deque[Result] = deque(maxlen=RESULT_HISTORY)
        self._slot = LatestSlot()
        self._wake = threading.Event()  # live presenter: a frame or a result came
        self._held: tuple | None = None  # live: (seq, image, stats) of the frame shown last, not yet recorded
        self._display: queue.Queue = queue.Queue(maxsize=self.config.display_queue)
        self._infer_q: queue.Queue = queue.Queue(maxsize=self.config.sync_queue)
        self._present_q: queue.Queue = queue.Queue(maxsize=self.config.sync_queue)
        self._sync_order = itertools.count()  # sync mode: the order frames enter, restored by the presenter
        self._failed_engines: set[int] = set()
        self._recorder: Recorder | None = None
        self._recording_reports: list[RecordingReport] = []
        self._errors: list[PolypviewError] = []
        self._summary: Summary | None = None
        self._finish_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._frames_read = 0
        self._prepare_outputs()

    # ------------------------------------------------------------------ public API

    def _prepare_outputs(self) -> None:
        """Check output paths before any processing (OutputError now, not halfway through)."""
        if self.config.metrics_path:
            check_output_path(self.config.metrics_path, what="metrics")
        if self.config.record_path:
            self.start_recording(self.config.record_path, include_hud=self.config.record_hud)

    def start(self) -> None:
        """Start the threads."""
        if self._threads:
            raise ConfigError("the pipeline is already started")
        sync = self.config.mode == "sync"
        targets = {"source": self._source_loop}
        if sync:
            for i in range(self._workers()):
                targets[f"inference-{i}" if i else "inference"] = self._sync_infer_loop
        else:
            targets["inference"] = self._live_infer_loop
        targets["presenter"] = self._sync_present_loop if sync else self._live_present_loop
        for name, target in targets.items():
            thread = threading.Thread(target=self._guard(target), name=f"polypview-{name}", daemon=True)
            self._threads.append(thread)
        self.stats_collector.t_start = time.monotonic()
        for thread in self._threads:
            thread.start()

    def _workers(self) -> int:
        return max(1, int(self.config.sync_workers))

    def wait(self, timeout: float | None = None) -> bool:
        """True once the input ended (or the pipeline was stopped) and everything is finalised."""
        return self._done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> Summary:
        """Stop every stage within `timeout` seconds, finalise the recording and return the summary."""
        deadline = time.monotonic() + timeout
        interrupted = not self._done.is_set()
        self._stop.set()
        self._running.set()
        self._wake.set()
        self._slot.close()
        join_until = time.monotonic() + timeout / 2  # the other half is for finalising the recording
        for thread in self._threads:
            thread.join(max(0.0, join_until - time.monotonic()))
        return self._finish(interrupted=interrupted, timeout=max(0.5, deadline - time.monotonic() - 0.5))

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        """Stop reading the source (the current frame stays on screen)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def seek(self, seconds: float) -> None:
        """Jump in a file (done by the source thread before its next read)."""
        if not self.source.seekable:
            raise ConfigError(f"{self.source.name} cannot seek (a live capture)")
        with self._lock:
            self._seek_to = float(seconds)

    def set_overlay(self, settings: OverlaySettings) -> None:
        """New overlay settings, applied from the next frame."""
        with self._lock:
            if settings.smoothing != self._settings.smoothing:
                self._smoother = None
            self._settings = settings

    def set_engine(self, engine) -> None:
        """Swap the model; results of the old one are no longer drawn."""
        with self._lock:
            self._engine = engine
            self._overlay = _overlay_for(engine)
            self._smoother = None
            self._new_epoch()

    @property
    def engine(self):
        return self._engine

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def start_recording(self, path, include_hud: bool = False) -> None:
        """Record presented frames to an MP4 (OutputError if the path cannot be written)."""
        recorder = Recorder(path, self.source.fps, self.source.size, include_hud=include_hud,
                            queue_size=self.config.record_queue, on_written=self.stats_collector.recorded,
                            on_error=self._report_error)
        with self._lock:
            old, self._recorder = self._recorder, recorder
        if old is not None:
            self._recording_reports.append(old.close())

    def stop_recording(self, timeout: float = 5.0) -> RecordingReport | None:
        """Stop recording and finalise the file; None when not recording."""
        with self._lock:
            recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        report = recorder.close(timeout)
        self._recording_reports.append(report)
        return report

    def stats(self) -> Stats:
        """A snapshot for the HUD (thread-safe)."""
        return self.stats_collector.snapshot(self._engine, self.recording, self.source.errors)

    # ------------------------------------------------------------------ helpers

    def _guard(self, target):
        """Run a stage; an unexpected exception is reported once and stops the pipeline cleanly."""
        def run():
            try:
                target()
            except PolypviewError as exc:
                self._report_error(exc)
                self._stop.set()
            except Exception as exc:  # a bug must not leave other threads waiting forever
                self._report_error(PolypviewError(f"internal error in {threading.current_thread().name}: {exc!r}"))
                self._stop.set()
            finally:
                if threading.current_thread().name == "polypview-presenter":
                    self._finish(interrupted=self._stop.is_set())
        return run

    def _report_error(self, exc: PolypviewError) -> None:
        self._errors.append(exc)
        if self.sink is not None:
            self.sink.on_error(exc)

    def _put(self, q: queue.Queue, item) -> bool:
        """Blocking put that gives up when the pipeline stops."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _put_end(self, q: queue.Queue) -> None:
        """Deliver the end marker even to a full queue (the consumer may be gone after a stop)."""
        if not self._put(q, END):
            try:
                q.put_nowait(END)
            except queue.Full:
                pass

    def _get(self, q: queue.Queue):
        """Blocking get; END when the pipeline stops."""
        while not self._stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return END

    def _new_epoch(self) -> None:
        self._epoch += 1
        self._results.clear()

    # ------------------------------------------------------------------ source thread

    def _source_loop(self) -> None:
        sync = self.config.mode == "sync"
        pacer = Pacer() if (not sync and self.config.realtime and not self.source.live) else None
        out = self._infer_q if sync else self._display
        try:
            while not self._stop.is_set() and not self._limit_reached():
                if not self._wait_running(pacer):
                    break
                frame = self._read()
                if frame is None:
                    self._check_input()
                    break
                self._emit(frame, pacer, sync)
        finally:
            self._slot.close()
            self._put_end(out)

    def _limit_reached(self) -> bool:
        return self.config.max_frames is not None and self._frames_read >= self.config.max_frames

    def _wait_running(self, pacer: Pacer | None) -> bool:
        """Block while paused (still honouring seeks); False when stopping."""
        if self._running.is_set():
            self._apply_seek(pacer)
            return True
        while not self._running.wait(POLL_S):
            if self._stop.is_set():
                return False
            if self._seek_to is not None:  # show the frame sought to, then stay paused
                self._apply_seek(pacer)
                frame = self._read()
                if frame is not None:
                    self._emit(frame, None, self.config.mode == "sync")
        if pacer is not None:
            pacer.reset()
        self._apply_seek(pacer)
        return not self._stop.is_set()

    def _apply_seek(self, pacer: Pacer | None) -> None:
        with self._lock:
            target, self._seek_to = self._seek_to, None
        if target is None:
            return
        self.source.seek(target)  # outside the lock: decoding up to the target must not stall the display
        with self._lock:
            self._new_epoch()
            self._smoother = None
        self._slot.clear()
        if pacer is not None:
            pacer.reset()

    def _check_input(self) -> None:
        """At the end of input, report what was wrong with it (corrupt packets, truncation)."""
        problem = self.source.problem()
        if problem is not None and not self._errors:
            self._report_error(problem)

    def _read(self) -> Frame | None:
        try:
            frame = self.source.read()
        except PolypviewError as exc:  # a capture card unplugged, an unreadable file mid-way
            self._report_error(exc)
            return None
        if frame is not None:
            self._find_roi(frame)
        return frame

    def _find_roi(self, frame: Frame) -> None:
        """Find the endoscope image area once (retrying now and then while frames are black)."""
        if self._roi is None and self._roi_attempts < ROI_ATTEMPTS and frame.seq % ROI_EVERY == 0:
            self._roi_attempts += 1
            self._roi = detect_roi(frame.image)

    def _emit(self, frame: Frame, pacer: Pacer | None, sync: bool) -> None:
        if pacer is not None:
            delay = pacer.wait_s(frame.pts, time.monotonic())
            if delay > 0 and self._stop.wait(delay):
                return
            frame.t_enter = time.monotonic()  # the frame enters when its time comes, like a capture
        self._frames_read += 1
        self.stats_collector.entered(frame.seq, frame.pts, frame.t_enter)
        if sync:
            self._put(self._infer_q, (next(self._sync_order), frame))
            return
        dropped = self._slot.put(frame)
        if dropped is not None:
            self.stats_collector.drop("inference", dropped.seq)
        self._show(frame)

    def _show(self, frame: Frame) -> None:
        """Queue a frame for display; when the display lags, its oldest frame is dropped (counted), so it catches up."""
        while True:
            try:
                self._display.put_nowait(frame)
                self._wake.set()
                return
            except queue.Full:
                pass
            try:
                old = self._display.get_nowait()
            except queue.Empty:
                continue
            self.stats_collector.drop("display", old.seq)

    # ------------------------------------------------------------------ inference worker

    def _infer(self, frame: Frame, smooth: bool = True) -> Result | None:
        """Run the engine on a frame; None without an engine or when it failed (reported once)."""
        with self._lock:
            engine, overlay, epoch = self._engine, self._overlay, self._epoch
            settings = self._settings
        if engine is None:
            return None
        t0 = time.monotonic()
        try:
            prediction = engine.predict(frame.image, self._roi) if self._roi is not None else engine.predict(frame.image)
        except Exception as exc:
            self._engine_failed(engine, exc)
            return None
        t1 = time.monotonic()
        timings = getattr(prediction, "timings", None) or {}
        self.stats_collector.inferred(frame.seq, t0, t1, timings.get("inference"))
        if smooth:
            prediction = self._smooth(prediction, settings)
        return Result(frame.seq, frame.t_enter, prediction, overlay, epoch)

    def _smooth(self, prediction, settings: OverlaySettings):
        if settings.smoothing <= 1:
            return prediction
        if self._smoother is None:
            from polypview.inference.runtime.engine import TemporalSmoother

            self._smoother = TemporalSmoother(settings.smoothing)
        return self._smoother(prediction)

    def _engine_failed(self, engine, exc: Exception) -> None:
        """Report a failing model once and carry on showing video without it."""
        with self._lock:
            if id(engine) in self._failed_engines:  # sync workers running side by side may both fail
                return
            self._failed_engines.add(id(engine))
            if self._engine is engine:
                self._engine = None
        error = exc if isinstance(exc, PolypviewError) else PolypviewError(
            f"model {getattr(engine, 'name', '?')} failed on a frame ({exc}); showing video without the overlay")
        self._report_error(error)

    def _live_infer_loop(self) -> None:
        while not self._stop.is_set():
            frame = self._slot.take(POLL_S)
            if frame is None:
                if self._slot.closed:
                    return
                continue
            result = self._infer(frame)
            if result is not None:
                with self._lock:
                    if result.epoch == self._epoch:
                        self._results.append(result)
                self._wake.set()

    def _sync_infer_loop(self) -> None:
        while True:
            item = self._get(self._infer_q)
            if item is END:
                self._put_end(self._infer_q)  # the other workers stop too
                break
            order, frame = item
            # smoothing needs the frames in order: the presenter applies it
            if not self._put(self._present_q, (order, frame, self._infer(frame, smooth=False))):
                break
        self._put_end(self._present_q)

    # ------------------------------------------------------------------ presenter

    def _live_present_loop(self) -> None:
        shown: tuple[Frame, int | None] | None = None  # the frame on screen and the seq of its mask
        try:
            while not self._stop.is_set():
                self._wake.clear()  # before looking, so a frame or result arriving meanwhile is not missed
                try:
                    frame = self._display.get_nowait()
                except queue.Empty:
                    again = self._reshow(shown)
                    if again is None:
                        self._wake.wait(POLL_S)
                    else:
                        shown = again
                    continue
                if frame is END:
                    return
                self._record_held()
                result, stale = self._pick_result(frame)
                seq = self._present(frame, result, stale)
                shown = (frame, seq)
        finally:
            self._record_held()

    def _reshow(self, shown: tuple | None) -> tuple | None:
        """Show the frame on screen again if its own mask has come and no newer frame waits; the new state."""
        if shown is None or not self.config.reshow:
            return None
        frame, overlay_seq = shown
        if overlay_seq == frame.seq:
            return None
        with self._lock:
            epoch, enabled = self._epoch, self._settings.enabled
            own = next((r for r in reversed(self._results) if r.seq == frame.seq and r.epoch == epoch), None)
        if own is None or not enabled or not self._display.empty():
            return None  # a frame waiting in the queue will carry this mask now anyway
        return frame, self._present(frame, own, stale=False, reshown=True)

    def _sync_present_loop(self) -> None:
        waiting: dict[int, tuple] = {}  # results that overtook an earlier frame, by entry order
        next_order, ended = 0, 0
        while ended < self._workers():
            item = self._get(self._present_q)
            if item is END:
                ended += 1
                if self._stop.is_set():
                    return
                continue
            waiting[item[0]] = item[1:]
            while next_order in waiting:
                frame, result = waiting.pop(next_order)
                next_order += 1
                if result is not None:
                    with self._lock:
                        settings = self._settings
                    result.prediction = self._smooth(result.prediction, settings)
                self._present(frame, result, stale=result is None and self._engine is not None, block=True)

    def _pick_result(self, frame: Frame) -> tuple[Result | None, bool]:
        """Newest result from this epoch with seq <= frame.seq, if its frame entered within the staleness limit."""
        with self._lock:
            engine, epoch = self._engine, self._epoch
            candidates = [r for r in self._results if r.seq <= frame.seq and r.epoch == epoch]
        if engine is None:
            return None, False
        if not candidates:
            return None, True
        newest = candidates[-1]
        if time.monotonic() - newest.t_enter > self.config.staleness_s:
            return None, True
        return newest, False

    def _present(self, frame: Frame, result: Result | None, stale: bool, block: bool = False,
                 reshown: bool = False) -> int | None:
        """Draw and hand a frame to the sink (and recorder); the seq of the mask drawn, or None."""
        with self._lock:
            settings, overlay, recorder = self._settings, self._overlay, self._recorder
        if result is not None:
            overlay = result.overlay
        if not settings.enabled:
            result, stale = None, False
        image = frame.image
        if overlay is not None and settings.enabled:
            image = overlay.draw(frame.image, result.prediction if result else None, settings, self._roi)
        overlay_seq = result.seq if result is not None else None
        if reshown:
            self.stats_collector.reshown(frame.seq, time.monotonic(), overlay_seq)
        else:
            self.stats_collector.presented(frame.seq, time.monotonic(), overlay_seq, stale)
        stats = self.stats()
        if self.sink is not None:
            prediction = result.prediction if result is not None else None
            self.sink.on_frame(Presented(frame.seq, image, frame.image, overlay_seq, stale, stats, frame.pts, reshown,
                                         prediction))
        if block or not self.config.reshow:
            if recorder is not None:
                self._record(recorder, frame.seq, image, stats, block)
        else:
            self._held = (frame.seq, image, stats)  # recorded when the next frame comes (or at the end)
        return overlay_seq

    def _record_held(self) -> None:
        """Queue the frame shown last, in its last shown form, for the recorder (live mode)."""
        held, self._held = self._held, None
        with self._lock:
            recorder = self._recorder
        if held is not None and recorder is not None:
            self._record(recorder, *held, block=False)

    def _record(self, recorder: Recorder, seq: int, image: np.ndarray, stats: Stats, block: bool) -> None:
        if recorder.failed or (not block and recorder.full):
            recorder.count_drop()  # skip the conversion: the frame could not be queued anyway
            self.stats_collector.drop("record", seq)
            return
        hud = stats.hud_lines() if recorder.include_hud else []
        # sync: convert here, a stage of its own beside the encoder; live: keep the display path light
        item = RecordItem(seq, recorder.convert(image), hud) if block else RecordItem(seq, None, hud, bgr=image)
        if not recorder.submit(item, block=block, stop=self._stop):
            self.stats_collector.drop("record", seq)

    # ------------------------------------------------------------------ the end

    def _finish(self, interrupted: bool, timeout: float = 5.0) -> Summary:
        """Finalise the recording and metrics, call on_finished once; later calls return the same summary."""
        if not self._finish_lock.acquire(timeout=timeout + 2.0):
            # another thread is finalising (its recorder close is bounded too): do not wait for it
            return self._summary or self._build_summary(interrupted)
        try:
            if self._summary is not None:
                return self._summary
            self.stats_collector.t_end = time.monotonic()
            try:
                self.stop_recording(timeout)
            except Exception as exc:  # the summary and on_finished must come whatever happened
                self._report_error(OutputError(f"finalising the recording failed: {exc}"))
            summary = self._build_summary(interrupted)
            self._write_metrics(summary)
            self._summary = summary
        finally:
            self._finish_lock.release()
        self._done.set()
        if self.sink is not None:
            self.sink.on_finished(summary)
        return summary

    def _build_summary(self, interrupted: bool) -> Summary:
        engine = self._engine
        report = self._recording_reports[-1] if self._recording_reports else None
        return self.stats_collector.summary(
            mode=self.config.mode, source=self.source.name, decode_errors=self.source.errors,
            model=str(getattr(engine, "name", "") or ""), backend=str(getattr(engine, "backend", "") or ""),
            provider=str(getattr(engine, "provider", "") or ""), recording=report,
            metrics_path=self.config.metrics_path, errors=list(self._errors), interrupted=interrupted,
        )

    def _write_metrics(self, summary: Summary) -> None:
        if not self.config.metrics_path:
            return
        try:
            self.stats_collector.write_csv(Path(self.config.metrics_path))
        except OSError as exc:
            error = OutputError(f"cannot write metrics to {self.config.metrics_path}: {exc.strerror or exc}")
            summary.errors.append(error)
            self._report_error(error)
