"""Per-frame timestamps, latency percentiles, the HUD snapshot, the run summary and the metrics CSV.

The latency terms are product.md's, computed here and nowhere else:
  inference time    tensor ready -> output ready (the model alone, the engine's "inference" timing)
  annotation delay  frame entered the app -> its mask on screen (first frame drawn with it, or the frame
                    itself shown again with its own mask: see Pipeline's live re-show)
  video delay       frame entered the app -> the frame itself on screen
  staleness         frame the shown mask came from entered the app -> now (when shown)
"""

from __future__ import annotations

import csv
import math
import threading
import time
from array import array
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

WINDOW = 300  # frames in the rolling windows behind the HUD
FPS_WINDOW_S = 1.0  # the HUD's frame rates count the last second
SNAPSHOT_EVERY_S = 0.25  # the HUD snapshot is recomputed at most this often
RECENT_RECORDS = 2048  # frames kept for look-ups when not every record is kept (hours of live video)
LATENCIES = ("inference", "annotation", "recorded_annotation", "video", "staleness")

CSV_COLUMNS = (
    "seq", "pts", "t_enter", "t_infer_start", "t_infer_end", "inference_ms", "t_presented", "t_recorded",
    "overlay_seq", "stale", "video_delay_ms", "annotation_delay_ms", "recorded_annotation_delay_ms",
    "staleness_ms", "dropped", "t_reshown",
)


class FrameRecord:
    """Timestamps (time.monotonic seconds) of one frame through the stages; None = did not happen."""

    __slots__ = ("seq", "pts", "t_enter", "t_infer_start", "t_infer_end", "inference_s", "t_presented",
                 "t_recorded", "overlay_seq", "stale", "t_annotated", "t_annotated_recorded", "dropped",
                 "t_reshown")

    def __init__(self, seq: int, pts: float, t_enter: float):
        self.seq, self.pts, self.t_enter = seq, pts, t_enter
        self.t_infer_start: float | None = None
        self.t_infer_end: float | None = None
        self.inference_s: float | None = None
        self.t_presented: float | None = None
        self.t_recorded: float | None = None
        self.overlay_seq: int | None = None
        self.t_reshown: float | None = None
        self.t_annotated: float | None = None
        self.t_annotated_recorded: float | None = None
        self.stale = False
        self.dropped = ""


@dataclass
class Percentiles:
    """min/p50/p95/p99/max of a latency in milliseconds, over `count` values."""

    count: int = 0
    min: float = float("nan")
    p50: float = float("nan")
    p95: float = float("nan")
    p99: float = float("nan")
    max: float = float("nan")

    @classmethod
    def of(cls, seconds) -> Percentiles:
        """Percentiles of a sequence of durations in seconds."""
        values = np.asarray(seconds, np.float64) * 1000.0
        if values.size == 0:
            return cls()
        p = np.percentile(values, [50, 95, 99])
        return cls(int(values.size), float(values.min()), float(p[0]), float(p[1]), float(p[2]), float(values.max()))

    def line(self) -> str:
        """`min/p50/p95/p99/max` in ms, or "n/a"."""
        if not self.count:
            return "n/a"
        return f"min {self.min:.1f}  p50 {self.p50:.1f}  p95 {self.p95:.1f}  p99 {self.p99:.1f}  max {self.max:.1f} ms"


@dataclass
class Stats:
    """A snapshot for the HUD (thread-safe to read: a fresh object each time)."""

    display_fps: float = 0.0
    inference_fps: float = 0.0
    inference_ms: float = float("nan")
    annotation_delay_p50_ms: float = float("nan")
    annotation_delay_p95_ms: float = float("nan")
    drops: dict[str, int] = field(default_factory=dict)
    frames_shown: int = 0
    masks_shown: int = 0
    model: str = ""
    backend: str = ""
    provider: str = ""
    recording: bool = False
    video_delay_p50_ms: float = float("nan")
    decode_errors: int = 0

    def hud_lines(self, gui_superseded: int = 0, stale: bool = False, masks_off: bool = False) -> list[str]:
        """The HUD text (the window's readout, and the text --record-hud burns into recordings)."""
        return hud_lines(self, gui_superseded, stale, masks_off)


def _num(value, fmt: str = "{:.1f}") -> str:
    """A number for the HUD; '–' for missing or not-a-number values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fmt.format(value)


def hud_lines(stats: Stats | None, gui_superseded: int = 0, stale: bool = False, masks_off: bool = False) -> list[str]:
    """The one HUD wording. Display drops (frames never shown: the ones that matter) are kept apart from
    skipped inferences (the model works on the newest frame and skips older ones: harmless). `masks_off`:
    the user switched the masks off (the model may still run; nothing is drawn)."""
    if stats is None:
        return ["waiting for video…"]
    engine = f"{stats.model} · {stats.backend} {stats.provider}".rstrip() if stats.model else "no model (video only)"
    drops = dict(stats.drops or {})
    display = drops.pop("display", 0) + gui_superseded
    skipped = drops.pop("inference", 0)
    lines = [
        engine,
        f"display {_num(stats.display_fps)} fps · inference {_num(stats.inference_fps)} fps, "
        f"{_num(stats.inference_ms)} ms",
        f"annotation delay p50 {_num(stats.annotation_delay_p50_ms, '{:.0f}')} ms"
        f" · p95 {_num(stats.annotation_delay_p95_ms, '{:.0f}')} ms",
        f"display drops {display} · inferences skipped {skipped}"
        + "".join(f" · {name} drops {n}" for name, n in sorted(drops.items()) if n),
    ]
    if stats.decode_errors:
        lines.append(f"bad packets skipped {stats.decode_errors}")
    if masks_off:
        lines.append("MASKS OFF (M shows them)")
    elif stale:
        lines.append("no mask: the newest is older than the staleness limit")
    return lines


@dataclass
class Summary:
    """What a run did, with latency percentiles; `text()` is the headless summary."""

    mode: str = "live"
    source: str = ""
    frames_read: int = 0
    frames_shown: int = 0
    frames_inferred: int = 0
    masks_shown: int = 0
    stale_frames: int = 0
    frames_reshown: int = 0  # live: frames shown again once their own mask came (Pipeline's re-show)
    duration_s: float = 0.0
    drops: dict[str, int] = field(default_factory=dict)
    decode_errors: int = 0
    inference: Percentiles = field(default_factory=Percentiles)
    annotation_delay: Percentiles = field(default_factory=Percentiles)
    recorded_annotation_delay: Percentiles = field(default_factory=Percentiles)
    video_delay: Percentiles = field(default_factory=Percentiles)
    staleness: Percentiles = field(default_factory=Percentiles)
    model: str = ""
    backend: str = ""
    provider: str = ""
    recording: Any = None  # RecordingReport or None
    metrics_path: Path | None = None
    errors: list = field(default_factory=list)  # PolypviewError instances, in order
    interrupted: bool = False

    @property
    def fps(self) -> float:
        """Frames shown per second of wall time."""
        return self.frames_shown / self.duration_s if self.duration_s > 0 else 0.0

    def text(self) -> str:
        """The multi-line summary printed at the end of a headless run."""
        shown = max(self.frames_shown, 1)
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.drops.items())) or "none"
        engine = f"{self.model} on {self.backend} ({self.provider})" if self.model else "none (video only)"
        lines = [
            f"source           {self.source}  [{self.mode} mode]",
            f"frames           {self.frames_shown} shown of {self.frames_read} read in {self.duration_s:.2f} s"
            f" = {self.fps:.1f} fps" + ("  (interrupted)" if self.interrupted else ""),
            f"drops            {drops}" + (f"; corrupt packets skipped {self.decode_errors}" if self.decode_errors else ""),
            f"masks shown      {self.masks_shown} frames ({100.0 * self.masks_shown / shown:.1f} %),"
            f" {self.stale_frames} without a fresh mask; {self.frames_inferred} frames inferred"
            + (f"; {self.frames_reshown} shown again with their own mask" if self.frames_reshown else ""),
            f"model            {engine}",
            f"inference        {self.inference.line()}",
            f"annotation delay {self.annotation_delay.line()}",
            f"video delay      {self.video_delay.line()}",
            f"staleness        {self.staleness.line()}",
        ]
        if self.recording is not None:
            lines.append(f"recorded         {self.recording.line()} (shown {self.frames_shown})")
            lines.append(f"  delay in file  {self.recorded_annotation_delay.line()}")
        if self.metrics_path:
            lines.append(f"metrics          {self.metrics_path}")
        if self.errors:  # the messages themselves go to stderr, one line each
            lines.append(f"errors           {len(self.errors)} (reported on stderr)")
        return "\n".join(lines)


def _delta(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else end - start


class StatsCollector:
    """Collects per-frame stage timestamps from the pipeline threads (one lock, tiny critical sections).

    With `keep_records` (needed for the metrics CSV) every frame's record is kept; otherwise only
    the recent ones, so that a day-long live session does not grow without bound. The summary's
    percentiles come from compact per-latency arrays either way: float32 seconds (a 2 ns step at
    30 ms), five values a frame, 2.2 MB an hour at 30 fps.
    """

    def __init__(self, keep_records: bool = True):
        self._lock = threading.Lock()
        self._keep = keep_records
        self._frames: OrderedDict[int, FrameRecord] = OrderedDict()
        self._all: list[FrameRecord] = []
        self._latency = {name: array("f") for name in LATENCIES}
        self.drops: dict[str, int] = {}
        self._shown_times: deque[float] = deque(maxlen=WINDOW)
        self._infer_times: deque[float] = deque(maxlen=WINDOW)
        self._infer_ms: deque[float] = deque(maxlen=30)
        self._annotation: deque[float] = deque(maxlen=WINDOW)
        self._video: deque[float] = deque(maxlen=WINDOW)
        self.frames_read = self.frames_shown = self.masks_shown = self.frames_inferred = self.stale_frames = 0
        self.frames_reshown = 0
        self._snapshot: Stats | None = None
        self._snapshot_time = 0.0
        self.t_start = time.monotonic()
        self.t_end: float | None = None

    def entered(self, seq: int, pts: float, t_enter: float) -> None:
        """A frame entered the application."""
        record = FrameRecord(seq, pts, t_enter)
        with self._lock:
            self.frames_read += 1
            self._frames[seq] = record
            if self._keep:
                self._all.append(record)
            elif len(self._frames) > RECENT_RECORDS:
                self._frames.popitem(last=False)

    def drop(self, kind: str, seq: int | None = None) -> None:
        """Count a drop by name ("inference", "display", "record"...)."""
        with self._lock:
            self.drops[kind] = self.drops.get(kind, 0) + 1
            record = self._frames.get(seq) if seq is not None else None
            if record is not None:
                record.dropped = f"{record.dropped}+{kind}" if record.dropped else kind

    def inferred(self, seq: int, t_start: float, t_end: float, inference_s: float | None) -> None:
        """The inference worker finished a frame."""
        with self._lock:
            record = self._frames.get(seq)
            if record is not None:
                record.t_infer_start, record.t_infer_end, record.inference_s = t_start, t_end, inference_s
            self.frames_inferred += 1
            self._infer_times.append(t_end)
            model_s = inference_s if inference_s is not None else t_end - t_start
            self._infer_ms.append(1000.0 * model_s)
            self._latency["inference"].append(model_s)

    def presented(self, seq: int, t: float, overlay_seq: int | None, stale: bool) -> None:
        """A frame reached the sink, with the mask of frame `overlay_seq` (or none)."""
        with self._lock:
            record = self._frames.get(seq)
            if record is None:
                return
            record.t_presented, record.overlay_seq, record.stale = t, overlay_seq, stale
            self.frames_shown += 1
            self.stale_frames += stale
            self._shown_times.append(t)
            self._video.append(t - record.t_enter)
            self._latency["video"].append(t - record.t_enter)
            if overlay_seq is not None:
                self.masks_shown += 1
                self._mask_on_screen(overlay_seq, t)

    def reshown(self, seq: int, t: float, overlay_seq: int) -> None:
        """A frame already shown reached the sink again, now with the mask of frame `overlay_seq`."""
        with self._lock:
            record = self._frames.get(seq)
            if record is None or record.t_presented is None:
                return
            if record.overlay_seq is None:
                self.masks_shown += 1
                self.stale_frames -= record.stale
                record.stale = False
            record.overlay_seq, record.t_reshown = overlay_seq, t
            self.frames_reshown += 1
            self._mask_on_screen(overlay_seq, t)

    def _mask_on_screen(self, overlay_seq: int, t: float) -> None:
        """Staleness of a mask now shown, and its annotation delay the first time (lock held)."""
        source = self._frames.get(overlay_seq)
        if source is None:
            return
        self._latency["staleness"].append(t - source.t_enter)
        if source.t_annotated is None:
            source.t_annotated = t
            self._annotation.append(t - source.t_enter)
            self._latency["annotation"].append(t - source.t_enter)

    def recorded(self, seq: int, t: float) -> None:
        """The recorder wrote a frame."""
        with self._lock:
            record = self._frames.get(seq)
            if record is None:
                return
            record.t_recorded = t
            source = self._frames.get(record.overlay_seq) if record.overlay_seq is not None else None
            if source is not None and source.t_annotated_recorded is None:
                source.t_annotated_recorded = t
                self._latency["recorded_annotation"].append(t - source.t_enter)

    def snapshot(self, engine=None, recording: bool = False, decode_errors: int = 0) -> Stats:
        """The HUD's numbers over the rolling windows; recomputed at most every SNAPSHOT_EVERY_S."""
        now = time.monotonic()
        cached = self._snapshot
        if cached is not None and now - self._snapshot_time < SNAPSHOT_EVERY_S and cached.recording == recording:
            return cached
        with self._lock:
            annotation = Percentiles.of(list(self._annotation))
            stats = Stats(
                display_fps=_rate(self._shown_times, now),
                inference_fps=_rate(self._infer_times, now),
                inference_ms=float(np.median(self._infer_ms)) if self._infer_ms else float("nan"),
                annotation_delay_p50_ms=annotation.p50,
                annotation_delay_p95_ms=annotation.p95,
                drops=dict(self.drops),
                frames_shown=self.frames_shown,
                masks_shown=self.masks_shown,
                recording=recording,
                video_delay_p50_ms=float(np.median(self._video)) * 1000 if self._video else float("nan"),
                decode_errors=decode_errors,
            )
        stats.model, stats.backend, stats.provider = _engine_names(engine)
        self._snapshot, self._snapshot_time = stats, now
        return stats

    def latency_since(self, name: str, start: int) -> tuple[np.ndarray, int]:
        """The `name` latencies (s) recorded since the `start`-th, and where the next call starts."""
        with self._lock:
            values = self._latency[name]
            return np.array(values[start:], np.float64), len(values)

    def records(self) -> list[FrameRecord]:
        """The kept frame records, in seq order (all of them with keep_records)."""
        with self._lock:
            return list(self._all) if self._keep else list(self._frames.values())

    def summary(self, **fields) -> Summary:
        """The run summary over every frame."""
        with self._lock:
            latency = {name: Percentiles.of(values) for name, values in self._latency.items()}
            summary = Summary(
                frames_read=self.frames_read, frames_shown=self.frames_shown, frames_inferred=self.frames_inferred,
                masks_shown=self.masks_shown, stale_frames=self.stale_frames, frames_reshown=self.frames_reshown,
                drops=dict(self.drops),
                duration_s=(self.t_end or time.monotonic()) - self.t_start,
                inference=latency["inference"], annotation_delay=latency["annotation"],
                recorded_annotation_delay=latency["recorded_annotation"], video_delay=latency["video"],
                staleness=latency["staleness"],
            )
        for key, value in fields.items():
            setattr(summary, key, value)
        return summary

    def write_csv(self, path: Path) -> None:
        """One row per frame: seq, stage timestamps (seconds since the first frame entered) and delays (ms)."""
        records = self.records()
        t0 = records[0].t_enter if records else 0.0
        by_seq = {r.seq: r for r in records}
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for r in records:
                writer.writerow(_csv_row(r, t0, by_seq))


def _staleness(r: FrameRecord, by_seq: dict[int, FrameRecord]) -> float | None:
    source = by_seq.get(r.overlay_seq) if r.overlay_seq is not None else None
    shown = r.t_reshown if r.t_reshown is not None else r.t_presented  # when this mask went on screen
    return _delta(shown, source.t_enter) if source is not None else None


def _csv_row(r: FrameRecord, t0: float, by_seq: dict) -> list:
    def sec(t):
        return "" if t is None else f"{t - t0:.6f}"

    def ms(d):
        return "" if d is None else f"{1000 * d:.3f}"

    return [
        r.seq, f"{r.pts:.6f}", sec(r.t_enter), sec(r.t_infer_start), sec(r.t_infer_end), ms(r.inference_s),
        sec(r.t_presented), sec(r.t_recorded), "" if r.overlay_seq is None else r.overlay_seq, int(r.stale),
        ms(_delta(r.t_presented, r.t_enter)), ms(_delta(r.t_annotated, r.t_enter)),
        ms(_delta(r.t_annotated_recorded, r.t_enter)), ms(_staleness(r, by_seq)), r.dropped, sec(r.t_reshown),
    ]


def _rate(times: deque, now: float) -> float:
    """Events per second over the last FPS_WINDOW_S (from the newest events' spacing)."""
    recent = [t for t in times if now - t <= FPS_WINDOW_S]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


def _engine_names(engine) -> tuple[str, str, str]:
    if engine is None:
        return "", "", ""
    return engine.name, engine.backend, engine.provider
