"""The core the window drives (CoreServices); the window's options are polypview.settings.Settings.

CoreServices imports the core lazily, so the window opens before the pipeline, PyAV and ONNX
Runtime are loaded; tests pass an object with the same methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polypview.settings import Settings


class CoreServices:
    """The core functions the window calls, imported lazily (tests pass an object with the same methods)."""

    def open_source(self, spec: Any, size=None, fps=None, fourcc=None):
        from polypview.sources import open_source

        return open_source(spec, size=size, fps=fps, fourcc=fourcc)

    def list_devices(self) -> list:
        from polypview.devices import list_devices

        return list_devices()

    def find_models(self) -> dict[str, Path]:
        from polypview.inference.runtime.engine import find_models

        return find_models()

    def load_engine(self, model: str | None, backend: str, threads: int | None = None,
                    input_size: tuple[int, int] | None = None):
        from polypview.inference.runtime.engine import load_engine

        return load_engine(model, backend=backend, threads=threads, input_size=input_size)

    def overlay_settings(self, **values):
        from polypview.overlay import OverlaySettings

        return OverlaySettings(**values)

    def make_pipeline(self, source, engine, settings: Settings, sink):
        from dataclasses import replace

        from polypview.pipeline import Pipeline

        config = replace(settings.pipeline_config(), max_frames=None)  # the window closes itself after --frames
        return Pipeline(source, engine, config, sink)
