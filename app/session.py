"""The viewing session the window drives, without Qt: the input and its pipeline, model requests, recordings.

The window (ui/main_window.py) owns widgets and dialogs and calls this controller; everything that
decides what plays, which engine result counts, when an engine may be closed and what a recording is
called lives here, testable without a display. `CoreServices` opens the core's parts lazily, so the
window appears before PyAV and ONNX Runtime are loaded; tests pass an object with the same methods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from polypview.errors import PolypviewError
from polypview.overlay import OverlaySettings
from polypview.protocols import Engine, Sink, Source
from polypview.settings import Settings, with_model_defaults

NO_MODEL = "none"


def timestamp() -> str:
    """A file-name-safe local timestamp."""
    return time.strftime("%Y%m%d-%H%M%S")


class CoreServices:
    """The core functions the session calls, imported lazily (tests pass an object with the same methods)."""

    def open_source(self, spec: Any, size=None, fps=None, fourcc=None) -> Source:
        from polypview.sources import open_source

        return open_source(spec, size=size, fps=fps, fourcc=fourcc)

    def list_devices(self) -> list:
        from polypview.devices import list_devices

        return list_devices()

    def find_models(self) -> dict[str, Path]:
        from polypview.inference.runtime.engine import find_models

        return find_models()

    def load_engine(self, model: str | None, backend: str, threads: int | None = None,
                    input_size: tuple[int, int] | None = None) -> Engine:
        from polypview.inference.runtime.engine import load_engine

        return load_engine(model, backend=backend, threads=threads, input_size=input_size)

    def overlay_settings(self, **values) -> OverlaySettings:
        return OverlaySettings(**values)

    def make_pipeline(self, source: Source, engine: Engine | None, settings: Settings, sink: Sink):
        from polypview.pipeline import Pipeline

        config = replace(settings.pipeline_config(), max_frames=None)  # the window closes itself after --frames
        return Pipeline(source, engine, config, sink)


@dataclass
class ModelRequests:
    """Engines load on a worker thread: only the newest request's engine is used; replaced engines are closed
    at shutdown, once no inference worker can still be using them."""

    current: int = 0
    asked: dict[int, str | None] = field(default_factory=dict)  # request -> the model asked for
    files: dict[str, str] = field(default_factory=dict)  # engine name shown in the model box -> model argument
    retired: list = field(default_factory=list)

    def new(self, model: str | None) -> int:
        self.current += 1
        self.asked[self.current] = model
        return self.current


class Session:
    """One window's viewing session: what plays, with which engine, recorded where."""

    def __init__(self, settings: Settings, services: Any = None):
        self.settings = settings
        self.services = services or CoreServices()
        self.pipeline: Any = None  # a Pipeline (the window's tests use a stand-in)
        self.source: Source | None = None
        self.engine: Engine | None = None
        self.spec: Any = None  # the input playing (reopened to play again after its end)
        self.finished = False  # the input ended (Space plays it again)
        self.models = ModelRequests()
        self.recording_path: Path | None = None
        self.last_recording = None  # RecordingReport of the last recording stopped from the window
        self.closed = False

    # ---- the input
    def open(self, spec: Any, sink: Sink, overlay: OverlaySettings, size=None, fps=None, fourcc=None) -> Source:
        """Play this input (PolypviewError when it cannot be opened or started); call `close_input` first, whose
        errors the caller shows. A device opens with `size`, `fps` and `fourcc` when given, else the command line's."""
        settings = self.settings
        source = self.services.open_source(spec, size=size or settings.size, fps=fps or settings.fps,
                                           fourcc=fourcc or settings.fourcc)
        try:
            pipeline = self.services.make_pipeline(source, self.engine, settings, sink)
            pipeline.set_overlay(overlay)
        except PolypviewError:
            _close_quietly(source)
            raise
        self.source, self.pipeline, self.finished, self.spec = source, pipeline, False, spec
        pipeline.start()
        if settings.record_path is not None:  # the config records from frame 1
            self.recording_path = settings.record_path
        settings.record_path = None  # --record applies to the first input only
        return source

    def close_input(self) -> list[PolypviewError]:
        """Stop the pipeline (finalising its recording; never hangs) and close the input; the summary's errors."""
        pipeline, self.pipeline = self.pipeline, None
        errors: list[PolypviewError] = []
        if pipeline is not None:
            summary = pipeline.stop(self.settings.stop_timeout_s)
            errors = list(summary.errors or [])
        if self.source is not None:
            _close_quietly(self.source)
            self.source = None
        return errors

    def ended(self) -> None:
        """The input ended (the pipeline has finalised its recording)."""
        self.finished = True

    # ---- transport
    @property
    def paused(self) -> bool:
        return bool(self.pipeline is not None and self.pipeline.paused)

    def toggle_play(self) -> str | None:
        """Pause or resume: the new state, "playing" or "paused"; "replay" after the end (the caller reopens the
        input); None without an input."""
        if self.pipeline is None:
            return None
        if self.finished:
            return "replay"
        if self.pipeline.paused:
            self.pipeline.resume()
            return "playing"
        self.pipeline.pause()
        return "paused"

    @property
    def seekable(self) -> bool:
        return bool(self.pipeline is not None and self.source is not None and self.source.seekable)

    def seek(self, seconds: float) -> None:
        """Jump in the file playing (the caller reopens it first when it has ended)."""
        if self.seekable:
            self.pipeline.seek(max(0.0, seconds))

    def step_target(self, position: float, frames: int) -> float | None:
        """Where a frame step from `position` goes, when paused (None: no step now)."""
        if self.pipeline is None or not self.pipeline.paused or self.finished:
            return None
        fps = float(self.source.fps or 30.0) if self.source is not None else 30.0
        return position + frames / fps  # the source shows the first frame at or after it

    # ---- models
    def shipped_models(self) -> list[str]:
        try:
            return sorted(self.services.find_models())
        except PolypviewError:
            return []

    def remembered_model(self, model: str | None) -> str | None:
        """The model of the last session, if it still exists (else None: the default)."""
        if not model or model.lower() == NO_MODEL or model in self.shipped_models():
            return model or None
        return model if Path(model).is_file() else None

    def request_model(self, model: str | None) -> tuple[int, Any] | None:
        """A new engine request: (request id, the call that loads it on a worker thread); None for 'none'
        (the session then runs without a model at once)."""
        if model is not None and str(model).lower() == NO_MODEL:
            self.models.current += 1  # supersedes a model still loading: it will only be kept to be closed
            self.use_engine(None)
            return None
        settings = self.settings
        request = self.models.new(model)
        backend, threads, size = settings.backend, settings.threads, settings.input_size
        return request, lambda: self.services.load_engine(model, backend, threads, size)

    def engine_loaded(self, request: int, engine: Engine) -> str | None:
        """Use the engine if its request is still the newest (then: the model argument asked for, or the engine's
        name); else keep it to close at shutdown and return None."""
        model = self.models.asked.pop(request, None)
        if request != self.models.current or self.closed:
            self.models.retired.append(engine)  # a newer request won, or the window is closing
            return None
        if model is not None:
            self.models.files[engine.name] = str(model)  # the model box lists names; remember the file
        self.use_engine(engine)
        return str(model) if model is not None else engine.name

    def engine_failed(self, request: int) -> bool:
        """Whether the failed request was the newest (worth telling the user)."""
        self.models.asked.pop(request, None)
        return request == self.models.current and not self.closed

    def use_engine(self, engine: Engine | None) -> None:
        """Hand this engine (or None: video only) to the pipeline; the old one is closed at shutdown."""
        if self.engine is not None:
            self.models.retired.append(self.engine)  # the inference worker may still be using it
        self.engine = engine
        if self.pipeline is not None:
            self.pipeline.set_engine(engine)

    def overlay_for_engine(self, overlay: OverlaySettings) -> OverlaySettings:
        """`overlay` with the running model file's own drawing defaults (its region peak; the app's default for
        a file without one), except the settings given on the command line."""
        info = self.engine.info if self.engine is not None else None
        return with_model_defaults(overlay, info, self.settings.overlay)

    def faster_model(self, default: str) -> str | None:
        """The shipped real-time default, when it is not the model already running."""
        running = self.engine.name if self.engine is not None else None
        return default if default in self.shipped_models() and running != default else None

    # ---- recording
    @property
    def recording(self) -> bool:
        return bool(self.pipeline is not None and self.pipeline.recording)

    @staticmethod
    def new_recording_path(folder: Path) -> Path:
        """FOLDER/polypview-YYYYmmdd-HHMMSS.mp4 (a counter avoids overwriting)."""
        path, n = folder / f"polypview-{timestamp()}.mp4", 1
        while path.exists():
            n += 1
            path = folder / f"polypview-{timestamp()}-{n}.mp4"
        return path

    def start_recording(self, path: Path) -> None:
        """Record to `path` (OSError, or OutputError, when it cannot be written)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pipeline.start_recording(path, include_hud=self.settings.record_hud)
        self.recording_path = path

    def stop_recording(self):
        """Stop and finalise the recording; its report."""
        self.last_recording = self.pipeline.stop_recording()
        return self.last_recording

    # ---- the end
    def shutdown(self, wait_for_loader=None) -> None:
        """Stop the pipeline (finalising the recording), wait for a model still loading, then close every engine.
        Idempotent; from the moment it starts (`closed`), engines that finish loading are only kept to be closed."""
        self.closed = True
        self.close_input()
        if wait_for_loader is not None:
            wait_for_loader(self.settings.stop_timeout_s)
        for engine in self.models.retired + [self.engine]:
            if engine is not None:
                _close_quietly(engine)
        self.models.retired, self.engine = [], None


def _close_quietly(obj: Any) -> None:
    """Close a source or engine at shutdown; a failure here must not stop the rest of the shutdown."""
    try:
        obj.close()
    except Exception:  # noqa: BLE001 (already shutting down; nothing useful to report)
        pass
