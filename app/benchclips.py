"""Clips for `polypview bench`: the generated demo clip, or NeoPolyp images drifting like an endoscope.

Both are encoded with the project's own H.264 writer into a temporary folder; clips made from
the dataset are never written inside the repository.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polypview.errors import ConfigError, DataError
from polypview.inference.training.data import neopolyp_dir

# Named frame sizes and their parser are the viewer's (settings.py): the bench reads sizes as it does.
from polypview.settings import NAMED_SIZES as SIZES  # noqa: E402
from polypview.settings import parse_size  # noqa: E402,F401

REALISTIC_SECONDS_PER_IMAGE = 2.5  # each NeoPolyp image stays on screen this long while the view drifts


@dataclass(frozen=True)
class ClipSpec:
    """One clip to benchmark: frame size, rate and length."""

    size: tuple[int, int]
    fps: float
    seconds: float

    @property
    def label(self) -> str:
        """E.g. 1080p30 (or 800x600@25)."""
        w, h = self.size
        named = next((k for k, v in SIZES.items() if v == (w, h)), None)
        rate = f"{self.fps:g}"
        return f"{named}{rate}" if named else f"{w}x{h}@{rate}"

    @property
    def frames(self) -> int:
        return max(1, int(round(self.seconds * self.fps)))


def parse_list(text: str, convert, what: str) -> list:
    """A comma-separated option (e.g. "720p,1080p") converted item by item."""
    items = [t for t in (s.strip() for s in str(text).split(",")) if t]
    if not items:
        raise ConfigError(f"no {what} given")
    return [convert(t) for t in items]


def parse_fps(text: str) -> float:
    """A frame rate between 1 and 240."""
    try:
        fps = float(text)
    except ValueError:
        raise ConfigError(f"frame rate must be a number such as 30 or 60, got {text!r}") from None
    if not 1 <= fps <= 240:
        raise ConfigError(f"frame rate must lie between 1 and 240, got {text}")
    return fps


def demo_clip(spec: ClipSpec, folder: Path) -> Path:
    """The generated demo clip (app/synthetic.py) as H.264 MP4."""
    from polypview.synthetic import write_demo_video

    path = Path(folder) / f"demo-{spec.label}.mp4"
    write_demo_video(path, frames=spec.frames, size=spec.size, fps=spec.fps)
    return path


def neopolyp_images(data_dir: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` NeoPolyp training images (seeded choice); DataError when the dataset is absent."""
    folder = Path(data_dir) / "train" / "images"
    images = sorted(folder.glob("*.jp*g")) if folder.is_dir() else []
    if not images:
        raise DataError(f"no NeoPolyp images in {folder}: --realistic needs NeoPolyp-Small "
                        "(--data FOLDER, POLYPVIEW_DATA or ../shared/data)")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=min(count, len(images)), replace=False)
    return [images[i] for i in sorted(picks)]


def realistic_clip(spec: ClipSpec, folder: Path, data_dir: Path | None = None) -> Path:
    """NeoPolyp images drifting like an endoscope (synthetic.ImageClip), as H.264 MP4 in `folder`."""
    from polypview.synthetic import write_image_clip

    count = max(1, math.ceil(spec.seconds / REALISTIC_SECONDS_PER_IMAGE))
    paths = neopolyp_images(data_dir or neopolyp_dir(), count)
    path = Path(folder) / f"neopolyp-{spec.label}.mp4"
    try:
        write_image_clip(path, paths, frames=spec.frames, size=spec.size, fps=spec.fps,
                         seconds=REALISTIC_SECONDS_PER_IMAGE)
    except ValueError as exc:  # an unreadable image in the dataset
        raise DataError(f"{exc}: check the dataset in {Path(paths[0]).parent}") from None
    return path


CLIP_KINDS = {"demo": demo_clip, "realistic": realistic_clip}


def make_clip(kind: str, spec: ClipSpec, folder: Path, **options) -> Path:
    """Generate a clip of `kind` (see CLIP_KINDS) into `folder`."""
    if kind not in CLIP_KINDS:
        raise ConfigError(f"unknown clip kind {kind!r}; valid: {', '.join(CLIP_KINDS)}")
    return CLIP_KINDS[kind](spec, folder, **options)
