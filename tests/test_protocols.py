"""The pipeline's contracts (app/protocols.py) are met by the real parts and by the fakes the tests use in their place."""

import pytest

from polypview.protocols import Engine, Sink, Source

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_real_engine_and_the_fake_engines_fit_the_engine_protocol(tmp_path):
    from test_pipeline import PatternEngine

    from polypview.inference.runtime.engine import load_engine

    from gui_fakes import FakeEngine
    from onnx_models import make_color_model

    engine = load_engine(make_color_model(tmp_path / "m.onnx"), threads=1)
    try:
        for candidate in (engine, PatternEngine(), FakeEngine()):
            assert isinstance(candidate, Engine), type(candidate).__name__
            assert candidate.info.classes and len(candidate.info.colors) == len(candidate.info.classes)
    finally:
        engine.close()


def test_every_source_kind_fits_the_source_protocol(tmp_path):
    from test_sources import FakeCapture

    from polypview.sources import DemoSource, DeviceSource, FileSource

    from clips import make_clip

    sources = [FileSource(make_clip(tmp_path / "c.mp4", frames=3)), DemoSource(frames=3),
               DeviceSource(0, capture_factory=lambda d: FakeCapture(3))]
    for source in sources:
        try:
            assert isinstance(source, Source), type(source).__name__
        finally:
            source.close()


def test_the_sinks_fit_the_sink_protocol():
    from test_pipeline import ListSink

    from polypview.batchjob import TableSink
    from polypview.overlay import OverlaySettings
    from polypview.sinks import HeadlessSink

    for sink in (HeadlessSink(), TableSink(OverlaySettings(), ["neoplastic", "non-neoplastic"]), ListSink()):
        assert isinstance(sink, Sink), type(sink).__name__


def test_a_part_missing_a_method_does_not_fit():
    class NoPredict:
        name, backend, provider, info = "x", "y", "z", None

        def close(self):
            pass

    assert not isinstance(NoPredict(), Engine)
    assert not isinstance(object(), Sink)
