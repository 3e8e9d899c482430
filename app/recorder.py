"""Recording annotated video: H.264 in fragmented MP4 with PyAV, from a thread with a bounded queue.

Frames are converted BGR -> I420 with OpenCV (5x cheaper than letting PyAV convert BGR) and fed
to libx264 as yuv420p. The MP4 is fragmented (a fragment per keyframe, one keyframe a second),
so a process killed mid-recording leaves a file playable up to its last complete fragment.
"""

from __future__ import annotations

import errno
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from polypview.errors import OutputError, PolypviewError

ENCODER = "libx264"
PRESET = "ultrafast"  # ~58 fps at 1080p on 2 cores; veryfast halves that for ~30% smaller files
CRF = 23
# Fragmented MP4: a playable file up to the last keyframe even if the process dies.
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
KEYFRAME_SECONDS = 1.0


def check_output_path(path: str | Path, what: str = "recording") -> Path:
    """Fail early with OutputError if `path` cannot be written (missing folder, no permission)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{what} path {path} is a folder; give a file name such as {path / 'out.mp4'}")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist (create it or choose another {what} path)")
    existed = path.exists()
    try:  # the only reliable test (os.access lies for root and on network drives)
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write {what} to {path}: {exc.strerror or exc} (choose a writable folder)") from None
    if not existed:
        path.unlink(missing_ok=True)
    return path


def even_size(size) -> tuple[int, int]:
    """(w, h) rounded down to even numbers, as yuv420p requires."""
    w, h = int(size[0]), int(size[1])
    return w - w % 2, h - h % 2


def to_i420(bgr: np.ndarray) -> np.ndarray:
    """BGR (h, w, 3) -> planar I420 (h*3/2, w) with OpenCV; odd edges are cropped (a view, no copy)."""
    h, w = bgr.shape[:2]
    return cv2.cvtColor(bgr[: h - h % 2, : w - w % 2], cv2.COLOR_BGR2YUV_I420)


def fit_i420(bgr: np.ndarray, size) -> np.ndarray:
    """BGR -> I420 of the even `size`; resized only when the frame is not that size (odd edges are cropped)."""
    w, h = size
    if not (w <= bgr.shape[1] <= w + 1 and h <= bgr.shape[0] <= h + 1):
        bgr = cv2.resize(bgr, (w, h))
    return to_i420(bgr)


def burn_text_i420(i420: np.ndarray, lines: list[str], height: int) -> None:
    """Draw text lines into the luma plane of an I420 image (white on a dark outline), in place."""
    luma = i420[:height]
    scale = max(0.4, height / 1400)
    step = int(34 * scale) + 6
    for i, text in enumerate(lines):
        org = (10, 10 + step * (i + 1))
        cv2.putText(luma, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 16, max(2, int(4 * scale)), cv2.LINE_AA)
        cv2.putText(luma, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 235, max(1, int(1.5 * scale)), cv2.LINE_AA)


def _output_error(path: Path, exc: BaseException, frames: int) -> OutputError:
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return OutputError(f"disk full while recording {path}: recording stopped after {frames} frames (free some space)")
    reason = getattr(exc, "strerror", None) or str(exc)
    return OutputError(f"writing {path} failed after {frames} frames: {reason}")


class VideoWriter:
    """A synchronous H.264 MP4 writer: `write(bgr)` or `write_i420(yuv)`, then `close()`."""

    def __init__(self, path, fps: float, size, *, preset: str = PRESET, crf: int = CRF, encoder: str = ENCODER):
        import av

        self.path = check_output_path(path)
        self.size = even_size(size)
        self.fps = float(fps)
        self.frames = 0
        self._closed = False
        self._broken = False
        self._av = av
        try:
            self._container = av.open(str(self.path), mode="w", format="mp4",
                                      options={"movflags": MOVFLAGS, "flush_packets": "1"})
            self._stream = self._add_stream(encoder, preset, crf)
            self._time_base = self._stream.codec_context.time_base
        except (OSError, av.error.FFmpegError) as exc:
            raise _output_error(self.path, exc, 0) from None

    def _add_stream(self, encoder: str, preset: str, crf: int):
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream(encoder, rate=rate)
        stream.width, stream.height = self.size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.codec_context.gop_size = max(1, round(self.fps * KEYFRAME_SECONDS))
        stream.options = {"preset": preset, "crf": str(crf)}
        return stream

    def write(self, bgr: np.ndarray) -> None:
        """Encode one BGR frame (resized if its size differs from the stream's)."""
        self.write_i420(fit_i420(bgr, self.size))

    def write_i420(self, i420: np.ndarray) -> None:
        """Encode one planar I420 frame of this writer's size; OSError -> OutputError."""
        frame = self._av.VideoFrame.from_ndarray(i420, format="yuv420p")
        frame.pts = self.frames
        frame.time_base = self._time_base
        self._mux(lambda: self._stream.encode(frame))
        self.frames += 1

    def _mux(self, encode) -> None:
        """Encode (the callable) and mux; any FFmpeg or OS failure becomes OutputError."""
        if self._broken:
            raise OutputError(f"writing {self.path} failed earlier; the recording has stopped")
        try:
            self._container.mux(encode())
        except (OSError, self._av.error.FFmpegError) as exc:
            self._broken = True  # FFmpeg's muxer state is undefined now: touching it again can crash
            raise _output_error(self.path, exc, self.frames) from None

    def close(self) -> None:
        """Flush the encoder and finish the file (idempotent); OSError -> OutputError."""
        if self._closed:
            return
        self._closed = True
        if self._broken:
            return  # closing a failed muxer segfaults in FFmpeg; the fragments already written stay playable
        try:
            self._mux(lambda: self._stream.encode(None))
        finally:
            if not self._broken:
                self._close_container()

    def _close_container(self) -> None:
        try:
            self._container.close()
        except (OSError, self._av.error.FFmpegError) as exc:
            raise _output_error(self.path, exc, self.frames) from None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class RecordingReport:
    """What a recording ended with."""

    path: Path
    frames_written: int = 0
    frames_dropped: int = 0
    fps: float = 0.0
    error: str | None = None
    finalised: bool = False

    def line(self) -> str:
        """One line for the summary."""
        text = f"{self.frames_written} frames to {self.path}"
        if self.frames_dropped:
            text += f", {self.frames_dropped} dropped"
        if self.error:
            text += f" (error: {self.error})"
        return text


@dataclass
class RecordItem:
    """One presented frame on its way to the file: I420 pixels (or BGR, converted by the recorder
    thread; it is only read) plus the HUD text to burn in."""

    seq: int
    i420: np.ndarray | None
    hud: list[str] = field(default_factory=list)
    bgr: np.ndarray | None = None


class Recorder:
    """A recorder thread fed through a bounded queue; `close()` always finalises the file."""

    def __init__(self, path, fps: float, size, *, include_hud: bool = False, queue_size: int = 32,
                 on_written: Callable[[int, float], None] | None = None,
                 on_error: Callable[[PolypviewError], None] | None = None):
        self.include_hud = include_hud
        self.size = even_size(size)
        self._writer = VideoWriter(path, fps, size)
        self.report = RecordingReport(path=self._writer.path, fps=self._writer.fps)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._on_written = on_written
        self._on_error = on_error
        self._failed = threading.Event()
        self._closing = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="polypview-recorder", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> bool:
        """True once writing failed (disk full...): further frames are refused."""
        return self._failed.is_set()

    def convert(self, bgr: np.ndarray) -> np.ndarray:
        """BGR frame -> I420 of this recording's size (resized only if the video changed size mid-way)."""
        return fit_i420(bgr, self.size)

    @property
    def full(self) -> bool:
        """True when the next non-blocking submit would be dropped."""
        return self._queue.full()

    def submit(self, item: RecordItem, block: bool = False, stop: threading.Event | None = None) -> bool:
        """Queue a frame; when the queue is full, drop it (counted) or, if `block`, wait until `stop`."""
        if self._failed.is_set() or self._closing:
            self._count_drop()
            return False
        while True:
            try:
                self._queue.put(item, block=block, timeout=0.1 if block else None)
                return True
            except queue.Full:
                if not block or (stop is not None and stop.is_set()) or self._failed.is_set():
                    self._count_drop()
                    return False

    def count_drop(self) -> None:
        """Count a frame that never reached the recorder (the caller saw it full or failed)."""
        self._count_drop()

    def _count_drop(self) -> None:
        with self._lock:
            self.report.frames_dropped += 1

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._failed.is_set():
                self._count_drop()
                continue
            try:
                self._write(item)
            except Exception as exc:  # never let the recorder thread die silently
                self._count_drop()
                self._fail(OutputError(f"recording {self.report.path} failed: {exc}"))

    def _write(self, item: RecordItem) -> None:
        try:
            i420 = item.i420 if item.i420 is not None else self.convert(item.bgr)
            if self.include_hud and item.hud:
                burn_text_i420(i420, item.hud, self.size[1])
            self._writer.write_i420(i420)
        except OutputError as exc:
            self._count_drop()
            self._fail(exc)
            return
        self.report.frames_written += 1
        if self._on_written:
            self._on_written(item.seq, time.monotonic())

    def _fail(self, exc: OutputError) -> None:
        self.report.error = str(exc)
        self._failed.set()
        if self._on_error:
            self._on_error(exc)

    def close(self, timeout: float = 5.0) -> RecordingReport:
        """Write what is queued (within `timeout`), then finalise the file."""
        deadline = time.monotonic() + timeout
        self._closing = True
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.05)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    self._drain_queue()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._failed.set()  # the writer is stuck; stop it taking more frames
            self._drain_queue()
            self._thread.join(1.0)
        if self._thread.is_alive():  # never close the container under a running encode
            if not self.report.error:  # reported like any recording error: a dialog, a non-zero exit
                self._fail(OutputError(f"the recorder did not stop within {timeout:g} s: {self.report.path} may be "
                                       "cut short (is the disk slow or full?)"))
            return self.report
        self._finalise()
        return self.report

    def _drain_queue(self) -> None:
        """Drop what is still queued (counted): the deadline has passed."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._count_drop()

    def _finalise(self) -> None:
        try:
            self._writer.close()
        except OutputError as exc:
            if not self.report.error:
                self._fail(exc)
        self.report.finalised = True
