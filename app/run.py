"""`polypview` without a subcommand: the viewer window, or headless processing with `--headless`.

    polypview --video case.mp4                       # window, file played at its own rate
    polypview --device 0 --size 1920x1080 --fps 60 --fourcc MJPG
    polypview --demo                                 # generated endoscopy-like clip
    polypview --video in.mp4 --headless --sync --record out.mp4 --metrics frames.csv
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from polypview.errors import ConfigError, DisplayError, PolypviewError

INTERRUPTED_EXIT = 130


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1920x1080, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def _fourcc(text: str) -> str:
    if len(text) != 4:
        raise argparse.ArgumentTypeError(f"a FOURCC has four characters (e.g. MJPG, YUYV), got {text!r}")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The viewer's and headless runner's options."""
    src = parser.add_argument_group("input (one of)").add_mutually_exclusive_group()
    src.add_argument("--video", metavar="FILE", help="a video file (any container/codec FFmpeg reads)")
    src.add_argument("--device", metavar="N|/dev/videoN", help="a capture card or webcam (OpenCV)")
    src.add_argument("--demo", action="store_true", help="a generated endoscopy-like clip")
    cap = parser.add_argument_group("capture device")
    cap.add_argument("--size", type=_size, metavar="WxH", help="capture size, e.g. 1920x1080 (also the demo size)")
    cap.add_argument("--fps", type=float, help="capture frame rate (also the demo rate)")
    cap.add_argument("--fourcc", type=_fourcc, help="capture pixel format, e.g. MJPG")
    model = add_model_arguments(parser)
    model.add_argument("--threads", type=int, help="inference threads (default: the backend's choice)")
    model.add_argument("--input-size", metavar="N|HxW",
                       help="run the network at this input size instead of its file's (torch backend), e.g. 352")
    run = parser.add_argument_group("processing")
    run.add_argument("--headless", action="store_true", help="no window: process, print a summary")
    run.add_argument("--sync", action="store_true", help="infer every frame and draw its own mask (as fast as possible)")
    run.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    run.add_argument("--staleness-ms", type=float, default=150.0, help="hide masks older than this (default 150)")
    run.add_argument("--no-reshow", action="store_true",
                     help="live: do not show a frame again when its own mask comes before the next frame "
                          "(the mask then appears one frame later; saves a draw and a paint per frame)")
    run.add_argument("--record", metavar="OUT.mp4", help="record the annotated video (H.264 MP4)")
    run.add_argument("--record-hud", action="store_true", help="burn the HUD text into the recording")
    run.add_argument("--metrics", metavar="FRAMES.csv", help="write one row of stage timestamps per frame")
    run.add_argument("--screenshot", metavar="PNG", help="save an annotated frame (headless: the last one)")
    run.add_argument("--fullscreen", action="store_true", help="open the window in full screen (F11 or Esc leaves)")
    add_overlay_arguments(parser)


def add_model_arguments(parser: argparse.ArgumentParser):
    """--model and --backend (shared with `polypview batch`); returns the group for more options."""
    from polypview.inference.runtime import DEFAULT_MODEL, find_models

    shipped = ", ".join(f"{name} (default)" if name == DEFAULT_MODEL else name for name in find_models()) or "none"
    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="NAME_OR_FILE",
                       help=f"a shipped model name or an .onnx file ('none': video only); shipped: {shipped}")
    model.add_argument("--backend", default="auto", help="auto | ort | torch (default auto)")
    return model


def add_overlay_arguments(parser: argparse.ArgumentParser) -> None:
    """How masks are drawn (shared with `polypview batch`); read back by overlay_settings()."""
    ov = parser.add_argument_group("overlay")
    ov.add_argument("--style", choices=("fill", "contour"), help="filled masks or contours (default fill)")
    ov.add_argument("--opacity", type=float, help="mask opacity 0..1 (default 0.45)")
    ov.add_argument("--threshold", type=float, help="confidence threshold 0..1 (default 0.5)")
    ov.add_argument("--min-area", type=float, help="smallest region drawn, fraction of the image (default 0.0005)")
    ov.add_argument("--smoothing", type=int, help="average scores over N frames (default off)")
    ov.add_argument("--per-pixel-class", action="store_true",
                    help="colour each pixel by its own class (default: each polyp region takes its majority class)")
    ov.add_argument("--no-overlay", action="store_true", help="start with the overlay off")
    ov.add_argument("--legend", action="store_true",
                    help="burn the class legend into the video and recordings (in the corner with no burned-in text)")


def run(args: argparse.Namespace) -> int:
    """Open the window, or process headless; returns the exit code."""
    if not args.headless:
        return _run_gui(args)
    return run_headless(args)


def _check_display() -> None:
    """Qt aborts the process (no exception) when it finds no display: say so in one line instead."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DisplayError("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): "
                          "run inside a desktop session, or use --headless")


def _run_gui(args) -> int:
    pipeline_config(args)  # the same option checks as headless (--frames, output paths), before any window
    _check_display()
    try:
        from polypview.ui.app import run_gui
    except ImportError as exc:
        raise DisplayError(f"the window cannot open ({exc}); use --headless, or install PyQt6") from None
    return run_gui(args)


def source_spec(args):
    """The open_source spec of --video / --device / --demo; ConfigError when none is given."""
    if args.video:
        return args.video
    if args.device is not None:
        return int(args.device) if str(args.device).isdigit() else args.device
    if args.demo:
        return "demo"
    raise ConfigError("--headless needs an input: --video FILE, --device N or --demo")


def overlay_settings(args):
    """OverlaySettings from the command line (unset options keep the library defaults)."""
    from polypview.overlay import OverlaySettings

    names = {"style": "style", "opacity": "opacity", "threshold": "threshold", "min_area": "min_area", "smoothing": "smoothing"}
    values = {field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg, None) is not None}
    if getattr(args, "per_pixel_class", False):
        values["one_class_per_region"] = False
    if getattr(args, "legend", False):
        values["legend"] = True
    return OverlaySettings(enabled=not args.no_overlay, **values)


def pipeline_config(args):
    """PipelineConfig from the command line; output paths are checked here, before any processing."""
    from polypview.pipeline import PipelineConfig
    from polypview.recorder import check_output_path

    if args.frames is not None and args.frames <= 0:
        raise ConfigError(f"--frames must be positive, got {args.frames}")
    for path, what in ((args.record, "recording"), (args.metrics, "metrics"), (args.screenshot, "screenshot")):
        if path and args.video and Path(path).resolve() == Path(args.video).resolve():
            raise ConfigError(f"the {what} path {path} is the input video: choose another file name")
        if path:
            check_output_path(path, what=what)
    return PipelineConfig(
        mode="sync" if args.sync else "live", staleness_s=args.staleness_ms / 1000.0,
        record_path=Path(args.record) if args.record else None, record_hud=args.record_hud,
        metrics_path=Path(args.metrics) if args.metrics else None, max_frames=args.frames,
        reshow=not args.no_reshow,
    )


def load_model(args):
    """The engine for --model/--backend, or None for `--model none`."""
    if args.model is not None and str(args.model).lower() == "none":
        return None
    from polypview.inference.runtime import load_engine

    return load_engine(args.model, backend=args.backend, threads=args.threads, input_size=engine_input_size(args))


def engine_input_size(args) -> tuple[int, int] | None:
    """--input-size as (h, w), or None (ConfigError for a bad value: one clear line)."""
    text = getattr(args, "input_size", None)
    if not text:
        return None
    from polypview.inference.runtime import input_size_arg

    return input_size_arg(text)


class HeadlessSink:
    """Progress bar on stderr (quiet when not a TTY); the first error ends the run."""

    def __init__(self, total: int | None, keep_last: bool = False):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)
        self.keep_last = keep_last
        self.last = None
        self.failed = threading.Event()

    def on_frame(self, p) -> None:
        if not p.reshown:
            self.bar.update(1)
        if self.keep_last:
            self.last = p

    def on_error(self, e: PolypviewError) -> None:
        self.failed.set()

    def on_finished(self, summary) -> None:
        pass

    def close(self) -> None:
        self.bar.close()


def run_headless(args, engine=None) -> int:
    """Process the input without a window; print the summary; exit code 0, 130 or the first error's."""
    from polypview.pipeline import Pipeline
    from polypview.sources import open_source

    config = pipeline_config(args)
    settings = overlay_settings(args)
    spec = source_spec(args)
    source = open_source(spec, size=args.size, fps=args.fps, fourcc=args.fourcc)
    own_engine = engine is None
    try:
        engine = load_model(args) if own_engine else engine
        sink = HeadlessSink(_expected_frames(source, args.frames), keep_last=bool(args.screenshot))
        try:
            pipeline = Pipeline(source, engine, config, sink)
            pipeline.set_overlay(settings)
            summary, interrupted = _drive(pipeline, sink)
        finally:
            sink.close()
    finally:
        source.close()
        if own_engine and engine is not None:
            engine.close()
    return _report(summary, sink, args, interrupted)


def _drive(pipeline, sink: HeadlessSink):
    """Run until the input ends, an error happens or Ctrl-C; always stop (finalising the recording)."""
    interrupted = threading.Event()
    pipeline.start()
    try:
        with _sigint_sets(interrupted):
            while not pipeline.wait(0.2):
                if sink.failed.is_set() or interrupted.is_set():
                    break
    except KeyboardInterrupt:  # off the main thread no handler of ours is installed
        interrupted.set()
    with _sigint_ignored():  # a second Ctrl-C must not cut the recording's finalisation short
        summary = pipeline.stop()
    return summary, interrupted.is_set()


def _expected_frames(source, limit: int | None) -> int | None:
    """Frames the progress bar expects: the file's count, capped by --frames (None: unknown)."""
    known = [n for n in (source.frame_count, limit) if n]
    return min(known) if known else None


@contextmanager
def _sigint_sets(event: threading.Event):
    """Ctrl-C sets `event` instead of raising KeyboardInterrupt. A KeyboardInterrupt raised wherever the
    main thread happens to be can be swallowed (in a finaliser, say: "Exception ignored in ..."), and the
    run then goes on recording as if Ctrl-C never came; setting an event cannot be lost that way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, lambda signum, frame: event.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextmanager
def _sigint_ignored():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _report(summary, sink: HeadlessSink, args, interrupted: bool) -> int:
    """Print the summary (stdout) and one line per error (stderr); pick the exit code."""
    if args.screenshot and sink.last is not None:
        _save_png(Path(args.screenshot), sink.last.image)
    _print_summary(summary.text())
    for error in summary.errors:
        print(f"polypview: error: {error}", file=sys.stderr)
    if interrupted:
        print("polypview: interrupted; the recording was finalised" if summary.recording else "polypview: interrupted",
              file=sys.stderr)
        return INTERRUPTED_EXIT
    return summary.errors[0].exit_code if summary.errors else 0


def _print_summary(text: str) -> None:
    """Print to stdout; a closed pipe (`| head`) is not an error worth a traceback."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's final flush stays quiet


def _save_png(path: Path, image) -> None:
    import cv2

    if not cv2.imwrite(str(path), image):
        print(f"polypview: error: cannot write the screenshot {path}", file=sys.stderr)
