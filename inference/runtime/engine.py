"""Run a polypview model file on video frames: pre-process, infer with a backend, post-process.

Backends live in their own modules (``backend_ort``, ``backend_torch``) behind a string
registry and are imported lazily, so the viewer's ONNX Runtime path never imports torch.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from polypview.errors import ConfigError, ModelFileError
from polypview.inference.runtime.modelfile import INPUT_NAME, OUTPUT_NAME, ModelInfo
from polypview.registry import Registry

log = logging.getLogger(__name__)

DEFAULT_MODEL = "nanonet-lite0-neo"
# Backend name -> module that defines `open_backend(path, threads=..., **options)`.
BACKENDS = Registry("backend", {"ort": "polypview.inference.runtime.backend_ort",
                                "torch": "polypview.inference.runtime.backend_torch"},
                    aliases={"auto": "ort", "onnxruntime": "ort", "pytorch": "torch"})

Roi = tuple[int, int, int, int]  # (x, y, w, h) in frame pixels


@dataclass
class Prediction:
    """One frame's result at model resolution."""

    scores: np.ndarray  # float32 (h, w) polyp confidence in [0, 1]
    labels: np.ndarray  # uint8 (h, w) index of the most likely foreground class
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    roi: Roi | None = None  # the frame area the prediction covers (None: the whole frame)
    probs: np.ndarray | None = None  # float32 (K, h, w) class probabilities (softmax models), for class confidence


class Backend(Protocol):
    """What a runtime backend module's `open_backend` returns."""

    name: str  # "onnxruntime" | "torch"
    provider: str
    metadata: dict[str, str]  # the ONNX metadata_props
    inputs: list[tuple[str, list]]  # (name, shape) with None/str for dynamic dims
    outputs: list[tuple[str, list]]

    def run(self, blob: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


def assets_dir() -> Path:
    """The folder holding the shipped model files."""
    from polypview.assets import ASSETS_DIR

    return Path(ASSETS_DIR)


def find_models(folder: Path | None = None) -> dict[str, Path]:
    """Shipped model files (name = file stem -> path), sorted by name."""
    folder = assets_dir() if folder is None else Path(folder)
    return {p.stem: p for p in sorted(folder.glob("*.onnx"))}


def resolve_model(model: str | Path | None, shipped: dict[str, Path] | None = None) -> Path:
    """A model argument (None, a shipped name or a path) -> the path of an .onnx file."""
    shipped = find_models() if shipped is None else shipped
    if model is None:
        return _default_model(shipped)
    if str(model) in shipped:
        return shipped[str(model)]
    path = Path(model).expanduser()
    if path.exists():
        if path.is_dir():
            raise ModelFileError(f"model file {path} is a folder: pass the .onnx file inside it")
        return path
    names = ", ".join(shipped) or "none are shipped"
    raise ModelFileError(
        f"model file {path} not found: pass an existing .onnx file or a shipped name ({names})"
    )


def _default_model(shipped: dict[str, Path]) -> Path:
    if DEFAULT_MODEL in shipped:
        return shipped[DEFAULT_MODEL]
    if len(shipped) == 1:
        return next(iter(shipped.values()))
    if not shipped:
        raise ModelFileError(
            f"no model is shipped in {assets_dir()}: pass --model FILE.onnx, "
            "or train and run `polypview export` to make one"
        )
    raise ModelFileError(f"no default model ({DEFAULT_MODEL}) shipped; choose one of: {', '.join(shipped)}")


def check_io(info: ModelInfo, inputs, outputs, source: str) -> None:
    """Raise ModelFileError when the graph's input/output disagree with the metadata."""
    problems = _io_problems(info, dict(inputs), dict(outputs))
    if problems:
        raise ModelFileError(f"{source} does not match its metadata: {'; '.join(problems)}")


def _io_problems(info: ModelInfo, inputs: dict, outputs: dict) -> list[str]:
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        return [f"needs input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, "
                f"has inputs {sorted(inputs)} and outputs {sorted(outputs)}"]
    classes = f"classes ({', '.join(info.classes)})"
    return (_shape_problems(INPUT_NAME, inputs[INPUT_NAME], 3, "colour channels", info.input_size)
            + _shape_problems(OUTPUT_NAME, outputs[OUTPUT_NAME], len(info.classes), classes, info.input_size))


def _shape_problems(name: str, shape, channels: int, what: str, size) -> list[str]:
    """Differences between an (N, C, H, W) shape (dynamic dims allowed) and what the metadata implies."""
    if len(shape) != 4:
        return [f"{name} has {len(shape)} dimensions, expected 4 (N, C, H, W)"]
    problems = []
    if _fixed(shape[1]) and shape[1] != channels:
        problems.append(f"{name} has {shape[1]} channels, expected {channels} {what}")
    hw = tuple(shape[2:])
    if all(_fixed(d) for d in hw) and hw != tuple(size):
        problems.append(f"{name} is {hw[0]}x{hw[1]}, metadata input_size is {size[0]}x{size[1]}")
    return problems


def _fixed(dim) -> bool:
    return isinstance(dim, int) and dim > 0


class Preprocess:
    """BGR uint8 frame -> normalised float32 blob (1, 3, h, w) as the model file says."""

    def __init__(self, info: ModelInfo):
        self.size = tuple(info.input_size)  # (h, w)
        swap = info.color_order == "RGB"
        # blobFromImage computes (pixel - mean) * scale, with mean and scale in the output order.
        params = cv2.dnn.Image2BlobParams()
        params.scalefactor = tuple(1.0 / (255.0 * s) for s in info.std)
        params.mean = tuple(255.0 * m for m in info.mean)
        params.swapRB = swap
        params.ddepth = cv2.CV_32F
        params.size = (self.size[1], self.size[0])
        self._params = params

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray:
        return cv2.dnn.blobFromImageWithParams(shrink(image_bgr, self.size), self._params)


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (h, w) as the training loader does: area averaging when shrinking, else bilinear."""
    h, w = size
    if image.shape[0] <= h and image.shape[1] <= w:
        return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    # Exact 2x INTER_AREA steps have a fast path (about 6x cheaper than one large INTER_AREA at
    # 1080p); halving first and finishing on the small image stays an area average.
    while image.shape[0] >= 2 * h and image.shape[1] >= 2 * w:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def postprocess(probs: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """(K, h, w) class probabilities -> (polyp scores float32 in [0, 1], labels uint8)."""
    probs = np.asarray(probs, dtype=np.float32)
    scores = probs.sum(axis=0) if activation == "softmax" else probs.max(axis=0)
    np.clip(scores, 0.0, 1.0, out=scores)
    return scores, argmax_channels(probs)


def argmax_channels(probs: np.ndarray) -> np.ndarray:
    """uint8 index of the largest of K channels (first on ties), like argmax(axis=0).

    A loop over the few channels is ~20x faster than numpy's argmax over the first axis.
    """
    labels = np.zeros(probs.shape[1:], np.uint8)
    best = probs[0].copy()
    for k in range(1, probs.shape[0]):
        better = probs[k] > best
        labels[better] = k
        np.maximum(best, probs[k], out=best)
    return labels


class Engine:
    """A loaded model: `predict(frame)` runs pre-processing, the backend and post-processing."""

    def __init__(self, backend: Backend, info: ModelInfo, name: str):
        self._backend = backend
        self.info = info
        self.name = name
        self.backend = backend.name
        self.provider = backend.provider
        self.threads = getattr(backend, "threads", None)  # intra-op threads where the backend says
        self._preprocess = Preprocess(info)

    def predict(self, frame_bgr: np.ndarray, roi: Roi | None = None) -> Prediction:
        """Infer one BGR frame (or only its `roi` crop); timings in seconds per stage."""
        t0 = time.perf_counter()
        image = frame_bgr if roi is None else _crop(frame_bgr, roi)
        blob = self._preprocess(image)
        t1 = time.perf_counter()
        probs = self._backend.run(blob)
        t2 = time.perf_counter()
        scores, labels = postprocess(probs[0], self.info.activation)
        t3 = time.perf_counter()
        timings = {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2}
        classes = np.asarray(probs[0], dtype=np.float32) if self.info.activation == "softmax" else None
        return Prediction(scores, labels, timings, roi, classes)

    def close(self) -> None:
        """Release the backend (sessions, GPU memory)."""
        self._backend.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Engine({self.name!r}, backend={self.backend!r}, provider={self.provider!r})"


def _crop(frame: np.ndarray, roi: Roi) -> np.ndarray:
    x, y, w, h = roi
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > frame.shape[1] or y + h > frame.shape[0]:
        raise ConfigError(f"region of interest {roi} lies outside the {frame.shape[1]}x{frame.shape[0]} frame")
    return frame[y:y + h, x:x + w]


def backend_module(backend: str):
    """The module implementing `backend` ("auto", "ort", "torch"); unknown names list the valid ones."""
    return importlib.import_module(BACKENDS[backend])


def load_engine(model: str | Path | None = None, backend: str = "auto", threads: int | None = None,
                input_size: tuple[int, int] | None = None, **options) -> Engine:
    """Open a model file (None: the default shipped model) with a backend; bad files raise ModelFileError.

    `input_size` (h, w) runs the network at another size than its file says (the networks are fully
    convolutional); a graph with a fixed input size (ONNX Runtime on our exports) refuses it.
    """
    module = backend_module(backend)
    path = resolve_model(model)
    opened = module.open_backend(path, threads=threads, **options)
    try:
        source = f"model file {path}"
        info = ModelInfo.from_metadata(opened.metadata, source=source)
        if input_size is not None and tuple(input_size) != tuple(info.input_size):
            fixed = _shape_problems(INPUT_NAME, dict(opened.inputs).get(INPUT_NAME, []), 3, "", input_size)
            if fixed:
                raise ConfigError(f"{source} takes {info.input_size[0]}x{info.input_size[1]} inputs only on "
                                  f"{getattr(opened, 'name', backend)}: run it at another size with --backend torch")
            info = replace(info, input_size=tuple(input_size))
        check_io(info, opened.inputs, opened.outputs, source)
    except BaseException:
        opened.close()
        raise
    engine = Engine(opened, info, path.stem)
    log.info("model %s (%s) on %s, %s", engine.name, info.architecture, engine.backend, engine.provider)
    return engine


class TemporalSmoother:
    """Mean of the scores over the last n predictions; the newest always counts, so no delay is added."""

    def __init__(self, n: int):
        self.n = max(int(n), 1)
        self._history: deque[np.ndarray] = deque(maxlen=self.n)
        self._roi: Roi | None = None

    def __call__(self, p: Prediction) -> Prediction:
        if self.n == 1:
            return p
        if self._history and (self._history[-1].shape != p.scores.shape or self._roi != p.roi):
            self._history.clear()  # a new model or ROI: old scores no longer line up
        self._history.append(p.scores)
        self._roi = p.roi
        mean = np.asarray(np.mean(np.stack(self._history), axis=0, dtype=np.float32))
        return replace(p, scores=mean, timings=dict(p.timings))

    def reset(self) -> None:
        """Forget the history (after a seek or a model change)."""
        self._history.clear()
