"""`polypview` without a subcommand: the viewer window, or headless processing with `--headless`.

    polypview --video case.mp4                       # window, file played at its own rate
    polypview --device 0 --size 1920x1080 --fps 60 --fourcc MJPG
    polypview --demo                                 # generated endoscopy-like clip
    polypview --video in.mp4 --headless --sync --record out.mp4 --metrics frames.csv
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from polypview.errors import ConfigError, DisplayError
from polypview.interrupt import sigint_ignored, sigint_sets
from polypview.settings import (
    Settings,
    add_model_arguments,
    add_overlay_arguments,
    add_processing_arguments,
    add_source_arguments,
)

INTERRUPTED_EXIT = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The viewer's and headless runner's options (defined in settings.py)."""
    add_source_arguments(parser)
    add_model_arguments(parser)
    add_processing_arguments(parser)
    add_overlay_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Open the window, or process headless; returns the exit code."""
    settings = Settings.from_args(args)  # every option checked, the same way for both paths
    if not settings.headless:
        return _run_gui(settings)
    return run_headless(settings)


def _run_gui(settings: Settings) -> int:
    from polypview.check import check_display

    check_display()
    try:
        from polypview.ui.app import run_gui
    except ImportError as exc:
        raise DisplayError(f"the window cannot open ({exc}); use --headless, or install PyQt6") from None
    return run_gui(settings)


def run_headless(settings: Settings, engine=None) -> int:
    """Process the input without a window; print the summary; exit code 0, 130 or the first error's."""
    from polypview.pipeline import Pipeline
    from polypview.sinks import HeadlessSink
    from polypview.sources import open_source

    if settings.source is None:
        raise ConfigError("--headless needs an input: --video FILE, --device N or --demo")
    config = settings.pipeline_config()
    source = open_source(settings.source, size=settings.size, fps=settings.fps, fourcc=settings.fourcc)
    own_engine = engine is None
    try:
        engine = settings.load_engine() if own_engine else engine
        sink = HeadlessSink(_expected_frames(source, settings.frames), progress=True, keep_last=bool(settings.screenshot))
        try:
            pipeline = Pipeline(source, engine, config, sink)
            pipeline.set_overlay(settings.overlay_settings(engine.info if engine is not None else None))
            summary, interrupted = _drive(pipeline, sink)
        finally:
            sink.close()
    finally:
        source.close()
        if own_engine and engine is not None:
            engine.close()
    return _report(summary, sink, settings, interrupted)


def _drive(pipeline, sink):
    """Run until the input ends, an error happens or Ctrl-C; always stop (finalising the recording)."""
    interrupted = threading.Event()
    pipeline.start()
    try:
        with sigint_sets(interrupted):
            while not pipeline.wait(0.2):
                if sink.failed.is_set() or interrupted.is_set():
                    break
    except KeyboardInterrupt:  # off the main thread no handler of ours is installed
        interrupted.set()
    with sigint_ignored():  # a second Ctrl-C must not cut the recording's finalisation short
        summary = pipeline.stop()
    return summary, interrupted.is_set()


def _expected_frames(source, limit: int | None) -> int | None:
    """Frames the progress bar expects: the file's count, capped by --frames (None: unknown)."""
    known = [n for n in (source.frame_count, limit) if n]
    return min(known) if known else None


def _report(summary, sink, settings: Settings, interrupted: bool) -> int:
    """Print the summary (stdout) and one line per error (stderr); pick the exit code."""
    if settings.screenshot and sink.last is not None:
        _save_png(settings.screenshot, sink.last.image)
    _print_summary(summary.text() + "\n" + appearances_line(sink.appearances))
    for error in summary.errors:
        print(f"polypview: error: {error}", file=sys.stderr)
    if interrupted:
        print("polypview: interrupted; the recording was finalised" if summary.recording else "polypview: interrupted",
              file=sys.stderr)
        return INTERRUPTED_EXIT
    return summary.errors[0].exit_code if summary.errors else 0


def appearances_line(times: list[float], shown: int = 12) -> str:
    """The summary's line on polyp appearances (the window's alert moments): how many, and when."""
    from polypview.alerts import HOLD_S, QUIET_S, clock

    if not times:
        return f"polyps           none appeared (a polyp drawn for {HOLD_S:g} s)"
    when = ", ".join(clock(t) for t in times[:shown]) + (f", … ({len(times) - shown} more)" if len(times) > shown else "")
    return (f"polyps           {len(times)} appearance{'s' if len(times) != 1 else ''} at {when} "
            f"(a polyp drawn for {HOLD_S:g} s after {QUIET_S:g} s without one)")


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
