"""Test clips made with PyAV: each frame carries its own number as black/white blocks.

`make_clip(path, frames, size, fps, codec)` writes a clip; `frame_number(image)` reads the number
back from a decoded (or annotated) frame, so tests can check order and completeness.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

BITS = 12  # frame numbers up to 4095
BAND = 0.25  # the code occupies the top quarter of the frame

# codec -> (pixel format, encoder options); qualities high enough that the blocks survive.
CODECS = {
    "libx264": ("yuv420p", {"crf": "18", "preset": "ultrafast"}),
    "mpeg4": ("yuv420p", {"qscale": "3"}),
    "mjpeg": ("yuvj420p", {"qscale": "3"}),
    "libvpx-vp9": ("yuv420p", {"crf": "20", "b": "0", "deadline": "realtime", "cpu-used": "8"}),
    "ffv1": ("yuv420p", {}),
}


def pattern_frame(n: int, size=(160, 120), box: bool = False) -> np.ndarray:
    """A BGR frame whose top band encodes `n` in BITS blocks and whose body is a colour ramp.

    With `box`, a pure red square (what tests/onnx_models.py's colour model calls neoplastic)
    moves 2 px a frame along the lower half.
    """
    w, h = size
    image = np.empty((h, w, 3), np.uint8)
    image[:] = (40 + (n * 7) % 160, 90, 160 + (n * 3) % 80)  # body colour changes with n
    band = max(8, int(h * BAND))
    bw = w // BITS
    for bit in range(BITS):
        image[:band, bit * bw:(bit + 1) * bw] = 255 if (n >> bit) & 1 else 0
    if box:
        side = h // 4
        x = (2 * n) % (w - side)
        image[h // 2:h // 2 + side, x:x + side] = (0, 0, 255)
    return image


def frame_number(image: np.ndarray) -> int:
    """Read back the number written by pattern_frame (samples the middle of each block)."""
    h, w = image.shape[:2]
    band = max(8, int(h * BAND))
    bw = w // BITS
    gray = image[band // 4: 3 * band // 4].mean(axis=(0, 2)) if image.ndim == 3 else image[band // 4: 3 * band // 4].mean(axis=0)
    n = 0
    for bit in range(BITS):
        block = gray[bit * bw + bw // 4: (bit + 1) * bw - bw // 4]
        n |= int(block.mean() > 128) << bit
    return n


def make_clip(path, frames: int = 30, size=(160, 120), fps: float = 30.0, codec: str = "libx264",
              fmt: str | None = None, box: bool = False) -> Path:
    """Write a pattern clip; the container follows the file extension (or `fmt`)."""
    import av

    path = Path(path)
    pix_fmt, options = CODECS[codec]
    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        stream.options = dict(options)
        for n in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern_frame(n, size, box), format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_empty_clip(path) -> Path:
    """A valid AVI with a video stream and no frames (MP4 and MKV drop an empty track)."""
    import av

    path = Path(path)
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height = 160, 120
        stream.pix_fmt = "yuv420p"
        container.start_encoding()  # writes the header although no frame follows
    return path


def truncate(path, keep: float) -> Path:
    """Cut a file to `keep` (0..1) of its bytes, as an interrupted copy would."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def corrupt(path, start: float = 0.3, end: float = 0.6, every: int = 97, seed: int = 0) -> Path:
    """Overwrite scattered bytes between `start` and `end` (fractions of the file) with noise."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for i in range(int(len(data) * start), int(len(data) * end), every):
        data[i] = int(rng.integers(0, 256))
    path.write_bytes(bytes(data))
    return path


def read_frames(path) -> tuple[list[np.ndarray], float]:
    """All decodable frames of a video (BGR) and its frame rate, as a player would show them.

    A packet cut short at the end of a file whose writer died is skipped, like players do.
    """
    import av

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate)
        for packet in container.demux(stream):
            try:
                frames += [f.to_ndarray(format="bgr24") for f in packet.decode()]
            except av.error.InvalidDataError:
                continue
    return frames, rate


# Box clips for the batch tests: a red (neoplastic) box moving 2 px a frame, and from GREEN_FROM on a
# green (non-neoplastic) one, on grey (see onnx_models.make_color_model).
BOX_SIZE = (160, 120)
GREEN_FROM = 10  # frames from this one on also show a green (non-neoplastic) box


def box_frame(n: int) -> np.ndarray:
    from onnx_models import GREEN_BGR, RED_BGR, paint_frame

    boxes = [((10 + 2 * n, 60, 30, 30), RED_BGR)]
    if n >= GREEN_FROM:
        boxes.append(((110, 10, 24, 24), GREEN_BGR))
    return paint_frame((BOX_SIZE[1], BOX_SIZE[0]), boxes)


def make_box_clip(path: Path, frames: int = 20, fps: float = 30.0, frame=box_frame) -> Path:
    """A clip of `frame(n)` images (default: the moving red box, and a green one from GREEN_FROM)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = BOX_SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast"}
        for n in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame(n), format="bgr24")))
        container.mux(stream.encode(None))
    return path


def polyp_now_and_then(n: int) -> np.ndarray:
    """The red box on frames 0-14 and from 90 on (a grey frame between): two appearances at 30 fps."""
    from onnx_models import paint_frame

    return box_frame(0) if n < 15 or n >= 90 else paint_frame((BOX_SIZE[1], BOX_SIZE[0]), [])


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))
