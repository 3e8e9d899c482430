"""Fixtures for the pytest-benchmark files: a generated 1080p clip, its frames, and a model engine.

Run with `python3 -m pytest benchmarks/` (not part of the default test path `tests/`).
The model is $POLYPVIEW_BENCH_MODEL, else the shipped default, else a light random CNN for timing.
"""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test helpers (onnx_models) make the fallback model

from polypview.benchclips import ClipSpec, make_clip  # noqa: E402
from polypview.errors import ModelFileError  # noqa: E402

HD = (1920, 1080)


@pytest.fixture(scope="session")
def hd_clip(tmp_path_factory) -> Path:
    """Two seconds of the demo clip at 1080p30, H.264."""
    return make_clip("demo", ClipSpec(HD, 30.0, 2.0), tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="session")
def hd_frames(hd_clip) -> list:
    """The clip's first 30 frames, decoded (BGR)."""
    from polypview.sources import open_source

    source = open_source(str(hd_clip))
    frames = []
    while len(frames) < 30 and (frame := source.read()) is not None:
        frames.append(frame.image)
    source.close()
    return frames


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    """The benchmark model: $POLYPVIEW_BENCH_MODEL, the shipped default, or a light random CNN."""
    from polypview.inference.runtime.engine import load_engine

    model = os.environ.get("POLYPVIEW_BENCH_MODEL")
    try:
        eng = load_engine(model)
    except ModelFileError:
        if model:
            raise
        from onnx_models import make_conv_model

        eng = load_engine(make_conv_model(tmp_path_factory.mktemp("model") / "conv.onnx"))
    yield eng
    eng.close()
