"""Video sources: files (PyAV), capture devices (OpenCV) and the generated demo clip.

`open_source(spec)` picks the kind from the spec through a string-keyed registry. Every source
hands out `Frame`s with strictly increasing `seq`; `t_enter` is stamped when the frame is read
(the pipeline re-stamps it when it paces a file to its own frame rate).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polypview.errors import CaptureError, ConfigError, InputError
from polypview.registry import Registry


@dataclass
class Frame:
    """One video frame as it entered the application."""

    seq: int
    image: np.ndarray  # BGR uint8, (h, w, 3), contiguous
    t_enter: float  # time.monotonic() when the frame entered the app
    pts: float  # presentation time in seconds, from the source


class Source:
    """Base class: `read()` returns the next Frame, or None at the end of the input."""

    fps: float = 30.0
    size: tuple[int, int] = (0, 0)  # (width, height)
    frame_count: int | None = None  # exact, or estimated from the duration; None if unknown
    duration: float | None = None  # seconds, None if unknown (live capture, endless demo)
    seekable: bool = False
    live: bool = False  # True: frames arrive at their own pace (capture); False: the reader paces
    name: str = ""
    errors: int = 0  # packets or frames that could not be decoded and were skipped

    def __init__(self) -> None:
        self._seq = 0

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the input."""
        item = self._next_image()
        if item is None:
            return None
        image, pts = item
        frame = Frame(self._seq, image, time.monotonic(), pts)
        self._seq += 1
        return frame

    def _next_image(self) -> tuple[np.ndarray, float] | None:
        raise NotImplementedError

    def seek(self, seconds: float) -> None:
        """Jump to `seconds` from the start (files and the demo only)."""
        raise ConfigError(f"{self.name} cannot seek")

    def problem(self) -> InputError | None:
        """After the end of input: what was wrong with it (skipped packets, truncation), or None."""
        return None

    def close(self) -> None:
        """Release the file or device."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------- files


def _av_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, ValueError)


def open_container(path: Path):
    """av.open with the project's errors: missing, unreadable, not a video."""
    import av

    if not path.exists():
        raise InputError(f"video file not found: {path} (check the path)")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes): choose another file")
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None
    except _av_errors() as exc:
        raise InputError(f"{path} is not a video FFmpeg can read ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path} has no video stream (is it an audio or data file?)")
    return container


def _reason(exc: BaseException) -> str:
    """A short reason from an FFmpeg error, without the path it repeats."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":")[0].strip() or type(exc).__name__


class FileSource(Source):
    """A video file decoded with PyAV (any container/codec FFmpeg reads), frame-threaded."""

    seekable = True

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = self.path.name
        self.errors = 0
        self._decoded = 0
        self._ended = self._sought = False
        self._container = open_container(self.path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._check_codec()
        self.fps = _stream_fps(self._stream)
        self.duration = _duration(self._container, self._stream)
        self.frame_count = int(self._stream.frames) or (round(self.duration * self.fps) if self.duration else None)
        self._frames = self._decode()
        self._pending = self._first_frame()
        self.size = (self._pending[0].width, self._pending[0].height)

    def _check_codec(self) -> None:
        if self._stream.codec_context is None or not self._stream.codec_context.name:
            self._container.close()
            raise InputError(f"{self.path}: unsupported video codec (FFmpeg has no decoder for it)")

    def _first_frame(self):
        first = next(self._frames, None)
        if first is None:
            self._container.close()
            raise InputError(f"{self.path} contains no video frames (empty or fully corrupt file)")
        return first

    def _packets(self) -> Iterator:
        """Demuxed packets; a demux error mid-file (truncation) ends the stream, counted once."""
        demux = self._container.demux(self._stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except _av_errors():
                self.errors += 1
                return
            yield packet

    def _decode(self) -> Iterator:
        """(av.VideoFrame, pts seconds from the stream start); a packet that fails to decode is skipped and counted."""
        tb = float(self._stream.time_base or 0) or None
        start = self._stream.start_time or 0
        index = 0
        for packet in self._packets():
            try:
                frames = packet.decode()
            except _av_errors():
                self.errors += 1
                continue
            for frame in frames:
                pts = (frame.pts - start) * tb if (frame.pts is not None and tb) else index / self.fps
                index += 1
                self._decoded += 1
                yield frame, pts
        self._ended = True

    def _next_image(self) -> tuple[np.ndarray, float] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
        else:
            item = next(self._frames, None)
        if item is None:
            return None
        return item[0].to_ndarray(format="bgr24"), item[1]

    def seek(self, seconds: float) -> None:
        """Seek to the keyframe before `seconds`, then decode forward to it (converting only that frame).

        Some containers (MPEG-TS with sparse keyframes) seek past every frame; then the search
        restarts from the beginning of the file.
        """
        target = max(0.0, seconds)
        tb = float(self._stream.time_base)
        start = self._stream.start_time or 0
        for offset in (int(target / tb) + start, start):
            if self._seek_to(offset, target):
                return

    def _seek_to(self, offset: int, target: float) -> bool:
        """Container seek to `offset` (stream time base), then decode up to `target` s; False if nothing came."""
        try:
            self._container.seek(offset, stream=self._stream, backward=True)
        except _av_errors():
            return False
        self._sought = True
        self._frames = self._decode()
        self._pending = None
        last = None
        for frame, pts in self._frames:
            last = (frame, pts)
            if pts >= target - 0.5 / self.fps:
                break
        self._pending = last  # the target frame, or the last one when seeking past the end
        return last is not None

    def problem(self) -> InputError | None:
        if self.errors:
            return InputError(f"{self.path}: skipped {self.errors} corrupt or unreadable packet(s); "
                              f"{self._decoded} frames were read (the file is damaged: re-export or re-copy it)")
        expected = self.frame_count
        if self._ended and not self._sought and expected and self._decoded < 0.97 * expected - 1:
            return InputError(f"{self.path} ended after {self._decoded} of about {expected} frames "
                              "(truncated file: the copy or recording was interrupted)")
        return None

    def close(self) -> None:
        self._container.close()


def _duration(container, stream) -> float | None:
    """Seconds of video from the stream or the container header; None if neither says."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 1.0 <= float(rate) <= 1000.0:
            return float(rate)
    return 30.0


# -------------------------------------------------------------------------------------- devices

# OpenCV capture back-end per platform (V4L2 on Linux, DirectShow on Windows).
CAPTURE_APIS = {"linux": "CAP_V4L2", "win32": "CAP_DSHOW", "darwin": "CAP_AVFOUNDATION"}


def _capture_api() -> int:
    import cv2

    return getattr(cv2, CAPTURE_APIS.get(sys.platform, "CAP_ANY"), cv2.CAP_ANY)


def _open_capture(device: int | str, api: int):
    """cv2.VideoCapture with OpenCV's own warnings silenced (we raise one clear error instead)."""
    import cv2

    logging = getattr(cv2, "utils", None) and getattr(cv2.utils, "logging", None)
    old = logging.getLogLevel() if logging else None
    if logging:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(device, api)
    finally:
        if logging:
            logging.setLogLevel(old)


class DeviceSource(Source):
    """A capture card or webcam through OpenCV; frames arrive at the device's own pace."""

    live = True
    # Consecutive failed reads before the device counts as gone (a USB hiccup is one or two).
    MAX_FAILED_READS = 5

    def __init__(self, device: int | str, *, size=None, fps=None, fourcc=None, capture_factory: Callable | None = None):
        super().__init__()
        self.device = device
        self.name = device if isinstance(device, str) else f"device {device}"
        if isinstance(device, str) and not Path(device).exists():
            raise CaptureError(f"capture device {device} not found (is the capture card plugged in?)")
        factory = capture_factory or (lambda d: _open_capture(d, _capture_api()))
        self._cap = factory(device)
        if self._cap is None or not self._cap.isOpened():
            raise CaptureError(f"cannot open capture device {device} (absent, busy or no permission): close other "
                               "programs using it, check its cable, and on Linux that you are in the 'video' group")
        self._t0 = time.monotonic()
        self._pending: tuple[np.ndarray, float] | None = None
        self._configure(size, fps, fourcc)
        if not all(self.size):  # the driver did not say: learn the size from the first frame
            self._pending = self._grab()
            self.size = (self._pending[0].shape[1], self._pending[0].shape[0])

    def _configure(self, size, fps, fourcc) -> None:
        import cv2

        cap = self._cap
        if fourcc:  # must precede size/fps: many cards only offer high rates in MJPG
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))  # type: ignore[attr-defined]
        if size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (w, h) if w and h else (0, 0)
        got = float(cap.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = got if 1.0 <= got <= 1000.0 else float(fps or 30.0)

    def _next_image(self) -> tuple[np.ndarray, float] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        return self._grab()

    def _grab(self) -> tuple[np.ndarray, float]:
        for _ in range(self.MAX_FAILED_READS):
            ok, image = self._cap.read()
            if ok and image is not None:
                return image, time.monotonic() - self._t0
            self.errors += 1
        raise CaptureError(f"capture device {self.device} stopped delivering frames (unplugged?): check the cable and "
                           "the tower's signal; plug a USB card into the computer itself, not a hub")

    def close(self) -> None:
        self._cap.release()


# ----------------------------------------------------------------------------------------- demo


class DemoSource(Source):
    """The generated endoscopy-like clip (app/synthetic.py); endless unless `frames` is given."""

    seekable = True

    def __init__(self, *, size=None, fps=None, frames: int | None = None, seed: int = 0):
        super().__init__()
        from polypview.synthetic import DemoClip

        self.clip = DemoClip(size=tuple(size or (1280, 720)), seed=seed)
        self.fps = float(fps or 30.0)
        self.size = self.clip.size
        self.frame_count = frames
        self.duration = frames / self.fps if frames else None
        self.name = "demo"
        self._index = 0

    def _next_image(self) -> tuple[np.ndarray, float] | None:
        if self.frame_count is not None and self._index >= self.frame_count:
            return None
        t = self._index / self.fps
        self._index += 1
        return self.clip.frame(t), t

    def seek(self, seconds: float) -> None:
        self._index = max(0, int(round(seconds * self.fps)))


# ------------------------------------------------------------------------------------- registry


def parse_device(spec) -> int | str | None:
    """A capture device: an index (int or digits) or a /dev/videoN path; None if `spec` is not one."""
    if isinstance(spec, int):
        return spec
    text = str(spec)
    if text.isdigit():
        return int(text)
    if text.startswith("/dev/video"):
        return text
    return None


def _device(spec) -> int | str:
    device = parse_device(spec)
    if device is None:
        raise ConfigError(f"{spec!r} is not a capture device: give an index (0, 1, ...) or /dev/videoN")
    return device


SOURCE_KINDS: Registry[Callable[..., Source]] = Registry("source kind", {
    "demo": lambda spec, **kw: DemoSource(size=kw.get("size"), fps=kw.get("fps")),
    "device": lambda spec, **kw: DeviceSource(_device(spec), **kw),
    "file": lambda spec, **kw: FileSource(spec),
})


def source_kind(spec) -> str:
    """Which entry of SOURCE_KINDS handles `spec`."""
    if isinstance(spec, str) and spec == "demo":
        return "demo"
    if parse_device(spec) is not None:
        return "device"
    return "file"


def open_source(spec, *, size=None, fps=None, fourcc=None, kind: str | None = None) -> Source:
    """Open a video file path, a device index or /dev/videoN, or "demo"."""
    return SOURCE_KINDS[kind or source_kind(spec)](spec, size=size, fps=fps, fourcc=fourcc)
