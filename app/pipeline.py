"""The video pipeline: the stages of `stages.py` composed into one of two plans, run in threads, with counted drops.

live (`live_plan`): the reader paces files to their own frame rate and hands every frame to the bounded
  display queue and to the latest-frame slot; the inference worker always takes the newest frame
  (skipped frames are counted as "inference" drops, never dropped from display); the presenter draws
  each frame with the newest result that is not from the future and not older than the staleness
  limit and hands it to the sink at once; when the frame's own mask comes while it is still the newest
  frame (a model faster than the frame interval), the frame is shown again with it ("re-show"), so the
  mask is on screen as soon as it exists instead of one frame later. Each frame reaches the recorder
  once, in its last shown form, when the next one comes (at once without re-show).
every frame (`every_frame_plan`, mode "sync"): every frame is inferred and drawn with its own mask; the
  stages still run in their own threads (decode | infer x N | draw+convert | encode) and every hand-off
  blocks, so nothing is dropped; results are put back in entry order before drawing.
Each stage only waits with timeouts on a shared stop event, so `stop()` never hangs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from polypview.defaults import STALENESS_MS
from polypview.errors import ConfigError, OutputError, PolypviewError
from polypview.overlay import OverlaySettings
from polypview.present import Drawer, LivePresenter, OrderedPresenter, RecordTap
from polypview.protocols import Engine, Presented, Sink, Source
from polypview.recorder import RecordingReport, check_output_path
from polypview.registry import Registry
from polypview.stages import Control, Inferer, InOrder, LatestSlot, ModelState, Pacer, Reader, SlotAndDisplay
from polypview.stats import Stats, StatsCollector, Summary

__all__ = ["MODES", "LatestSlot", "Pacer", "Pipeline", "PipelineConfig", "Presented", "Sink"]

MODES = ("live", "sync")


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
    roi: bool | tuple[int, int, int, int] = True  # find (and re-check) the endoscope's image area; False: the
    # whole frame; (x, y, w, h): this area, in frame pixels
    reshow: bool = True  # live: show a frame again when its own mask comes before the next frame

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown pipeline mode {self.mode!r}; valid modes: {', '.join(MODES)}")
        if self.staleness_s <= 0:
            raise ConfigError(f"the staleness limit must be positive, got {self.staleness_s * 1000:.0f} ms")


@dataclass
class Parts:
    """What every plan builds on (made once per pipeline)."""

    source: Source
    config: PipelineConfig
    control: Control
    state: ModelState
    stats: StatsCollector
    tap: RecordTap
    drawer: Drawer


@dataclass
class Plan:
    """The reader (seeks go to it) and the threads to run, by name; the last one finalises the pipeline."""

    reader: Reader
    threads: list[tuple[str, Callable[[], None]]]


def live_plan(p: Parts) -> Plan:
    """source -> (display queue, latest-frame slot); slot -> inference (newest frame only); display -> presenter."""
    handoff = SlotAndDisplay(p.control, p.stats, p.config.display_queue)
    pacer = Pacer() if p.config.realtime and not p.source.live else None
    reader = Reader(p.control, p.source, p.state, p.stats, handoff, pacer, p.config.max_frames)
    inferer = Inferer(p.control, p.state, p.stats)
    presenter = LivePresenter(p.control, p.state, p.drawer, p.tap, handoff, p.config.staleness_s, p.config.reshow)
    return Plan(reader, [
        ("source", reader.run),
        ("inference", partial(inferer.newest_loop, handoff.slot, handoff.wake)),
        ("presenter", presenter.run),
    ])


def every_frame_plan(p: Parts) -> Plan:
    """source -> ordered queue -> N inference workers -> presenter (back in order, blocking record tap)."""
    handoff = InOrder(p.control, p.config.sync_queue)
    results: queue.Queue = queue.Queue(maxsize=p.config.sync_queue)
    workers = max(1, int(p.config.sync_workers))
    reader = Reader(p.control, p.source, p.state, p.stats, handoff, None, p.config.max_frames)
    inferer = Inferer(p.control, p.state, p.stats)
    presenter = OrderedPresenter(p.control, p.state, p.drawer, p.tap, results, workers)
    infer = [(f"inference-{i}" if i else "inference", partial(inferer.ordered_loop, handoff.queue, results))
             for i in range(workers)]
    return Plan(reader, [("source", reader.run), *infer, ("presenter", presenter.run)])


PLANS: Registry[Callable[[Parts], Plan]] = Registry("pipeline mode", {"live": live_plan, "sync": every_frame_plan})


def _check_roi(roi, frame_size) -> None:
    """A given image area must lie inside the frame (when the source knows its size)."""
    if isinstance(roi, tuple) and frame_size and all(frame_size):
        x, y, w, h = roi
        if x + w > frame_size[0] or y + h > frame_size[1]:
            raise ConfigError(f"the image area {x},{y},{w},{h} (--roi) reaches outside the {frame_size[0]}x{frame_size[1]} frame")


class Pipeline:
    """Wires a Source, an engine (or None) and a Sink through the plan its config names."""

    def __init__(self, source: Source, engine: Engine | None, config: PipelineConfig | None = None,
                 sink: Sink | None = None):
        self.source = source
        self.config = config or PipelineConfig()
        _check_roi(self.config.roi, source.size)
        self.sink = sink
        self.stats_collector = StatsCollector(keep_records=self.config.metrics_path is not None)
        self._control = Control(sink.on_error if sink is not None else None)
        self._state = ModelState(engine, find_roi=self.config.roi)
        self._tap = RecordTap(self._control, self.stats_collector, source.fps, source.size, self.config.record_queue)
        drawer = Drawer(self._state, self.stats_collector, self.stats, sink)
        parts = Parts(source, self.config, self._control, self._state, self.stats_collector, self._tap, drawer)
        self._plan = PLANS[self.config.mode](parts)
        self._done = threading.Event()
        self._finish_lock = threading.Lock()
        self._summary: Summary | None = None
        self._threads: list[threading.Thread] = []
        self._prepare_outputs()

    def _prepare_outputs(self) -> None:
        """Check output paths before any processing (OutputError now, not halfway through)."""
        if self.config.metrics_path:
            check_output_path(self.config.metrics_path, what="metrics")
        if self.config.record_path:
            self.start_recording(self.config.record_path, include_hud=self.config.record_hud)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Start the plan's threads."""
        if self._threads:
            raise ConfigError("the pipeline is already started")
        last = len(self._plan.threads) - 1
        for i, (name, target) in enumerate(self._plan.threads):
            thread = threading.Thread(target=self._guard(target, finishes=i == last), name=f"polypview-{name}",
                                      daemon=True)
            self._threads.append(thread)
        self.stats_collector.t_start = time.monotonic()
        for thread in self._threads:
            thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the input ended (or the pipeline was stopped) and everything is finalised."""
        return self._done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> Summary:
        """Stop every stage within `timeout` seconds, finalise the recording and return the summary."""
        deadline = time.monotonic() + timeout
        interrupted = not self._done.is_set()
        self._control.stop_all()
        join_until = time.monotonic() + timeout / 2  # the other half is for finalising the recording
        for thread in self._threads:
            thread.join(max(0.0, join_until - time.monotonic()))
        return self._finish(interrupted=interrupted, timeout=max(0.5, deadline - time.monotonic() - 0.5))

    @property
    def paused(self) -> bool:
        return not self._control.running.is_set()

    def pause(self) -> None:
        """Stop reading the source (the current frame stays on screen)."""
        self._control.running.clear()

    def resume(self) -> None:
        self._control.running.set()

    def seek(self, seconds: float) -> None:
        """Jump in a file (done by the source thread before its next read)."""
        if not self.source.seekable:
            raise ConfigError(f"{self.source.name} cannot seek (a live capture)")
        self._plan.reader.request_seek(seconds)

    # ------------------------------------------------------------------ model and overlay

    def set_overlay(self, settings: OverlaySettings) -> None:
        """New overlay settings, applied from the next frame."""
        self._state.set_overlay(settings)

    def set_engine(self, engine: Engine | None) -> None:
        """Swap the model; results of the old one are no longer drawn."""
        self._state.set_engine(engine)

    def set_roi(self, roi: bool | tuple[int, int, int, int]) -> None:
        """Where the endoscope's image lies, from the next frame: X,Y,W,H in frame pixels, True (find it,
        as --roi auto) or False (the whole frame); ConfigError for an area outside the frame."""
        _check_roi(roi, self.source.size)
        self._state.set_roi(roi)

    @property
    def roi(self) -> tuple[int, int, int, int] | None:
        """The image area in use (None: the whole frame, or not found yet)."""
        return self._state.roi

    @property
    def engine(self) -> Engine | None:
        return self._state.engine

    # ------------------------------------------------------------------ recording and statistics

    @property
    def recording(self) -> bool:
        """A recording is running: started, not stopped, and not given up (disk full...)."""
        recorder = self._tap.recorder
        return recorder is not None and not recorder.failed

    def start_recording(self, path, include_hud: bool = False) -> None:
        """Record presented frames to an MP4 (OutputError if the path cannot be written)."""
        self._tap.start(path, include_hud)

    def stop_recording(self, timeout: float = 5.0) -> RecordingReport | None:
        """Stop recording and finalise the file; None when not recording."""
        return self._tap.stop(timeout)

    def stats(self) -> Stats:
        """A snapshot for the HUD (thread-safe)."""
        return self.stats_collector.snapshot(self._state.engine, self.recording, self.source.errors)

    # ------------------------------------------------------------------ the end

    def _guard(self, target: Callable[[], None], finishes: bool) -> Callable[[], None]:
        """Run a stage; an unexpected exception is reported once and stops the pipeline cleanly."""
        def run():
            try:
                target()
            except PolypviewError as exc:
                self._control.report(exc)
                self._control.stop.set()
            except Exception as exc:  # a bug must not leave other threads waiting forever
                self._control.report(PolypviewError(f"internal error in {threading.current_thread().name}: {exc!r}"))
                self._control.stop.set()
            finally:
                if finishes:
                    self._finish(interrupted=self._control.stop.is_set())
        return run

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
                self._control.report(OutputError(f"finalising the recording failed: {exc}"))
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
        engine = self._state.engine
        reports = self._tap.reports
        return self.stats_collector.summary(
            mode=self.config.mode, source=self.source.name, decode_errors=self.source.errors,
            model=engine.name if engine else "", backend=engine.backend if engine else "",
            provider=engine.provider if engine else "", recording=reports[-1] if reports else None,
            metrics_path=self.config.metrics_path, errors=list(self._control.errors), interrupted=interrupted,
        )

    def _write_metrics(self, summary: Summary) -> None:
        if not self.config.metrics_path:
            return
        try:
            self.stats_collector.write_csv(Path(self.config.metrics_path))
        except OSError as exc:
            error = OutputError(f"cannot write metrics to {self.config.metrics_path}: {exc.strerror or exc}")
            summary.errors.append(error)
            self._control.report(error)
