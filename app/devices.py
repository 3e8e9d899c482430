"""The capture devices this machine has, with the formats each offers (Linux: V4L2).

`list_devices()` reads /sys/class/video4linux for names and asks each /dev/videoN for its pixel
formats, frame sizes and rates with the V4L2 enumeration ioctls. Nodes that offer no capture format
(the metadata nodes UVC devices add beside each camera) are left out. Elsewhere it returns an empty
list: the window then asks for a device index.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

# ioctl numbers: _IOWR('V', nr, struct) on Linux, for the struct sizes of <linux/videodev2.h>.
VIDIOC_ENUM_FMT = 0xC0405602  # struct v4l2_fmtdesc, 64 bytes
VIDIOC_ENUM_FRAMESIZES = 0xC02C564A  # struct v4l2_frmsizeenum, 44 bytes
VIDIOC_ENUM_FRAMEINTERVALS = 0xC034564B  # struct v4l2_frmivalenum, 52 bytes
BUF_TYPE_VIDEO_CAPTURE = 1
DISCRETE = 1
MAX_ENTRIES = 64  # a driver that never says "no more" must not loop forever


@dataclass(frozen=True)
class CaptureFormat:
    fourcc: str
    width: int
    height: int
    fps: float

    def label(self) -> str:
        return f"{self.fourcc} {self.width}x{self.height} @ {self.fps:g} fps"


@dataclass
class CaptureDevice:
    path: str  # /dev/videoN (what --device takes)
    name: str  # the driver's card name
    formats: list[CaptureFormat] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.name} ({self.path})"


def list_devices(dev_root: str | Path = "/dev", sys_root: str | Path = "/sys/class/video4linux",
                 ioctl=None) -> list[CaptureDevice]:
    """Capture devices with their formats, by device number (an empty list off Linux or without any)."""
    if ioctl is None:
        if not sys.platform.startswith("linux"):
            return []
        import fcntl

        ioctl = fcntl.ioctl
    nodes = sorted(Path(dev_root).glob("video[0-9]*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 0)
    devices = []
    for node in nodes:
        formats = _formats(node, ioctl)
        if formats:
            devices.append(CaptureDevice(str(node), _card_name(Path(sys_root) / node.name), formats))
    return devices


def _card_name(sys_dir: Path) -> str:
    try:
        return (sys_dir / "name").read_text().strip() or sys_dir.name
    except OSError:
        return sys_dir.name


def _formats(node: Path, ioctl) -> list[CaptureFormat]:
    try:
        fd = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    except OSError:  # no permission, busy: not listed (opening it would fail the same way)
        return []
    try:
        return [fmt for code in _pixel_formats(fd, ioctl) for fmt in _sizes_and_rates(fd, ioctl, code)]
    finally:
        os.close(fd)


def _enumerate(fd: int, ioctl, request: int, template: bytes, unpack):
    """Call an ENUM ioctl with index 0, 1, ... until the driver answers EINVAL; yield unpacked answers."""
    for index in range(MAX_ENTRIES):
        buf = bytearray(template)
        struct.pack_into("<I", buf, 0, index)
        try:
            ioctl(fd, request, buf)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTTY):
                raise
            return
        yield unpack(buf)


def _pixel_formats(fd: int, ioctl) -> list[int]:
    template = struct.pack("<III32sII12x", 0, BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0)
    try:
        return list(_enumerate(fd, ioctl, VIDIOC_ENUM_FMT, template, lambda b: struct.unpack_from("<I", b, 44)[0]))
    except OSError:
        return []


def _sizes_and_rates(fd: int, ioctl, code: int) -> list[CaptureFormat]:
    fourcc = code.to_bytes(4, "little").decode("ascii", "replace").strip()
    template = struct.pack("<III24x8x", 0, code, 0)
    sizes = [(w, h) for kind, w, h in _enumerate(fd, ioctl, VIDIOC_ENUM_FRAMESIZES, template,
                                                   lambda b: struct.unpack_from("<III", b, 8)) if kind == DISCRETE]
    formats = []
    for width, height in sizes:
        ival = struct.pack("<IIIII24x8x", 0, code, width, height, 0)
        rates = [den / num for kind, num, den in _enumerate(fd, ioctl, VIDIOC_ENUM_FRAMEINTERVALS, ival,
                                                              lambda b: struct.unpack_from("<III", b, 16))
                 if kind == DISCRETE and num]
        formats += [CaptureFormat(fourcc, width, height, round(fps, 2)) for fps in sorted(set(rates), reverse=True)]
    return sorted(formats, key=lambda f: (-f.width * f.height, -f.fps, f.fourcc))
