"""Settings: the only defaults, the option parsers and groups, and one `Settings.from_args` with every check.

The viewer window, the headless runner, `polypview bench` and `polypview batch` add the option groups
below to their parsers. The window and the headless runner receive the same `Settings` object, so an
option means the same thing, with the same checks, on both paths.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polypview.defaults import OVERLAY_STYLES, STALENESS_MS, STOP_TIMEOUT_S
from polypview.errors import ConfigError

SIZE_STEP = 32  # the networks halve their input five times: input sizes are multiples of this
NAMED_SIZES = {"360p": (640, 360), "480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080),
               "1440p": (2560, 1440), "4k": (3840, 2160), "2160p": (3840, 2160)}
OVERLAY_OPTIONS = ("style", "opacity", "threshold", "min_area", "min_peak", "smoothing", "class_memory",
                   "class_confidence")


# ------------------------------------------------------------------------------------------- parsers


def parse_size(text: str) -> tuple[int, int]:
    """A frame size: WxH (1920x1080) or a name (720p, 1080p, 4k) -> (w, h); ConfigError otherwise."""
    text = str(text).strip().lower()
    if text in NAMED_SIZES:
        return NAMED_SIZES[text]
    try:
        w, h = (int(v) for v in text.split("x"))
    except ValueError:
        raise ConfigError(f"unknown frame size {text!r}; valid: {', '.join(NAMED_SIZES)} "
                          "or WxH such as 1920x1080") from None
    if w < 16 or h < 16:
        raise ConfigError(f"size {text!r} is too small (at least 16x16)")
    return w, h


def parse_fourcc(text: str) -> str:
    if len(text) != 4:
        raise ConfigError(f"a FOURCC has four characters (e.g. MJPG, YUYV), got {text!r}")
    return text


def parse_input_size(text: str) -> tuple[int, int]:
    """A network input size: "352" or "352x448" (height x width), multiples of SIZE_STEP -> (h, w)."""
    try:
        parts = [int(v) for v in str(text).lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or any(v <= 0 or v % SIZE_STEP for v in parts):
        raise ConfigError(f"input size must be N or HxW in multiples of {SIZE_STEP} (e.g. 352), got {text!r}")
    return (parts[0], parts[-1])


def parse_roi(text: str) -> bool | tuple[int, int, int, int]:
    """--roi: 'auto' (find the endoscope's image area, True), 'off' (the whole frame, False) or X,Y,W,H."""
    word = text.strip().lower()
    if word in ("auto", "off"):
        return word == "auto"
    try:
        box = tuple(int(v) for v in word.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or box[0] < 0 or box[1] < 0 or box[2] < 16 or box[3] < 16:
        raise ConfigError(f"--roi must be auto, off or X,Y,W,H in frame pixels (width and height 16 or more), "
                          f"e.g. 480,40,1000,1000; got {text!r}")
    return box


def source_spec(video: Any, device: Any, demo: bool) -> str | int | None:
    """The open_source spec for --video / --device / --demo (None: no input given)."""
    if video:
        return str(video)
    if device is not None and str(device) != "":
        return int(device) if str(device).isdigit() else str(device)
    return "demo" if demo else None


def _argparse_type(parse):
    """An argparse `type=` from a parser that raises ConfigError (argparse then prints its usage line)."""
    def convert(text: str):
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__.replace("parse_", "")
    return convert


# ------------------------------------------------------------------------------------ option groups


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """--video / --device / --demo and the capture format."""
    src = parser.add_argument_group("input (one of)").add_mutually_exclusive_group()
    src.add_argument("--video", metavar="FILE", help="a video file (any container/codec FFmpeg reads)")
    src.add_argument("--device", metavar="N|/dev/videoN", help="a capture card or webcam (OpenCV)")
    src.add_argument("--demo", action="store_true", help="a generated endoscopy-like clip")
    cap = parser.add_argument_group("capture device")
    cap.add_argument("--size", type=_argparse_type(parse_size), metavar="WxH",
                     help="capture size, e.g. 1920x1080 or 1080p (also the demo size)")
    cap.add_argument("--fps", type=float, help="capture frame rate (also the demo rate)")
    cap.add_argument("--fourcc", type=_argparse_type(parse_fourcc), help="capture pixel format, e.g. MJPG")


def add_model_arguments(parser: argparse.ArgumentParser, engine: bool = True):
    """--model and --backend; with `engine`, also --threads and --input-size. Returns the group."""
    from polypview.inference.runtime.engine import DEFAULT_MODEL, find_models

    shipped = ", ".join(f"{name} (default)" if name == DEFAULT_MODEL else name for name in find_models()) or "none"
    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="NAME_OR_FILE",
                       help=f"a shipped model name or an .onnx file ('none': video only); shipped: {shipped}")
    model.add_argument("--backend", default="auto", help="auto | ort | torch (default auto)")
    if engine:
        model.add_argument("--threads", type=int, help="inference threads (default: the backend's choice)")
        model.add_argument("--input-size", metavar="N|HxW",
                           help="run the network at this input size instead of its file's (torch backend), e.g. 352")
    return model


def add_processing_arguments(parser: argparse.ArgumentParser) -> None:
    """How the viewer or the headless runner processes the input, and what it writes."""
    run = parser.add_argument_group("processing")
    run.add_argument("--headless", action="store_true", help="no window: process, print a summary")
    run.add_argument("--sync", action="store_true", help="infer every frame and draw its own mask (as fast as possible)")
    run.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    run.add_argument("--staleness-ms", type=float, default=STALENESS_MS,
                     help=f"hide masks older than this (default {STALENESS_MS:g})")
    run.add_argument("--no-reshow", action="store_true",
                     help="live: do not show a frame again when its own mask comes before the next frame "
                          "(the mask then appears one frame later; saves a draw and a paint per frame)")
    run.add_argument("--roi", default="auto", metavar="auto|off|X,Y,W,H",
                     help="where the endoscope's image is in the frame: found and re-checked (auto, the default), "
                          "the whole frame (off), or this rectangle in frame pixels")
    run.add_argument("--record", metavar="OUT.mp4", help="record the annotated video (H.264 MP4)")
    run.add_argument("--record-hud", action="store_true", help="burn the HUD text into the recording")
    run.add_argument("--metrics", metavar="FRAMES.csv", help="write one row of stage timestamps per frame")
    run.add_argument("--screenshot", metavar="PNG", help="save an annotated frame (headless: the last one)")
    run.add_argument("--fullscreen", action="store_true", help="open the window in full screen (F11 or Esc leaves)")
    run.add_argument("--alert-sound", action="store_true",
                     help="window: a short tone when a polyp appears (held 0.3 s; again after 2 s without one)")


def add_overlay_arguments(parser: argparse.ArgumentParser) -> None:
    """How masks are drawn (read back by overlay_from_args)."""
    ov = parser.add_argument_group("overlay")
    ov.add_argument("--style", choices=OVERLAY_STYLES,
                    help="filled masks, contours, or a box around each polyp (default fill)")
    ov.add_argument("--opacity", type=float, help="mask opacity 0..1 (default 0.45)")
    ov.add_argument("--threshold", type=float, help="confidence threshold 0..1 (default 0.5)")
    ov.add_argument("--min-area", type=float, help="smallest region drawn, fraction of the image (default 0.0005)")
    ov.add_argument("--min-peak", type=float,
                    help="draw a region only if its highest score reaches this, 0..1 (default: the model file's own, "
                         "else 0.9; 0: off): drops faint blobs, keeps a confident polyp's whole extent down to "
                         "--threshold")
    ov.add_argument("--smoothing", type=int, help="average scores over N frames (default off)")
    ov.add_argument("--class-memory", type=float, metavar="W",
                    help="keep each polyp's colour steady over frames: weight W in [0, 1) of its class in the "
                         "previous frames (default 0.5; 0: off)")
    ov.add_argument("--class-confidence", type=float, metavar="C",
                    help="draw a polyp in yellow, 'class uncertain', when less than C of its class probability is "
                         "on the class it would be drawn in (0..1; default 0: off; 0.9 in the window's box)")
    ov.add_argument("--per-pixel-class", action="store_true",
                    help="colour each pixel by its own class (default: each polyp region takes its majority class)")
    ov.add_argument("--no-overlay", action="store_true", help="start with the overlay off")
    ov.add_argument("--legend", action="store_true",
                    help="burn the class legend into the video and recordings (in the corner with no burned-in text)")
    ov.add_argument("--name-tags", action="store_true",
                    help="write each drawn polyp's class name beside it (readable without telling red from green)")


def overlay_from_args(args: Any) -> dict:
    """The OverlaySettings fields given on the command line (the rest keep their defaults); checked."""
    values = {name: getattr(args, name) for name in OVERLAY_OPTIONS if getattr(args, name, None) is not None}
    if getattr(args, "no_overlay", False):
        values["enabled"] = False
    if getattr(args, "per_pixel_class", False):
        values["one_class_per_region"] = False
    if getattr(args, "legend", False):
        values["legend"] = True
    if getattr(args, "name_tags", False):
        values["name_tags"] = True
    overlay_settings(values)  # ConfigError now for an opacity of 2, a style of "dots"...
    return values


def overlay_settings(values: dict, info: Any = None):
    """OverlaySettings of the given fields; the rest from the model file's own defaults (`info.overlay`, when
    a ModelInfo is given), then the app's."""
    from polypview.overlay import OverlaySettings

    return OverlaySettings(**{**model_overlay(info), **values})


def model_overlay(info: Any) -> dict:
    """The drawing defaults a model file carries (e.g. its region peak); {} without a model."""
    return dict(getattr(info, "overlay", None) or {})


def with_model_defaults(overlay, info: Any, given: dict):
    """`overlay` (OverlaySettings) with each setting a model file may carry taken from `info` (the app's
    default when the file has none), except those the user `given` on the command line: after a model
    switch, the new model's region peak applies, not the last model's."""
    from dataclasses import replace

    from polypview.inference.runtime.modelfile import MODEL_OVERLAY_KEYS
    from polypview.overlay import OverlaySettings

    own, app = model_overlay(info), OverlaySettings()
    return replace(overlay, **{k: own.get(k, getattr(app, k)) for k in MODEL_OVERLAY_KEYS if k not in given})


# ---------------------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """What the viewer (window or headless) was asked to do: every option, checked once, in one place."""

    source: str | int | None = None  # open_source spec: file path, device, "demo"; None: the start page
    size: tuple[int, int] | None = None
    fps: float | None = None
    fourcc: str | None = None
    model: str | None = None  # shipped name, .onnx file, "none", or None for the default
    backend: str = "auto"
    threads: int | None = None
    input_size: tuple[int, int] | None = None  # (h, w) the network runs at; None: its file's
    overlay: dict = field(default_factory=dict)  # OverlaySettings fields given on the command line
    staleness_s: float = STALENESS_MS / 1000
    sync: bool = False
    reshow: bool = True
    roi: bool | tuple[int, int, int, int] = True  # True: found and re-checked; False: whole frame; or (x, y, w, h)
    record_path: Path | None = None
    record_hud: bool = False
    metrics_path: Path | None = None
    frames: int | None = None  # stop after this many frames (window: close; with screenshot: grab then close)
    screenshot: Path | None = None
    fullscreen: bool = False
    alert_sound: bool = False  # the window sounds a tone when a polyp appears
    headless: bool = False
    recordings_dir: Path | None = None  # None: the window's remembered folder, else ./recordings
    stop_timeout_s: float = STOP_TIMEOUT_S

    @classmethod
    def from_args(cls, args: Any) -> Settings:
        """Read the viewer's argparse Namespace (missing options keep their defaults) and check it all."""
        def get(name, default=None):
            return getattr(args, name, default)

        staleness_ms = get("staleness_ms")
        settings = cls(
            source=source_spec(get("video"), get("device"), get("demo", False)),
            size=get("size"), fps=get("fps"), fourcc=get("fourcc"),
            model=None if get("model") is None else str(get("model")),
            backend=get("backend") or "auto", threads=get("threads"),
            input_size=parse_input_size(get("input_size")) if get("input_size") else None,
            overlay=overlay_from_args(args),
            staleness_s=(STALENESS_MS if staleness_ms is None else staleness_ms) / 1000,
            sync=bool(get("sync", False)), reshow=not get("no_reshow", False),
            roi=parse_roi(str(get("roi") or "auto")),
            record_path=_path(get("record")), record_hud=bool(get("record_hud", False)),
            metrics_path=_path(get("metrics")), frames=get("frames"), screenshot=_path(get("screenshot")),
            fullscreen=bool(get("fullscreen", False)), alert_sound=bool(get("alert_sound", False)),
            headless=bool(get("headless", False)),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Every check an option needs before anything opens (ConfigError/OutputError, one line each)."""
        from polypview.recorder import check_output_path

        if self.frames is not None and self.frames <= 0:
            raise ConfigError(f"--frames must be positive, got {self.frames}")
        if self.staleness_s <= 0:
            raise ConfigError(f"--staleness-ms must be positive, got {self.staleness_s * 1000:g}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {self.threads}")
        if self.fps is not None and self.fps <= 0:
            raise ConfigError(f"--fps must be positive, got {self.fps:g}")
        if self.alert_sound and self.headless:
            raise ConfigError("--alert-sound needs the window; a headless run lists the polyp appearances in its "
                              "summary instead")
        video = Path(self.source) if isinstance(self.source, str) and self.source != "demo" else None
        for path, what in ((self.record_path, "recording"), (self.metrics_path, "metrics"),
                           (self.screenshot, "screenshot")):
            if path and video and path.resolve() == video.resolve():
                raise ConfigError(f"the {what} path {path} is the input video: choose another file name")
            if path:
                check_output_path(path, what=what)

    @property
    def video_only(self) -> bool:
        return self.model is not None and self.model.lower() == "none"

    def overlay_settings(self, info: Any = None):
        """The overlay to draw with: the command line's options over the model file's defaults (`info`)."""
        return overlay_settings(self.overlay, info)

    def pipeline_config(self):
        from polypview.pipeline import PipelineConfig

        return PipelineConfig(mode="sync" if self.sync else "live", staleness_s=self.staleness_s,
                              record_path=self.record_path, record_hud=self.record_hud,
                              metrics_path=self.metrics_path, max_frames=self.frames, reshow=self.reshow,
                              roi=self.roi)

    def load_engine(self):
        """The engine for --model/--backend/--threads/--input-size, or None for `--model none`."""
        if self.video_only:
            return None
        from polypview.inference.runtime.engine import load_engine

        return load_engine(self.model, backend=self.backend, threads=self.threads, input_size=self.input_size)


def _path(value: Any) -> Path | None:
    return None if value in (None, "") else Path(value)
