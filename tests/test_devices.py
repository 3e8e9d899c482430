"""Capture-device listing (V4L2 enumeration), checked against a fake driver answering the same ioctls."""

from __future__ import annotations

import errno
import struct

from polypview.devices import (
    VIDIOC_ENUM_FMT,
    VIDIOC_ENUM_FRAMEINTERVALS,
    VIDIOC_ENUM_FRAMESIZES,
    CaptureFormat,
    list_devices,
)


def fourcc(text: str) -> int:
    return int.from_bytes(text.encode(), "little")


class FakeDriver:
    """video0: MJPG 1920x1080 @ 60/30 and YUYV 640x480 @ 30; video1: a metadata node (no capture format)."""

    def __init__(self, tmp_path):
        self.fds: dict[int, str] = {}
        self.table = {
            "video0": {fourcc("MJPG"): {(1920, 1080): [(1, 60), (1, 30)]}, fourcc("YUYV"): {(640, 480): [(1, 30)]}},
            "video1": {},
        }

    def __call__(self, fd, request, buf):
        import os

        node = os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[1]
        formats = self.table[node]
        index = struct.unpack_from("<I", buf, 0)[0]
        if request == VIDIOC_ENUM_FMT:
            codes = list(formats)
            self._check(index, codes)
            struct.pack_into("<I", buf, 44, codes[index])
        elif request == VIDIOC_ENUM_FRAMESIZES:
            sizes = list(formats[struct.unpack_from("<I", buf, 4)[0]])
            self._check(index, sizes)
            struct.pack_into("<III", buf, 8, 1, *sizes[index])
        elif request == VIDIOC_ENUM_FRAMEINTERVALS:
            code, w, h = struct.unpack_from("<III", buf, 4)
            rates = formats[code][(w, h)]
            self._check(index, rates)
            struct.pack_into("<III", buf, 16, 1, *rates[index])
        else:
            raise OSError(errno.ENOTTY, "unknown ioctl")

    @staticmethod
    def _check(index, items):
        if index >= len(items):
            raise OSError(errno.EINVAL, "no more")


def test_devices_are_listed_with_their_formats(tmp_path):
    dev, sys_root = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for name in ("video0", "video1"):
        (dev / name).write_bytes(b"")
        (sys_root / name).mkdir(parents=True)
        (sys_root / name / "name").write_text("USB Capture HDMI\n")
    devices = list_devices(dev, sys_root, ioctl=FakeDriver(tmp_path))
    assert [d.path for d in devices] == [str(dev / "video0")]  # the metadata node is left out
    device = devices[0]
    assert device.label() == f"USB Capture HDMI ({dev / 'video0'})"
    assert device.formats == [CaptureFormat("MJPG", 1920, 1080, 60.0), CaptureFormat("MJPG", 1920, 1080, 30.0),
                              CaptureFormat("YUYV", 640, 480, 30.0)]
    assert device.formats[0].label() == "MJPG 1920x1080 @ 60 fps"


def test_no_devices_is_an_empty_list(tmp_path):
    assert list_devices(tmp_path, tmp_path, ioctl=FakeDriver(tmp_path)) == []
