"""What the pipeline expects of its parts (Protocols the real classes and the test fakes both fit) and what it
hands to a sink (`Presented`).

The pipeline, the session controller and the headless runner are written against these, not against
the concrete classes, so a fake engine or source in a test is checked by the same contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from polypview.errors import PolypviewError
    from polypview.sources import Frame
    from polypview.stats import Stats, Summary

Roi = tuple[int, int, int, int]  # (x, y, w, h) of the endoscope's image area in frame pixels


class ModelDescription(Protocol):
    """The part of a model file's description that drawing needs."""

    classes: list[str]
    colors: list


@runtime_checkable
class Engine(Protocol):
    """A loaded model (inference.runtime.engine.Engine, or a fake)."""

    name: str
    backend: str  # "onnxruntime" | "torch"
    provider: str
    info: ModelDescription  # and more: the model file's whole description

    def predict(self, frame_bgr: np.ndarray, roi: Roi | None = None) -> Any: ...

    def close(self) -> None: ...


@runtime_checkable
class Source(Protocol):
    """A video input (sources.Source and its kinds, or a fake)."""

    fps: float
    size: tuple[int, int]
    frame_count: int | None  # exact or estimated from the duration; None when unknown
    duration: float | None  # seconds; None for a live capture or an endless input
    seekable: bool
    live: bool
    name: str
    errors: int

    def read(self) -> Frame | None: ...

    def seek(self, seconds: float) -> None: ...

    def problem(self) -> PolypviewError | None: ...

    def close(self) -> None: ...


@dataclass
class Presented:
    """A frame as handed to the sink."""

    seq: int
    image: np.ndarray  # annotated BGR (the raw frame itself when nothing is drawn)
    raw: np.ndarray  # the source frame
    overlay_seq: int | None  # seq of the frame whose mask is drawn, None when none is
    stale: bool  # a model is running but no mask young enough was available
    stats: Stats
    pts: float
    reshown: bool = False  # the same frame again, now with its own mask (count it once)
    prediction: Any = None  # the Prediction whose mask is drawn (None when none is)
    marked: bool = False  # a polyp region is drawn on `image`


@runtime_checkable
class Sink(Protocol):
    """Where the pipeline hands its output, from its own threads (the window turns these into Qt signals)."""

    def on_frame(self, p: Presented) -> None: ...

    def on_error(self, e: PolypviewError) -> None: ...

    def on_finished(self, summary: Summary) -> None: ...
