"""`polypview bench --soak MINUTES`: the live pipeline, recording, for a long time, watched as it runs.

A tower runs the viewer through whole lists of procedures. The short bench runs cannot show what only
time shows: memory that grows, threads or open files that pile up, a delay that creeps, a recorder that
falls behind. The soak plays one clip again and again (its timestamps keep rising, so the pacing and the
recording see one endless video), live, with the overlay and an H.264 recording, and samples the process
every few seconds: resident memory, threads, open files, frames shown and dropped, and the annotation
delay of the masks drawn since the previous sample. Between samples it reads the resident memory every second
and keeps the least reading: frames in flight lift a single reading by a frame or two (6 MB at 1080p), what the
process keeps lifts that floor. It prints one row per sample and its targets:

  display drops = 0 and no recorded frame lost (as the live targets);
  each sample's annotation delay p99 <= the live target (80 ms), after the first sample (the start): no creep;
  resident memory grows <= 20 MB an hour (least-squares slope of the floors after the first fifth of the run: start-up
  allocations and caches settle there), a 12-hour day then costs under a quarter of a gigabyte; judged
  from 10 minutes on (a shorter slope is the allocator's jitter);
  threads and open files: the most in the last fifth of the samples no more than the most in the first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from polypview.errors import DisplayError
from polypview.sources import FileSource, Source

RSS_GROWTH_MB_PER_H = 20.0  # target: resident memory growth after warm-up
SETTLE_SHARE = 0.2  # the first fifth of the samples is start-up, left out of the slope
MIN_GROWTH_MINUTES = 10.0  # a slope over a shorter run is the allocator's jitter, not a trend: not judged
MIN_GROWTH_SPAN_S = 0.75 * 60 * MIN_GROWTH_MINUTES  # what the samples after the settling fifth then span, at least
MIN_SAMPLE_S, MAX_SAMPLES = 2.0, 60  # samples every run-length / 60 s, at least every 2 s
WINDOW_GRACE_S = 120.0  # the window soak's child is killed this long after its run should have ended
WATCH_S = 1.0  # resident memory is read this often between samples (its floor is what grows with a leak)


class LoopSource(Source):
    """A video file played again and again; presentation times keep rising across the restarts."""

    def __init__(self, path: str | Path):
        super().__init__()
        self._file = FileSource(path)
        self.fps, self.size, self.name = self._file.fps, self._file.size, self._file.name
        self.loops = 0  # restarts so far
        self._offset = 0.0  # added to the file's own pts since the last restart
        self._last = -1.0 / self.fps  # the last pts handed out

    @property
    def errors(self) -> int:  # the file's skipped packets, over every pass
        return self._file.errors

    def _next_image(self) -> tuple[np.ndarray, float] | None:
        item = self._file._next_image()
        if item is None:
            self._file.seek(0.0)
            self.loops += 1
            self._offset = self._last + 1.0 / self.fps
            item = self._file._next_image()
            if item is None:
                return None
        image, pts = item
        self._last = self._offset + pts
        return image, self._last

    def close(self) -> None:
        self._file.close()


# ------------------------------------------------------------------------------------ sampling


def resident_mb() -> float | None:
    """This process's resident memory in MB; None where the platform does not say."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, AttributeError):
        pass
    try:
        import psutil  # Windows and macOS (installed with the batch extra's ray)

        return psutil.Process().memory_info().rss / 1e6
    except Exception:  # noqa: BLE001 (no psutil, or it cannot read this process: unknown)
        return None


def process_sample() -> dict:
    """Resident memory (MB), threads and open files of this process; None where the platform does not say."""
    threads = files = None
    try:
        threads = len(os.listdir("/proc/self/task"))
        files = len(os.listdir("/proc/self/fd"))
    except OSError:
        try:
            import psutil

            proc = psutil.Process()
            threads = proc.num_threads()
            files = proc.num_handles() if sys.platform == "win32" else proc.num_fds()
        except Exception:  # noqa: BLE001 (no psutil, or it cannot read this process: the figures stay unknown)
            pass
    return {"rss_mb": resident_mb(), "threads": threads, "open_files": files}


def growth_per_hour(times_s: list[float], values: list[float | None],
                    min_span_s: float = MIN_GROWTH_SPAN_S) -> tuple[float, float] | None:
    """(least-squares slope of `values` against time per hour, twice its standard error) after the first
    SETTLE_SHARE of the samples; None when those samples span less than `min_span_s`."""
    pairs = [(t, v) for t, v in zip(times_s, values) if v is not None]
    pairs = pairs[int(len(pairs) * SETTLE_SHARE):]
    if len(pairs) < 4 or pairs[-1][0] - pairs[0][0] < min_span_s:
        return None
    t, v = np.array(pairs, np.float64).T
    coef, cov = np.polyfit(t, v, 1, cov="unscaled")
    residual = v - np.polyval(coef, t)
    variance = float(residual @ residual) / (len(t) - 2)
    return float(coef[0] * 3600.0), float(2.0 * np.sqrt(max(cov[0, 0] * variance, 0.0)) * 3600.0)


def _part_ms(p: dict) -> float | None:
    value = p.get("p99")
    return None if value is None or value != value else float(value)  # NaN: no frame


def _ms(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q) * 1000.0) if values.size else None


class Sampler:
    """One row every call: this process's memory, threads and files, and the pipeline's frames, drops and
    annotation delays since the previous call (the headless soak and the window's soak probe both use it)."""

    def __init__(self, collector, source: LoopSource):
        self.collector, self.source = collector, source
        self.samples: list[dict] = []
        self._mark = self._shown = 0
        self._seq = -1  # the last frame whose delay parts were counted
        self._drops: dict[str, int] = {}
        self._floor: float | None = None  # the least resident memory read since the last row

    def watch(self) -> None:
        """Read the resident memory between rows (every WATCH_S): the next row's `rss_floor_mb` is the least."""
        self._lower_floor(resident_mb())

    def _lower_floor(self, rss: float | None) -> None:
        if rss is not None and (self._floor is None or rss < self._floor):
            self._floor = rss

    def sample(self, t_s: float) -> dict:
        from polypview.benchruns import annotation_parts

        delays, self._mark = self.collector.latency_since("annotation", self._mark)
        shown, drops = self.collector.frames_shown, dict(self.collector.drops)
        # The pipeline keeps its recent frames' records (seconds of them): enough for the frames since the last sample.
        records = [r for r in self.collector.records() if r.seq > self._seq]
        parts = annotation_parts(records)
        now = process_sample()
        self._lower_floor(now["rss_mb"])
        row = {"t_s": t_s, **now, "rss_floor_mb": self._floor, "frames_shown": shown - self._shown,
               "display_drops": drops.get("display", 0) - self._drops.get("display", 0),
               "record_drops": drops.get("record", 0) - self._drops.get("record", 0),
               "annotation_p50_ms": _ms(delays, 50), "annotation_p99_ms": _ms(delays, 99),
               "parts_p99_ms": {name: _part_ms(p) for name, p in parts.items()},
               "loops": self.source.loops}
        self._shown, self._drops, self._floor = shown, drops, None
        self._seq = max((r.seq for r in records if r.t_annotated is not None), default=self._seq)
        self.samples.append(row)
        return row


def sample_every(minutes: float) -> float:
    """Seconds between samples for a soak of `minutes`."""
    return max(MIN_SAMPLE_S, minutes * 60.0 / MAX_SAMPLES)


def soak(path: Path, engine, settings, minutes: float, record: Path | None, log=None) -> dict:
    """Run the live pipeline on `path` in a loop for `minutes`, sampling as it goes; the soak's result dict."""
    from polypview.pipeline import Pipeline, PipelineConfig
    from polypview.sinks import HeadlessSink

    duration, every = minutes * 60.0, sample_every(minutes)
    source = LoopSource(path)
    pipeline = Pipeline(source, engine, PipelineConfig(mode="live", record_path=record), HeadlessSink())
    pipeline.set_overlay(settings)
    sampler = Sampler(pipeline.stats_collector, source)
    try:
        t0 = time.monotonic()
        pipeline.start()
        ended = False
        while not ended and time.monotonic() - t0 < duration:
            due = min(t0 + duration, t0 + every * (len(sampler.samples) + 1))
            while not ended and time.monotonic() < due:
                ended = pipeline.wait(min(WATCH_S, max(0.0, due - time.monotonic())))
                sampler.watch()
            row = sampler.sample(time.monotonic() - t0)
            if log is not None:
                log(f"  soak {_clock(row['t_s'])}: {format_sample(row)}")
        summary = pipeline.stop()
    finally:
        source.close()
    return soak_result(sampler.samples, summary, record, duration, ended, source.loops)


def window_soak(path: Path, model: str | None, minutes: float, record: Path | None, folder: Path, log=None) -> dict:
    """The soak in the window: a child process (ui/probe.py, Qt offscreen unless QT_QPA_PLATFORM says) plays the
    clip in a loop through MainWindow, its bridge and its paints; its samples stream back as it runs."""
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    command = [sys.executable, "-m", "polypview.ui.probe", "soak", str(path), model or "", str(minutes),
               str(record) if record else ""]
    errors = folder / "window-soak.err"
    result = None
    with open(errors, "w") as err:
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        watchdog = threading.Timer(minutes * 60.0 + WINDOW_GRACE_S, child.kill)  # a hung window ends too
        watchdog.start()
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if line.startswith("SOAKSAMPLE ") and log is not None:
                    row = json.loads(line[len("SOAKSAMPLE "):])
                    log(f"  window soak {_clock(row['t_s'])}: {format_sample(row)}")
                elif line.startswith("SOAKRESULT "):
                    result = json.loads(line[len("SOAKRESULT "):])
            code = child.wait()
        finally:
            watchdog.cancel()
    if result is None:
        tail = (errors.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise DisplayError(f"the window soak failed (exit {code}): {tail} (--soak without --soak-window runs headless)")
    result["window"] = True
    return result


def soak_result(samples: list[dict], summary, record: Path | None, duration_s: float, ended: bool,
                loops: int) -> dict:
    """What the soak measured, with its growth figures."""
    from polypview.benchruns import file_frames

    times = [s["t_s"] for s in samples]
    result = {
        "minutes": duration_s / 60.0, "samples": samples, "loops": loops, "ended_early": bool(ended),
        "frames_shown": summary.frames_shown, "display_drops": int(summary.drops.get("display", 0)),
        "annotation_delay_ms": {"p50": summary.annotation_delay.p50, "p99": summary.annotation_delay.p99},
        # (slope, margin) or None: of the floors (the target's), and of the readings at the samples (for comparison)
        "rss_growth_mb_per_h": growth_per_hour(times, [s.get("rss_floor_mb") for s in samples]),
        "rss_growth_at_samples_mb_per_h": growth_per_hour(times, [s["rss_mb"] for s in samples]),
        "errors": [str(e) for e in summary.errors],
    }
    if record is not None:
        in_file = file_frames(record) if record.exists() and record.stat().st_size else 0
        report = summary.recording
        result.update({"frames_in_file": in_file, "recorded_lost": max(0, summary.frames_shown - in_file),
                       "record_finalised": bool(report and report.finalised),
                       "record_mb": record.stat().st_size / 1e6 if record.exists() else 0.0})
    return result


# ------------------------------------------------------------------------------------ report


def _clock(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{sec:02d}" if minutes >= 60 else f"{minutes}:{sec:02d}"


def _parts(s: dict) -> str:
    parts = s.get("parts_p99_ms") or {}
    return " / ".join("-" if parts.get(k) is None else f"{parts[k]:.0f}"
                      for k in ("wait_for_worker", "inference_worker", "wait_for_display"))


def format_sample(s: dict) -> str:
    def num(value, fmt):
        return "-" if value is None else fmt.format(value)

    return (f"rss {num(s['rss_mb'], '{:.0f}')} MB (floor {num(s.get('rss_floor_mb'), '{:.0f}')}), "
            f"threads {num(s['threads'], '{}')}, "
            f"files {num(s['open_files'], '{}')}, shown {s['frames_shown']}, drops {s['display_drops']} "
            f"display / {s['record_drops']} record, delay p50/p99 {num(s['annotation_p50_ms'], '{:.0f}')} / "
            f"{num(s['annotation_p99_ms'], '{:.0f}')} ms (parts' p99 {_parts(s)})")


def soak_targets(result: dict, delay_p99_ms: float) -> list[tuple[str, bool | None, str]]:
    """(target, passed or None when unmeasured, figure) for the soak."""
    samples = result["samples"]
    # The first sample holds the start (the window's model still loading, caches cold): the first-frame probe's.
    timed = [s for s in samples[1:] if s["annotation_p99_ms"] is not None]
    worst = max(timed, key=lambda s: s["annotation_p99_ms"], default=None)
    growth = result["rss_growth_mb_per_h"]
    fifth = max(1, len(samples) // 5)

    def no_more(key):
        # The most in the last fifth against the most in the first: short-lived threads come and go, a leak climbs.
        early = [s[key] for s in samples[:fifth] if s.get(key) is not None]
        late = [s[key] for s in samples[-fifth:] if s.get(key) is not None]
        if not early or not late:
            return None, "unknown"
        return max(late) <= max(early), f"{max(early)} -> {max(late)}"

    targets = [
        ("display drops = 0", result["display_drops"] == 0, str(result["display_drops"])),
        (f"each sample's annotation delay p99 <= {delay_p99_ms:g} ms (after the first)",
         None if worst is None else worst["annotation_p99_ms"] <= delay_p99_ms,
         "-" if worst is None else f"worst {worst['annotation_p99_ms']:.1f} at {_clock(worst['t_s'])}"),
        (f"resident memory (floor) growth <= {RSS_GROWTH_MB_PER_H:g} MB/h", *_growth_mark(growth)),
        ("threads: last fifth's most <= first fifth's", *no_more("threads")),
        ("open files: last fifth's most <= first fifth's", *no_more("open_files")),
    ]
    if "recorded_lost" in result:
        targets.append(("no recorded frame lost, file finalised",
                        result["recorded_lost"] == 0 and result["record_finalised"],
                        f"{result['recorded_lost']} lost of {result['frames_shown']}"))
    return targets


def _growth_mark(growth) -> tuple[bool | None, str]:
    """Pass when the slope's upper bound (slope + twice its standard error) is within the target, fail when its lower
    bound is over it; in between the run was too short or too jittery to tell."""
    if growth is None:
        return None, f"not judged under {MIN_GROWTH_MINUTES:g} min"
    slope, margin = growth
    figure = f"{slope:+.1f} +/- {margin:.1f}"
    if slope + margin <= RSS_GROWTH_MB_PER_H:
        return True, figure
    if slope - margin > RSS_GROWTH_MB_PER_H:
        return False, figure
    return None, figure + " (cannot tell: run longer)"


def format_soak(result: dict, delay_p99_ms: float) -> str:
    lines = [f"soak{' in the window' if result.get('window') else ''}: {result['minutes']:g} min live"
             + (", recording" if "frames_in_file" in result else "")
             + f", the clip played {result['loops'] + 1} times"
             + (" (ENDED EARLY)" if result["ended_early"] else "")]
    lines.append(f"  {'time':>7}  {'RSS MB':>7}  {'floor':>6}  {'threads':>7}  {'files':>5}  {'shown':>6}  {'drops d/r':>9}  "
                 f"{'delay p50':>9}  {'p99 ms':>6}  p99 of its parts: wait for worker / worker / wait for display")
    for s in result["samples"]:
        def num(value, fmt="{:.0f}"):
            return "-" if value is None else fmt.format(value)
        lines.append(f"  {_clock(s['t_s']):>7}  {num(s['rss_mb']):>7}  {num(s.get('rss_floor_mb')):>6}  "
                     f"{num(s['threads']):>7}  {num(s['open_files']):>5}  "
                     f"{s['frames_shown']:>6}  {str(s['display_drops']) + '/' + str(s['record_drops']):>9}  "
                     f"{num(s['annotation_p50_ms']):>9}  {num(s['annotation_p99_ms']):>6}  {_parts(s)}")
    if "record_mb" in result:
        lines.append(f"  recording: {result['frames_in_file']} frames in the file, {result['record_mb']:.0f} MB")
    at_samples = result.get("rss_growth_at_samples_mb_per_h")
    if at_samples is not None:
        lines.append(f"  resident memory at the samples (not their floors): {at_samples[0]:+.1f} +/- {at_samples[1]:.1f} MB/h")
    for error in result["errors"]:
        lines.append(f"  error: {error}")
    lines.append("targets")
    for name, ok, figure in soak_targets(result, delay_p99_ms):
        mark = "n/a " if ok is None else ("pass" if ok else "FAIL")
        lines.append(f"  {mark}  {name:<52} {figure}")
    return "\n".join(lines)
