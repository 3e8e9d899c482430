"""A small pipeline stand-in that follows CONTRACT.md, for GUI tests that need control over timing and errors."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polypview.stats import Stats

# Plausible HUD values; the fake builds the real Stats so it cannot drift from what the HUD reads.
TEST_STATS = dict(display_fps=30.0, inference_fps=25.0, inference_ms=7.5, annotation_delay_p50_ms=40.0,
                  annotation_delay_p95_ms=65.0, model="fake-model", backend="onnxruntime",
                  provider="CPUExecutionProvider")


def fake_stats(**overrides) -> Stats:
    """polypview.stats.Stats with the test values above (and `drops` = 3 inference drops)."""
    return Stats(**{**TEST_STATS, "drops": {"inference": 3}, **overrides})


@dataclass
class FakePresented:
    seq: int
    image: np.ndarray
    raw: np.ndarray
    overlay_seq: int | None
    stale: bool
    stats: Stats
    pts: float
    reshown: bool = False
    prediction: object = None
    marked: bool = False  # a polyp drawn on it


@dataclass
class FakeSummary:
    frames: int
    errors: list
    recording: object = None  # the RecordingReport when it was recording


@dataclass
class FakeReport:
    path: Path
    frames_written: int = 0
    frames_dropped: int = 0
    error: str | None = None


class FakeSource:
    """A seekable 2-second 30 fps source of solid frames."""

    fps, size, frame_count, duration, seekable, name = 30.0, (160, 120), 60, 2.0, True, "fake.mp4"

    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


class FakePipeline:
    """Presents numbered solid frames from a thread at `fps`; records what the GUI asked of it."""

    def __init__(self, source, engine, config, sink, fps: float = 60.0, stop_delay: float = 0.0,
                 mask_share: float = 1.0):
        self.source, self.engine, self.config, self.sink = source, engine, config, sink
        self.fps, self.stop_delay = fps, stop_delay
        self.mask_share = mask_share  # the share of frames shown with a mask that stats() reports
        self.overlays, self.engines, self.seeks, self.rois = [], [engine], [], []
        self.roi = (10, 10, 140, 100)  # the image area "found" in the fake frames
        self.paused = False
        self.recording = False
        self.record_error: str | None = None  # the recorder's error, set by a test (disk full...)
        self.stopped_with: float | None = None
        self.stop_errors: list = []  # errors the summary reports (e.g. a recording that failed to finalise)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._seq = 0
        self._masked = 0.0  # masks shown so far: none while the window has switched masks off
        self.marked = lambda seq: False  # which frames show a polyp (a test sets it)

    def start(self):
        self._thread.start()

    def _loop(self):
        while not self._stop.wait(1 / self.fps):
            if self.paused:
                continue
            image = np.full((120, 160, 3), (40, 90, 200), np.uint8)
            image[:, :8] = self._seq % 256
            stats = fake_stats(frames_shown=self._seq + 1, recording=self.recording)
            self.sink.on_frame(FakePresented(self._seq, image, image, self._seq, False, stats, self._seq / 30,
                                             marked=self.marked(self._seq)))
            self._seq += 1
            if not self.overlays or self.overlays[-1].enabled:
                self._masked += self.mask_share

    def stop(self, timeout=5.0):
        self.stopped_with = timeout
        time.sleep(self.stop_delay)
        self._stop.set()
        self._thread.join(timeout)
        self.recording = False
        return FakeSummary(self._seq, list(self.stop_errors))

    def wait(self, timeout=None):
        return self._stop.wait(timeout)

    def pause(self):
        self.paused = True

    def resume(self):
        self.paused = False

    def seek(self, seconds):
        self.seeks.append(seconds)

    def set_overlay(self, settings):
        self.overlays.append(settings)

    def set_engine(self, engine):
        self.engines.append(engine)

    def set_roi(self, roi):
        if isinstance(roi, tuple) and (roi[0] + roi[2] > self.source.size[0] or roi[1] + roi[3] > self.source.size[1]):
            from polypview.errors import ConfigError

            raise ConfigError(f"the image area {roi} reaches outside the frame")
        self.rois.append(roi)
        self.roi = roi if isinstance(roi, tuple) else None

    def start_recording(self, path, include_hud=False):
        self.recording_path = Path(path)
        self.recording = True

    def stop_recording(self):
        self.recording = False
        return FakeReport(self.recording_path, error=self.record_error)

    def stats(self):
        return fake_stats(frames_shown=self._seq, masks_shown=int(self._masked),
                          recording=self.recording)


class FakeEngine:
    """An engine that finds nothing (the window's tests drive a FakePipeline, which never calls it)."""

    def __init__(self, name="fake-model", overlay=None):
        from polypview.inference.runtime.modelfile import neopolyp_info

        self.name, self.backend, self.provider = name, "onnxruntime", "CPUExecutionProvider"
        self.info = neopolyp_info("fake", 64, overlay=dict(overlay or {}))  # overlay: the file's drawing defaults
        self.closed = False

    def predict(self, frame_bgr, roi=None):
        from polypview.inference.runtime.engine import Prediction

        return Prediction(np.zeros((64, 64), np.float32), np.zeros((64, 64), np.uint8), {"inference": 0.0}, roi)

    def close(self):
        self.closed = True


class FakeServices:
    """CoreServices with the fakes above; remembers every pipeline it made."""

    def __init__(self, models=("fake-model", "other-model"), load_delay: float = 0.0, stop_delay: float = 0.0,
                 mask_share: float = 1.0):
        self.models = {name: Path(f"/models/{name}.onnx") for name in models}
        self.load_delay, self.stop_delay, self.mask_share = load_delay, stop_delay, mask_share
        self.pipelines: list[FakePipeline] = []
        self.sources: list[FakeSource] = []
        self.loaded: list[FakeEngine] = []
        self.requested: list = []
        self.fail_open: Exception | None = None
        self.devices: list = []  # what list_devices() reports
        self.opened: list = []  # (spec, size, fps, fourcc) of every open_source call
        self.fail_load: Exception | None = None
        self.model_overlays: dict[str, dict] = {}  # model name -> the drawing defaults its file carries

    def list_devices(self):
        return list(self.devices)

    def open_source(self, spec, size=None, fps=None, fourcc=None):
        self.opened.append((spec, size, fps, fourcc))
        if self.fail_open:
            raise self.fail_open
        self.sources.append(FakeSource())
        return self.sources[-1]

    def find_models(self):
        return dict(self.models)

    def load_engine(self, model, backend, threads=None, input_size=None):
        time.sleep(self.load_delay)
        if self.fail_load:
            raise self.fail_load
        self.requested.append(model)
        name = Path(model).stem if model else "fake-model"
        self.loaded.append(FakeEngine(name, self.model_overlays.get(name)))
        return self.loaded[-1]

    def overlay_settings(self, **values):
        from polypview.overlay import OverlaySettings

        return OverlaySettings(**values)

    def make_pipeline(self, source, engine, options, sink):
        self.pipelines.append(FakePipeline(source, engine, options, sink, stop_delay=self.stop_delay,
                                           mask_share=self.mask_share))
        return self.pipelines[-1]
