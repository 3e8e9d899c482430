"""The window's inputs: ViewerOptions (from the command line) and CoreServices (the core it drives).

CoreServices imports the core lazily, so the window opens before the pipeline, PyAV and ONNX
Runtime are loaded; tests pass an object with the same methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

STOP_TIMEOUT_S = 5.0


@dataclass
class ViewerOptions:
    """What the window needs from the command line (see `from_args`)."""

    source: str | int | None = None  # open_source spec: file path, device, "demo"; None = start page
    size: Any = None
    fps: float | None = None
    fourcc: str | None = None
    model: str | None = None
    backend: str = "auto"
    threads: int | None = None
    input_size: tuple[int, int] | None = None  # (h, w) the network runs at, None: its file's
    overlay: dict = field(default_factory=dict)  # OverlaySettings fields given on the command line
    staleness_s: float = 0.150
    sync: bool = False
    reshow: bool = True
    record_path: Path | None = None
    record_hud: bool = False
    metrics_path: Path | None = None
    frames: int | None = None  # close after this many frames (with screenshot: grab then close)
    screenshot: Path | None = None
    fullscreen: bool = False  # open in full screen
    recordings_dir: Path | None = None  # None: the remembered folder, else ./recordings
    stop_timeout_s: float = STOP_TIMEOUT_S

    @classmethod
    def from_args(cls, args: Any) -> ViewerOptions:
        """Read the viewer options of app/run.py's argparse Namespace (missing ones keep defaults)."""
        from polypview.run import engine_input_size

        get = partial(getattr, args)
        staleness_ms = get("staleness_ms", None)
        return cls(
            source=source_spec(get("video", None), get("device", None), get("demo", False)),
            size=get("size", None),
            fps=get("fps", None),
            fourcc=get("fourcc", None),
            model=_str_or_none(get("model", None)),
            backend=get("backend", None) or "auto",
            threads=get("threads", None),
            input_size=engine_input_size(args),
            overlay=overlay_from_args(args),
            staleness_s=0.150 if staleness_ms is None else staleness_ms / 1000,
            sync=bool(get("sync", False)),
            reshow=not get("no_reshow", False),
            record_path=_path_or_none(get("record", None)),
            record_hud=bool(get("record_hud", False)),
            metrics_path=_path_or_none(get("metrics", None)),
            frames=get("frames", None),
            screenshot=_path_or_none(get("screenshot", None)),
            fullscreen=bool(get("fullscreen", False)),
        )


def source_spec(video: Any, device: Any, demo: bool) -> str | int | None:
    """The open_source spec for --video / --device / --demo (None: show the start page)."""
    if video:
        return str(video)
    if device is not None and str(device) != "":
        return int(device) if str(device).isdigit() else str(device)
    return "demo" if demo else None


def overlay_from_args(args: Any) -> dict:
    """OverlaySettings fields given on the command line (the rest keep the library defaults)."""
    names = ("threshold", "opacity", "style", "min_area", "smoothing")
    values = {name: getattr(args, name, None) for name in names}
    values = {k: v for k, v in values.items() if v is not None}
    if getattr(args, "no_overlay", False):
        values["enabled"] = False
    if getattr(args, "per_pixel_class", False):
        values["one_class_per_region"] = False
    if getattr(args, "legend", False):
        values["legend"] = True
    return values


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _path_or_none(value: Any) -> Path | None:
    return None if value in (None, "") else Path(value)


class CoreServices:
    """The core functions the window calls, imported lazily (tests pass an object with the same methods)."""

    def open_source(self, spec: Any, size=None, fps=None, fourcc=None):
        from polypview.sources import open_source

        return open_source(spec, size=size, fps=fps, fourcc=fourcc)

    def list_devices(self) -> list:
        from polypview.devices import list_devices

        return list_devices()

    def find_models(self) -> dict[str, Path]:
        from polypview.inference.runtime import find_models

        return find_models()

    def load_engine(self, model: str | None, backend: str, threads: int | None = None,
                    input_size: tuple[int, int] | None = None):
        from polypview.inference.runtime import load_engine

        return load_engine(model, backend=backend, threads=threads, input_size=input_size)

    def overlay_settings(self, **values):
        from polypview.overlay import OverlaySettings

        return OverlaySettings(**values)

    def make_pipeline(self, source, engine, options: ViewerOptions, sink):
        from polypview.pipeline import Pipeline, PipelineConfig

        config = PipelineConfig(
            mode="sync" if options.sync else "live",
            staleness_s=options.staleness_s,
            record_path=options.record_path,
            record_hud=options.record_hud,
            metrics_path=options.metrics_path,
            reshow=options.reshow,
        )
        return Pipeline(source, engine, config, sink)
