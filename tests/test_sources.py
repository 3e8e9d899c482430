"""Sources: files of many containers/codecs, the demo clip, devices (absent, unplugged), seeking."""

import time

import numpy as np
import pytest

from polypview.errors import CaptureError, InputError
from polypview.sources import DemoSource, DeviceSource, FileSource, open_source, source_kind
from polypview.synthetic import DemoClip

from clips import corrupt, frame_number, make_clip, make_empty_clip, truncate


def read_all(source):
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


@pytest.mark.parametrize(
    "codec, ext, size, fps",
    [("libx264", "mp4", (160, 120), 30), ("mpeg4", "avi", (176, 144), 25), ("mjpeg", "mkv", (160, 120), 15),
     ("libvpx-vp9", "webm", (192, 108), 30), ("libx264", "ts", (320, 240), 24)],
)
def test_file_source_reads_every_frame_in_order(tmp_path, codec, ext, size, fps):
    path = make_clip(tmp_path / f"clip.{ext}", frames=24, size=size, fps=fps, codec=codec)
    with open_source(path) as source:
        assert isinstance(source, FileSource)
        assert source.size == size and source.fps == pytest.approx(fps)
        frames = read_all(source)
    assert [frame_number(f.image) for f in frames] == list(range(24))
    assert [f.seq for f in frames] == list(range(24))
    assert all(b.t_enter >= a.t_enter for a, b in zip(frames, frames[1:]))
    assert frames[5].pts == pytest.approx(5 / fps, abs=1e-3)
    assert frames[0].image.dtype == np.uint8 and frames[0].image.shape == (size[1], size[0], 3)


@pytest.mark.parametrize("ext", ["mp4", "ts", "mkv"])
def test_seek_lands_on_the_requested_frame(tmp_path, ext):
    path = make_clip(tmp_path / f"clip.{ext}", frames=60, fps=30)
    with open_source(path) as source:
        source.read()
        source.seek(1.0)
        frame = source.read()
        assert frame_number(frame.image) == 30 and frame.pts == pytest.approx(1.0)
        assert frame.seq == 1  # seq keeps increasing across a seek
        source.seek(0.2)
        assert frame_number(source.read().image) == 6
        source.seek(99.0)  # past the end: the last frame, then the end
        assert frame_number(source.read().image) == 59 and source.read() is None


def test_bad_files_raise_input_error(tmp_path):
    (tmp_path / "text.mp4").write_text("not a video " * 50)
    (tmp_path / "zero.mp4").write_bytes(b"")
    make_empty_clip(tmp_path / "empty.avi")
    cases = {"missing.mp4": "not found", "text.mp4": "not a video", "zero.mp4": "empty", "empty.avi": "no video frames"}
    for name, words in cases.items():
        with pytest.raises(InputError, match=words):
            open_source(tmp_path / name)


def test_truncated_file_plays_what_is_there(tmp_path):
    path = truncate(make_clip(tmp_path / "clip.mkv", frames=60, codec="mpeg4"), 0.5)
    with open_source(path) as source:
        numbers = [frame_number(f.image) for f in read_all(source)]
    assert 10 < len(numbers) < 60 and numbers == list(range(len(numbers)))


def test_corrupt_packets_are_skipped_and_counted(tmp_path):
    path = corrupt(make_clip(tmp_path / "clip.avi", frames=60, codec="mjpeg"), 0.3, 0.6)
    with open_source(path) as source:
        numbers = [frame_number(f.image) for f in read_all(source)]
        errors = source.errors
    assert errors > 0 and 30 < len(numbers) and len(numbers) + errors <= 60  # the demuxer may drop a few more
    assert numbers == sorted(numbers) and numbers[-1] == 59


def test_demo_is_deterministic_and_endoscope_like():
    a, b = DemoClip((320, 180), seed=3), DemoClip((320, 180), seed=3)
    f1, f2 = a.frame(1.5), b.frame(1.5)
    assert f1.shape == (180, 320, 3) and np.array_equal(f1, f2)
    assert not np.array_equal(f1, a.frame(1.6))  # it moves
    assert f1[90, 5].max() < 10  # black border outside the circular field
    centre = f1[60:120, 120:200].reshape(-1, 3).mean(axis=0)
    assert centre[2] > centre[1] and centre[2] > centre[0]  # reddish mucosa
    assert not np.array_equal(DemoClip((320, 180), seed=4).frame(1.5), f1)


def test_demo_source_counts_and_seeks():
    source = open_source("demo", size=(160, 120), fps=20)
    assert isinstance(source, DemoSource) and source.size == (160, 120) and source.fps == 20
    frames = [source.read() for _ in range(3)]
    assert [f.seq for f in frames] == [0, 1, 2] and frames[2].pts == pytest.approx(0.1)
    source.seek(2.0)
    assert source.read().pts == pytest.approx(2.0)


def test_source_kinds():
    assert source_kind("demo") == "demo"
    assert source_kind(0) == source_kind("2") == source_kind("/dev/video3") == "device"
    assert source_kind("clip.mp4") == "file"


def test_absent_device_raises_capture_error():
    with pytest.raises(CaptureError, match="not found"):
        open_source("/dev/video99")
    with pytest.raises(CaptureError, match="cannot open") as caught:
        open_source(63)
    assert "close other programs using it" in str(caught.value)  # the line says what to do, too


class FakeCapture:
    """A cv2.VideoCapture stand-in that delivers `frames` frames, then fails like an unplugged card."""

    def __init__(self, frames, delay: float = 0.0):
        self.left, self.delay = frames, delay
        self.released = False

    def isOpened(self):
        return True

    def set(self, prop, value):
        return True

    def get(self, prop):
        return 0

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        time.sleep(self.delay)  # a real card delivers at its frame rate
        return True, np.zeros((120, 160, 3), np.uint8)

    def release(self):
        self.released = True


def test_unplugged_device_raises_capture_error():
    cap = FakeCapture(3)
    source = DeviceSource(0, size=(160, 120), fps=30, capture_factory=lambda d: cap)
    assert source.live and source.size == (160, 120) and source.fps == 30
    assert [source.read().seq for _ in range(3)] == [0, 1, 2]
    with pytest.raises(CaptureError, match=r"stopped delivering frames \(unplugged\?\): check the cable"):
        source.read()
    source.close()
    assert cap.released


def test_image_clip_pans_and_zooms_over_still_images():
    from polypview.synthetic import ImageClip

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (300, 400, 3), dtype=np.uint8) for _ in range(2)]
    images = [cv2_blur(im) for im in images]
    clip = ImageClip(images, size=(160, 90), seconds=1.0)
    a, b, c = clip.frame(0.0), clip.frame(1 / 30), clip.frame(1.2)
    assert a.shape == (90, 160, 3)
    assert np.abs(a.astype(int) - b).mean() < np.abs(a.astype(int) - c).mean()  # slow drift, then the next image
    assert not np.array_equal(a, b)


def cv2_blur(image):
    import cv2

    return cv2.GaussianBlur(image, (0, 0), 8)


def test_image_clip_from_the_dataset(neopolyp_dir, tmp_path):
    from polypview.synthetic import write_image_clip

    images = sorted((neopolyp_dir / "train" / "images").glob("*"))[:2]
    write_image_clip(tmp_path / "real.mp4", images, frames=12, size=(320, 180), fps=6)
    with open_source(tmp_path / "real.mp4") as source:
        frames = read_all(source)
    assert len(frames) == 12 and frames[0].image.shape == (180, 320, 3)
