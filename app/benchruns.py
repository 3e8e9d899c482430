"""What each bench run measures: per-stage costs (decode, model, draw, encode, one at a time), the whole
pipeline in each mode, and the naive single loop it is compared with. `bench.py` picks the runs and reports."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from polypview.benchclips import ClipSpec
from polypview.benchreport import DISC_FRACTION, STAGES

STAGE_FRAMES = 90  # frames of the per-stage pass (held in memory: 90 1080p frames are ~560 MB)


# ---------------------------------------------------------------------------------------- stats


def summarise(seconds: list[float], cpu: list[float] | None = None) -> dict:
    """median/p95/mean of per-frame durations in ms (and mean CPU ms when given)."""
    if not seconds:
        return {"count": 0, "median_ms": None, "p95_ms": None, "mean_ms": None, "cpu_ms": None}
    ms = np.asarray(seconds, np.float64) * 1000
    out = {"count": int(ms.size), "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
           "mean_ms": float(ms.mean())}
    out["cpu_ms"] = float(np.mean(cpu) * 1000) if cpu else None
    return out


class StageClock:
    """Wall and process-CPU time of each call of each stage."""

    def __init__(self):
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def time(self, name: str, fn: Callable, *args):
        """Call fn(*args), recording its wall and CPU time under `name`."""
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn(*args)
        self.add(name, time.perf_counter() - t0, time.process_time() - c0)
        return out

    def add(self, name: str, wall: float, cpu: float | None = None) -> None:
        self.wall.setdefault(name, []).append(wall)
        if cpu is not None:
            self.cpu.setdefault(name, []).append(cpu)

    def summary(self) -> dict:
        return {name: summarise(self.wall[name], self.cpu.get(name)) for name in self.wall}


# ------------------------------------------------------------------------------ per-stage costs


def decode_pass(path: Path, keep: int) -> tuple[dict, list[np.ndarray], dict]:
    """Decode the whole clip alone (timing decode and colour conversion); keep the first `keep` frames."""
    from polypview.sources import open_container

    clock, frames = StageClock(), []
    container = open_container(Path(path))
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # as sources.FileSource decodes
    t_start, c_start = time.perf_counter(), time.process_time()
    pending_wall, pending_cpu, count = 0.0, 0.0, 0
    try:
        for packet in container.demux(stream):  # the last, empty packet flushes the decoder
            c0, t0 = time.process_time(), time.perf_counter()
            decoded = packet.decode()
            pending_wall += time.perf_counter() - t0
            pending_cpu += time.process_time() - c0
            for frame in decoded:
                # Frame threads return frames late: charge the decode calls since the last frame to this one.
                clock.add("decode", pending_wall, pending_cpu)
                pending_wall = pending_cpu = 0.0
                image = clock.time("colour", lambda f=frame: f.to_ndarray(format="bgr24"))
                if len(frames) < keep:
                    frames.append(image)
                count += 1
    finally:
        container.close()
    wall, cpu = time.perf_counter() - t_start, time.process_time() - c_start
    totals = {"frames": count, "fps": count / wall if wall else 0.0, "cpu_cores": cpu / wall if wall else 0.0}
    return clock.summary(), frames, totals


def disc_prediction(engine, roi) -> object:
    """A Prediction with one round polyp (class 0) covering DISC_FRACTION of the area it maps to."""
    from polypview.inference.runtime.engine import Prediction

    h, w = engine.info.input_size
    yy, xx = np.mgrid[0:h, 0:w]
    radius = np.sqrt(DISC_FRACTION * h * w / np.pi)
    scores = (np.hypot(xx - 0.45 * w, yy - 0.55 * h) <= radius).astype(np.float32) * 0.95
    return Prediction(scores, np.zeros((h, w), np.uint8), {}, roi)


def model_pass(frames: list[np.ndarray], engine, settings) -> tuple[StageClock, list[np.ndarray]]:
    """Pre-process, infer, post-process, draw, convert for display and to I420, as the pipeline does."""
    from polypview.overlay import Overlay, detect_roi
    from polypview.recorder import to_i420

    clock, yuv = StageClock(), []
    overlay = Overlay(engine.info.classes, engine.info.colors)
    roi = detect_roi(frames[0]) if frames else None
    disc = disc_prediction(engine, roi)
    for image in frames:
        c0 = time.process_time()
        prediction = engine.predict(image, roi) if roi is not None else engine.predict(image)
        cpu = time.process_time() - c0
        total = sum(prediction.timings.values()) or 1.0
        for name in ("preprocess", "inference", "postprocess"):
            share = prediction.timings[name]
            clock.add(name, share, cpu * share / total)  # CPU split in proportion to wall
        annotated = clock.time("overlay", overlay.draw, image, prediction, settings, roi)
        clock.time("overlay_disc", overlay.draw, image, disc, settings, roi)
        shown = clock.time("display", np.ascontiguousarray, annotated)
        yuv.append(clock.time("i420", to_i420, shown))
    return clock, yuv


def encode_pass(yuv: list[np.ndarray], size, fps: float, path: Path) -> tuple[dict, dict]:
    """Encode the I420 frames alone with the recorder's writer; per call and overall."""
    from polypview.recorder import VideoWriter

    clock = StageClock()
    t_start, c_start = time.perf_counter(), time.process_time()
    with VideoWriter(path, fps=fps, size=size) as writer:
        for frame in yuv:
            clock.time("encode", writer.write_i420, frame)
        clock.time("encode_flush", writer.close)
    wall, cpu = time.perf_counter() - t_start, time.process_time() - c_start
    totals = {"frames": len(yuv), "fps": len(yuv) / wall if wall else 0.0, "cpu_cores": cpu / wall if wall else 0.0}
    return clock.summary(), totals


def stage_costs(path: Path, engine, settings, spec: ClipSpec, stage_frames: int, folder: Path) -> dict:
    """Every stage's cost per frame, each measured alone on the clip's frames."""
    decoded, frames, decode_totals = decode_pass(path, stage_frames)
    clock, yuv = model_pass(frames, engine, settings)
    del frames
    size = (yuv[0].shape[1], yuv[0].shape[0] * 2 // 3) if yuv else spec.size
    encoded, encode_totals = encode_pass(yuv, size, spec.fps, folder / f"stages-{spec.label}.mp4")
    stages = {**decoded, **clock.summary(), **encoded}
    ordered = {name: stages[name] for name in STAGES if name in stages}
    return {"stages": ordered, "decode_alone": decode_totals, "encode_alone": encode_totals,
            "encode_flush": stages.get("encode_flush")}


# ---------------------------------------------------------------------------------- pipelines


def _percentiles(p) -> dict:
    return dataclasses.asdict(p) if dataclasses.is_dataclass(p) else dict(p)


def file_frames(path: Path) -> int:
    """Video packets in a recorded file (one per frame), counted by demuxing."""
    from polypview.sources import open_container

    container = open_container(Path(path))
    try:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)
    finally:
        container.close()


def run_pipeline(path: Path, engine, mode: str, record: Path | None, settings, timeout_s: float) -> dict:
    """One headless Pipeline run over the clip; throughput counts until the recording is finalised."""
    from polypview.pipeline import Pipeline, PipelineConfig
    from polypview.sinks import HeadlessSink
    from polypview.sources import open_source

    source = open_source(str(path))
    sink = HeadlessSink()
    pipeline = Pipeline(source, engine, PipelineConfig(mode=mode, record_path=record), sink)
    if engine is not None:
        pipeline.set_overlay(settings)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        pipeline.start()
        finished = pipeline.wait(timeout_s)
        summary = pipeline.stop()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        source.close()
    result = _pipeline_result(summary, sink, wall, cpu, finished, record)
    result["annotation_parts_ms"] = annotation_parts(pipeline.stats_collector.records())
    return result


def annotation_parts(records) -> dict:
    """The annotation delay of each drawn mask, split: waiting for the worker, inference, waiting to be shown."""
    from polypview.stats import Percentiles

    drawn = [r for r in records if r.t_annotated is not None and r.t_infer_start is not None]
    parts = {
        "wait_for_worker": [r.t_infer_start - r.t_enter for r in drawn],
        "inference_worker": [r.t_infer_end - r.t_infer_start for r in drawn],
        "wait_for_display": [r.t_annotated - r.t_infer_end for r in drawn],
    }
    return {name: _percentiles(Percentiles.of(values)) for name, values in parts.items()}


def _pipeline_result(summary, sink, wall: float, cpu: float, finished: bool, record: Path | None) -> dict:
    shown = summary.frames_shown
    result = {
        "frames_read": summary.frames_read,
        "frames_shown": shown,
        "sink_frames": sink.frames,
        "masks_shown": summary.masks_shown,
        "frames_reshown": summary.frames_reshown,
        "mask_share": summary.masks_shown / shown if shown else 0.0,
        "frames_inferred": summary.frames_inferred,
        "display_fps": summary.fps,
        "drops": dict(summary.drops),
        "display_drops": int(summary.drops.get("display", 0)),
        "annotation_delay_ms": _percentiles(summary.annotation_delay),
        "video_delay_ms": _percentiles(summary.video_delay),
        "staleness_ms": _percentiles(summary.staleness),
        "inference_ms": _percentiles(summary.inference),
        "wall_s": wall,
        "cpu_cores": cpu / wall if wall else 0.0,
        "throughput_fps": shown / wall if wall else 0.0,
        "finished": bool(finished),
        "errors": [str(e) for e in summary.errors] or [str(e) for e in sink.errors],
    }
    if record is not None:
        result.update(_recording_result(summary.recording, record, shown, wall))
    return result


def _recording_result(report, record: Path, shown: int, wall: float) -> dict:
    written = report.frames_written if report else 0
    in_file = file_frames(record) if record.exists() and record.stat().st_size else 0
    return {
        "recorded_frames": written,
        "record_dropped": report.frames_dropped if report else 0,
        "frames_in_file": in_file,
        "recorded_lost": max(0, shown - in_file),
        "record_finalised": bool(report and report.finalised),
        "record_fps": in_file / wall if wall else 0.0,
    }


def naive_loop(path: Path, engine, settings, spec: ClipSpec, out: Path) -> dict:
    """decode -> infer -> draw -> encode, one after another in one thread (published demos' structure)."""
    from polypview.overlay import Overlay
    from polypview.recorder import VideoWriter
    from polypview.sources import open_source

    overlay = Overlay(engine.info.classes, engine.info.colors)
    source = open_source(str(path))
    frames = 0
    c0, t0 = time.process_time(), time.perf_counter()
    try:
        with VideoWriter(out, fps=source.fps, size=source.size) as writer:
            while (frame := source.read()) is not None:
                writer.write(overlay.draw(frame.image, engine.predict(frame.image), settings))
                frames += 1
    finally:
        source.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"frames": frames, "wall_s": wall, "throughput_fps": frames / wall if wall else 0.0,
            "cpu_cores": cpu / wall if wall else 0.0, "frames_in_file": file_frames(out)}
