"""The window's session controller, driven without Qt: inputs, model requests, transport and recordings."""

import subprocess
import sys
import time

from polypview.overlay import OverlaySettings
from polypview.session import NO_MODEL, CoreServices, Session
from polypview.settings import Settings

from gui_fakes import FakeEngine, FakeServices


class NullSink:
    def __init__(self):
        self.frames = 0

    def on_frame(self, p):
        self.frames += not p.reshown  # a frame shown again with its own mask counts once

    def on_error(self, e):
        pass

    def on_finished(self, summary):
        pass


def test_session_imports_no_qt():
    code = "import sys, polypview.session; print('PyQt6' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_open_replaces_the_input_and_the_command_line_recording_applies_to_the_first_only(tmp_path):
    services = FakeServices()
    session = Session(Settings(record_path=tmp_path / "first.mp4"), services)
    session.open("a.mp4", NullSink(), OverlaySettings())
    first = services.pipelines[0]
    assert session.recording_path == tmp_path / "first.mp4" and session.spec == "a.mp4"
    session.open("b.mp4", NullSink(), OverlaySettings())  # the caller closes the old input first
    assert session.close_input() == [] and services.pipelines[1].stopped_with is not None
    assert session.pipeline is None and session.source is None and first.overlays
    assert services.opened[1][0] == "b.mp4" and session.settings.record_path is None


def test_only_the_newest_model_request_is_used_and_replaced_engines_close_at_shutdown():
    session = Session(Settings(), FakeServices())
    session.open("a.mp4", NullSink(), OverlaySettings())
    first, load_first = session.request_model("fake-model")
    second, load_second = session.request_model("/models/other.onnx")
    late, current = load_first(), load_second()
    assert session.engine_loaded(second, current) == "/models/other.onnx"
    assert session.engine_loaded(first, late) is None  # it finished last but was asked first
    assert session.engine is current and session.pipeline.engines[-1] is current
    assert session.models.files == {"other": "/models/other.onnx"}
    assert session.request_model(NO_MODEL) is None and session.engine is None  # video only, at once
    assert not session.engine_failed(second)  # an old request's failure is not worth a dialog
    session.shutdown()
    assert late.closed and current.closed and session.closed
    later = FakeEngine()
    assert session.engine_loaded(session.models.new("x"), later) is None and later in session.models.retired


def test_transport_states_and_frame_steps():
    session = Session(Settings(), FakeServices())
    assert session.toggle_play() is None and session.step_target(1.0, 1) is None
    session.open("a.mp4", NullSink(), OverlaySettings())
    assert session.step_target(1.0, 1) is None  # only when paused
    assert session.toggle_play() == "paused" and session.paused
    assert session.step_target(1.0, 3) == 1.0 + 3 / 30.0
    session.seek(-4)
    assert session.pipeline.seeks == [0.0]
    assert session.toggle_play() == "playing"
    session.ended()
    assert session.toggle_play() == "replay" and session.step_target(1.0, 1) is None


def test_recordings_are_named_by_time_without_overwriting(tmp_path):
    session = Session(Settings(), FakeServices())
    session.open("a.mp4", NullSink(), OverlaySettings())
    first = session.new_recording_path(tmp_path)
    first.write_bytes(b"")
    second = session.new_recording_path(tmp_path)
    assert first.name.startswith("polypview-") and second != first and second.suffix == ".mp4"
    session.start_recording(tmp_path / "sub" / "r.mp4")
    assert session.recording and session.recording_path == tmp_path / "sub" / "r.mp4"
    assert session.stop_recording().path == tmp_path / "sub" / "r.mp4" and not session.recording


def test_session_plays_a_real_clip_with_a_real_engine(tmp_path):
    from clips import make_clip
    from onnx_models import make_color_model

    session = Session(Settings(), CoreServices())
    sink = NullSink()
    request, load = session.request_model(str(make_color_model(tmp_path / "m.onnx")))
    assert session.engine_loaded(request, load()) is not None
    session.open(str(make_clip(tmp_path / "c.mp4", frames=20)), sink, OverlaySettings())
    deadline = time.monotonic() + 20
    while not session.pipeline.wait(0.1) and time.monotonic() < deadline:
        pass
    assert session.close_input() == [] and sink.frames == 20
    session.shutdown()
    assert session.engine is None
