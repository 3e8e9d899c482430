"""The window (offscreen, pytest-qt): painting, HUD, controls, shortcuts, recording, errors, closing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PyQt6.QtGui import QDropEvent  # noqa: E402
from PyQt6.QtWidgets import QLabel  # noqa: E402

from polypview.errors import InputError, ModelFileError, OutputError  # noqa: E402
from polypview.settings import Settings, source_spec  # noqa: E402
from polypview.stats import hud_lines  # noqa: E402
from polypview.ui import dialogs  # noqa: E402
from polypview.ui.main_window import MainWindow  # noqa: E402
from polypview.ui.video_view import fit_rect  # noqa: E402

from gui_fakes import FakeServices, fake_stats  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def open_window(qtbot, tmp_path, services, **options) -> MainWindow:
    options.setdefault("source", "fake.mp4")
    window = MainWindow(Settings(recordings_dir=tmp_path / "rec", **options), services)
    qtbot.addWidget(window)  # pytest-qt closes it at the end of the test
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.start()
    return window


def wait_frames(qtbot, window, n: int = 3, timeout: int = 5000) -> None:
    qtbot.waitUntil(lambda: window.bridge is not None and window.bridge.presented >= n
                    and window.view.frame() is not None, timeout=timeout)


# ------------------------------------------------------------------------------ pure helpers


def test_hud_lines_show_every_readout():
    text = "\n".join(hud_lines(fake_stats(drops={"inference": 3, "display": 1}), gui_superseded=2, stale=True))
    for expected in ("display 30.0 fps", "inference 25.0 fps, 7.5 ms", "annotation delay p50 40 ms", "p95 65 ms",
                     "display drops 3", "inferences skipped 3", "fake-model", "onnxruntime",
                     "CPUExecutionProvider", "older than the staleness limit"):
        assert expected in text
    assert "display drops 0 · inferences skipped 0" in "\n".join(hud_lines(fake_stats(drops={})))
    assert "–" in "\n".join(hud_lines(fake_stats(inference_fps=float("nan"), inference_ms=None)))
    assert hud_lines(fake_stats(model=""))[0] == "no model (video only)"


def test_fit_rect_keeps_aspect_ratio_and_centres():
    from PyQt6.QtCore import QRect, QSize

    r = fit_rect(QSize(1920, 1080), QRect(0, 0, 1000, 1000))
    assert (r.width(), r.height()) == (1000, 562) and r.y() == (1000 - 562) // 2


def test_source_spec_from_command_line_options():
    assert source_spec("case.mp4", None, False) == "case.mp4"
    assert source_spec(None, "0", False) == 0
    assert source_spec(None, "/dev/video2", False) == "/dev/video2"
    assert source_spec(None, None, True) == "demo"
    assert source_spec(None, None, False) is None


# ------------------------------------------------------------------------------ with a fake pipeline


def test_window_paints_frames_loads_model_and_updates_hud(qtbot, tmp_path, errors):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)
    pipeline = services.pipelines[-1]
    qtbot.waitUntil(lambda: len(pipeline.engines) == 2)  # None at start, then the loaded engine
    assert pipeline.engines[-1] is services.loaded[-1]
    assert window.stack.currentIndex() == 1
    qtbot.waitUntil(lambda: "fps" in window.hud.text(), timeout=2000)
    assert "CPUExecutionProvider" in window.hud.text()
    legend = [w.text() for w in window.panel.legend.findChildren(QLabel) if w.text()]
    assert legend == ["neoplastic", "non-neoplastic"]
    image = window.view.grab().toImage()
    rect = window.view.image_rect()
    pixel = image.pixelColor(rect.center())
    assert (pixel.red(), pixel.green(), pixel.blue()) == (200, 90, 40)  # BGR (40, 90, 200) painted as is
    assert errors == []


def test_shortcuts_trigger_their_actions(qtbot, tmp_path, errors, monkeypatch):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)
    pipeline = services.pipelines[-1]
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert pipeline.paused
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not pipeline.paused
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert pipeline.recording and window.view.recording and window.record_action.isChecked()
    assert pipeline.recording_path.parent == tmp_path / "rec"
    assert pipeline.recording_path.name.startswith("polypview-") and pipeline.recording_path.suffix == ".mp4"
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert not pipeline.recording and not window.view.recording and not window.record_action.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_S)
    snaps = list((tmp_path / "rec").glob("snapshot-*.png"))
    assert len(snaps) == 1
    asked = []
    monkeypatch.setattr(dialogs, "ask_video_file", lambda parent, folder=None: asked.append(True) or None)
    qtbot.keyClick(window, Qt.Key.Key_O)
    assert asked == [True]
    qtbot.keyClick(window, Qt.Key.Key_F)
    qtbot.waitUntil(window.isFullScreen, timeout=2000)
    assert window.panel.isHidden()
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.isFullScreen(), timeout=2000)
    assert not window.panel.isHidden() and window.isVisible()  # Esc never closes the window
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert window.hud.isHidden()
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert not window.hud.isHidden()
    assert errors == []


def test_snapshot_is_the_annotated_frame_on_screen(qtbot, tmp_path, errors):
    import cv2

    window = open_window(qtbot, tmp_path, FakeServices())
    wait_frames(qtbot, window)
    window.pipeline.pause()
    qtbot.wait(100)
    path = window.snapshot()
    assert np.array_equal(cv2.imread(str(path)), window.view.frame())


def test_each_model_brings_its_own_region_peak_unless_the_command_line_fixed_it(qtbot, tmp_path, errors):
    services = FakeServices()
    services.model_overlays["other-model"] = {"min_peak": 0.8}
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)
    qtbot.waitUntil(lambda: window.engine is not None, timeout=2000)
    pipeline = services.pipelines[-1]
    window.panel.peak_slider.setValue(95)  # the user's choice holds for this model...
    assert pipeline.overlays[-1].min_peak == 0.95
    window.panel.model_chosen.emit("other-model")  # ...and a model whose file says 0.8 brings its own
    qtbot.waitUntil(lambda: window.engine.name == "other-model", timeout=2000)
    assert pipeline.overlays[-1].min_peak == 0.8 and window.panel.peak_label.text() == "region peak 0.80"
    window.panel.model_chosen.emit("fake-model")  # a file without one: the app's default
    qtbot.waitUntil(lambda: window.engine.name == "fake-model", timeout=2000)
    assert pipeline.overlays[-1].min_peak == 0.9 and window.panel.peak_label.text() == "region peak 0.90"

    fixed = FakeServices()
    fixed.model_overlays["other-model"] = {"min_peak": 0.8}
    window = open_window(qtbot, tmp_path, fixed, overlay={"min_peak": 0.0})  # --min-peak 0 on the command line
    wait_frames(qtbot, window)
    window.panel.model_chosen.emit("other-model")
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.name == "other-model", timeout=2000)
    assert window.overlay.min_peak == 0.0 and window.panel.peak_label.text() == "region peak off"


def test_controls_change_the_overlay_and_seek(qtbot, tmp_path, errors):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)
    pipeline = services.pipelines[-1]
    window.panel.opacity_slider.setValue(80)
    window.panel.style_combo.setCurrentText("contour")
    window.panel.threshold_slider.setValue(30)
    assert pipeline.overlays[-1].min_peak == 0.9 and window.panel.peak_label.text() == "region peak 0.90"
    window.panel.peak_slider.setValue(0)
    assert pipeline.overlays[-1].min_peak == 0.0 and window.panel.peak_label.text() == "region peak off"
    assert pipeline.overlays[-1].one_class_per_region
    window.panel.region_check.setChecked(False)
    window.panel.overlay_check.setChecked(False)
    last = pipeline.overlays[-1]
    assert (last.opacity, last.style, last.threshold, last.enabled) == (0.8, "contour", 0.3, False)
    assert not last.one_class_per_region
    assert window.transport.slider.isVisible() and window.transport.slider.maximum() == 2000
    window.transport.slider.setValue(1500)
    assert pipeline.seeks == [1.5]


def test_command_line_overlay_options_reach_the_pipeline(qtbot, tmp_path, errors):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services, overlay={"opacity": 0.7, "style": "contour", "enabled": False,
                                                             "one_class_per_region": False})
    first = services.pipelines[-1].overlays[0]
    assert (first.opacity, first.style, first.enabled, first.one_class_per_region) == (0.7, "contour", False, False)
    assert window.panel.overlay_values()["opacity"] == 0.7 and not window.panel.overlay_check.isChecked()
    assert not window.panel.region_check.isChecked()


def test_model_choice_loads_off_the_gui_thread_and_swaps_the_engine(qtbot, tmp_path, errors, monkeypatch):
    services = FakeServices(load_delay=0.3)
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)  # frames flow while the first engine is still loading
    pipeline = services.pipelines[-1]
    assert pipeline.engines == [None]
    qtbot.waitUntil(lambda: len(pipeline.engines) == 2, timeout=3000)
    window.panel.model_chosen.emit("other-model")
    qtbot.waitUntil(lambda: len(pipeline.engines) == 3, timeout=3000)
    assert pipeline.engines[-1].name == "other-model"
    monkeypatch.setattr(dialogs, "ask_model_file", lambda parent, folder=None: "/somewhere/custom.onnx")
    window.panel.model_chosen.emit("Open model file…")
    qtbot.waitUntil(lambda: len(pipeline.engines) == 4, timeout=3000)
    assert pipeline.engines[-1].name == "custom" and window.panel.model_combo.currentText() == "custom"
    window.panel.model_chosen.emit("none")  # video only
    assert pipeline.engines[-1] is None and window.panel.model_combo.currentText() == "none"
    assert [w.text() for w in window.panel.legend.findChildren(QLabel)] == ["no model loaded"]
    window.panel.model_chosen.emit("custom")  # listed by name, loaded again from its file
    qtbot.waitUntil(lambda: len(pipeline.engines) == 6, timeout=3000)
    assert services.requested[-1] == "/somewhere/custom.onnx" and pipeline.engines[-1].name == "custom"
    window.close()
    assert all(e.closed for e in services.loaded)  # replaced engines are closed at shutdown


def test_model_failure_shows_the_dialog_and_video_keeps_playing(qtbot, tmp_path, errors):
    services = FakeServices()
    services.fail_load = ModelFileError("model file x.onnx not found: pass an existing .onnx file")
    window = open_window(qtbot, tmp_path, services)
    qtbot.waitUntil(lambda: bool(errors), timeout=3000)
    assert errors == ["model file x.onnx not found: pass an existing .onnx file"]
    wait_frames(qtbot, window)


def test_pipeline_error_goes_to_the_dialog_function(qtbot, tmp_path, errors):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)
    window.toggle_recording()
    pipeline = services.pipelines[-1]
    pipeline.recording = False  # the recorder gave up (disk full) and reports it from its thread
    pipeline.record_error = "disk full while recording x.mp4: free some space"
    pipeline.sink.on_error(OutputError("disk full while recording x.mp4: free some space"))
    qtbot.waitUntil(lambda: bool(errors), timeout=2000)
    assert errors == ["disk full while recording x.mp4: free some space"]
    qtbot.waitUntil(lambda: not window.view.recording, timeout=2000)  # the HUD timer clears REC
    assert not window.record_action.isChecked()
    assert window.statusBar().currentMessage().startswith("Recording stopped early; what was written is in")


def test_bad_input_shows_the_dialog_and_the_start_page(qtbot, tmp_path, errors):
    services = FakeServices()
    services.fail_open = InputError("video file not found: nope.mp4 (check the path)")
    window = open_window(qtbot, tmp_path, services, source="nope.mp4")
    assert errors == ["video file not found: nope.mp4 (check the path)"]
    assert window.stack.currentWidget() is window.start_page


def test_start_page_choices_and_dropped_file(qtbot, tmp_path, errors, monkeypatch):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services, source=None)
    assert window.stack.currentWidget() is window.start_page
    opened = []
    real_open = services.open_source
    monkeypatch.setattr(services, "open_source", lambda spec, **kw: opened.append(spec) or real_open(spec, **kw))
    window.start_page.demo_button.click()
    monkeypatch.setattr(dialogs, "ask_device", lambda parent, devices, last=None: {"device": "2", "size": None,
                                                                                    "fps": None, "fourcc": None})
    window.start_page.device_button.click()
    monkeypatch.setattr(dialogs, "ask_video_file", lambda parent, folder=None: "/videos/case.mp4")
    window.start_page.file_button.click()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile("/videos/dropped.mkv")])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert opened == ["demo", 2, "/videos/case.mp4", "/videos/dropped.mkv"]
    assert all(p.stopped_with is not None for p in services.pipelines[:-1])  # each switch stopped the last one
    assert window.stack.currentIndex() == 1


def test_closing_stops_the_pipeline_with_its_timeout(qtbot, tmp_path, errors):
    services = FakeServices(stop_delay=0.2)
    window = open_window(qtbot, tmp_path, services, stop_timeout_s=2.0)
    wait_frames(qtbot, window)
    qtbot.waitUntil(lambda: bool(services.loaded), timeout=3000)
    window.toggle_recording()
    pipeline = services.pipelines[-1]
    t0 = time.monotonic()
    window.close()
    assert time.monotonic() - t0 < 2.0 + 1.0
    assert pipeline.stopped_with == 2.0 and not pipeline._thread.is_alive() and not pipeline.recording
    assert errors == []
    assert services.sources[-1].closed and services.loaded[-1].closed


def paused_window(qtbot, tmp_path):
    """A window whose (fake) pipeline has shown a few frames and is paused: the test presents the next ones."""
    window = open_window(qtbot, tmp_path, FakeServices())
    wait_frames(qtbot, window)
    window.pipeline.pause()
    qtbot.wait(50)
    return window


def present_from_a_pipeline_thread(bridge, *frames) -> None:
    """Present frames as a pipeline thread does, while the GUI thread waits (busy) for it to finish."""
    worker = threading.Thread(target=lambda: [bridge.on_frame(f) for f in frames])
    worker.start()
    worker.join()


def test_frames_never_queue_up_in_the_gui(qtbot, tmp_path, errors):
    """A burst of frames while the GUI thread is busy ends with one paint of the newest frame."""
    window = paused_window(qtbot, tmp_path)
    bridge = window.bridge
    before = bridge.superseded
    p = window.last_presented
    present_from_a_pipeline_thread(bridge, *(type(p)(seq, p.image, p.raw, seq, False, p.stats, 0.0)
                                             for seq in range(1000, 1010)))
    assert bridge.superseded - before == 9
    qtbot.waitUntil(lambda: window.last_presented.seq == 1009, timeout=1000)
    assert bridge.take() is None


def test_a_frame_shown_again_with_its_own_mask_is_not_a_new_or_lost_frame(qtbot, tmp_path, errors):
    window = paused_window(qtbot, tmp_path)
    bridge = window.bridge
    presented, superseded = bridge.presented, bridge.superseded
    p = window.last_presented
    first = type(p)(2000, p.image, p.raw, 1999, False, p.stats, 0.0)
    again = type(p)(2000, p.image, p.raw, 2000, False, p.stats, 0.0, reshown=True)

    def present(*frames):  # from a pipeline thread, while the GUI thread waits here
        present_from_a_pipeline_thread(bridge, *frames)

    present(first, again)  # the re-show replaces the unpainted first showing: nothing is lost
    assert (bridge.presented - presented, bridge.superseded - superseded) == (1, 0)
    qtbot.waitUntil(lambda: window.last_presented is again, timeout=1000)
    # a re-show replaced by the next frame before it was painted: its frame was painted, nothing lost
    present(type(p)(2001, p.image, p.raw, 2000, False, p.stats, 0.0))
    qtbot.waitUntil(lambda: window.last_presented.seq == 2001, timeout=1000)
    present(type(p)(2001, p.image, p.raw, 2001, False, p.stats, 0.0, reshown=True),
            type(p)(2002, p.image, p.raw, 2001, False, p.stats, 0.0))
    assert (bridge.presented - presented, bridge.superseded - superseded) == (3, 0)
    # a frame replaced before it was painted at all is counted
    present(type(p)(2003, p.image, p.raw, 2002, False, p.stats, 0.0))
    assert (bridge.presented - presented, bridge.superseded - superseded) == (4, 1)


def test_display_sizes_round_as_qt_does():
    from PyQt6.QtCore import QSize, Qt

    from polypview.ui.video_view import fit_size

    for image in ((1920, 1080), (1280, 720), (720, 576), (1350, 1080), (160, 120)):
        for area in ((1024, 711), (1023, 575), (800, 800), (333, 1000), (1919, 1080)):
            qt = QSize(*image).scaled(QSize(*area), Qt.AspectRatioMode.KeepAspectRatio)
            assert fit_size(image, area) == (qt.width(), qt.height())


def test_big_frames_are_shrunk_off_the_gui_thread_and_painted_unscaled(qtbot, tmp_path, errors):
    import cv2

    from polypview.ui.video_view import scale_for_display

    window = paused_window(qtbot, tmp_path)
    view, bridge = window.view, window.bridge
    assert bridge.paint_area == (view.width(), view.height())
    rng = np.random.default_rng(0)
    big = cv2.resize(rng.integers(0, 255, (108, 192, 3), np.uint8), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    p = window.last_presented
    shown = type(p)(3000, big, big, None, False, p.stats, 0.0)
    present_from_a_pipeline_thread(bridge, shown)
    qtbot.waitUntil(lambda: window.last_presented is shown, timeout=1000)
    rect = view.image_rect()
    assert (view._image.width(), view._image.height()) == (rect.width(), rect.height()) < (1920, 1080)
    assert view.frame().shape == (1080, 1920, 3)  # snapshots keep the full frame
    small = scale_for_display(big, (rect.width(), rect.height()))
    area = cv2.resize(big, (rect.width(), rect.height()), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - area).mean() < 2.0  # a faithful shrink
    assert scale_for_display(big[:100, :100], (rect.width(), rect.height())) is None  # small frames: Qt paints them


# ------------------------------------------------------------------------------ layering


def test_gui_path_does_not_import_torch(tmp_path):
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "import polypview.ui.app as app\n"
        "from polypview.ui import dialogs\n"
        "dialogs.show_error = lambda parent, message, title='': print(message, file=sys.stderr)\n"
        "from polypview.ui.main_window import MainWindow, Settings\n"
        "qapp = app.application()\n"
        "w = MainWindow(Settings())\n"
        "w.show(); w.start(); qapp.processEvents(); w.close()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"


# ------------------------------------------------------------------------------ with the real pipeline

RED_BOX, GREEN_BOX = (20, 40, 50, 60), (95, 40, 50, 60)  # (x, y, w, h) in a 160x120 frame
DARK_RED_BGR, DARK_GREEN_BGR = (30, 30, 200), (30, 200, 30)  # the colour model's classes, not yet mask-pure


@pytest.fixture
def color_model(tmp_path) -> Path:
    from onnx_models import make_color_model

    return make_color_model(tmp_path / "color.onnx", input_size=(64, 64))


def box_clip(path: Path, frames: int = 90, fps: float = 30.0) -> Path:
    """Grey frames with a dark-red box (neoplastic to the colour model) and a dark-green one, numbered."""
    from fractions import Fraction

    import av

    from clips import pattern_frame
    from onnx_models import paint_frame

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast"}
        for n in range(frames):
            image = paint_frame((120, 160), [(RED_BOX, DARK_RED_BGR), (GREEN_BOX, DARK_GREEN_BGR)])
            image[:28] = pattern_frame(n, (160, 120))[:28]  # the frame number, in the top band
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


def widget_point(window, x: float, y: float):
    """A point of the source frame -> the video view's coordinates."""
    from PyQt6.QtCore import QPoint

    rect, frame = window.view.image_rect(), window.view.frame()
    return QPoint(rect.x() + int(x * rect.width() / frame.shape[1]), rect.y() + int(y * rect.height() / frame.shape[0]))


def rgb_at(image, point) -> tuple[int, int, int]:
    c = image.pixelColor(point)
    return c.red(), c.green(), c.blue()


def fresh_mask_shown(window) -> bool:
    p = window.last_presented
    return p is not None and p.overlay_seq is not None and not p.stale


def test_window_plays_a_clip_with_the_overlay_where_the_model_predicts(qtbot, tmp_path, errors, real_core,
                                                                       color_model):
    clip = box_clip(tmp_path / "boxes.mp4")
    window = open_window(qtbot, tmp_path, None, source=str(clip), model=str(color_model),
                         overlay={"opacity": 0.8, "legend": False})
    qtbot.waitUntil(lambda: fresh_mask_shown(window), timeout=8000)
    grab = window.view.grab().toImage()
    red = rgb_at(grab, widget_point(window, RED_BOX[0] + 25, RED_BOX[1] + 30))
    green = rgb_at(grab, widget_point(window, GREEN_BOX[0] + 25, GREEN_BOX[1] + 30))
    grey = rgb_at(grab, widget_point(window, 80, 110))
    assert red[0] > 235 and max(red[1:]) < 20, red  # (200, 30, 30) blended 80 % towards (255, 0, 0)
    assert green[1] > 235 and green[0] < 20 and green[2] < 20, green
    assert all(abs(v - 128) < 8 for v in grey), grey  # no mask where the model sees background
    legend = [w.text() for w in window.panel.legend.findChildren(QLabel) if w.text()]
    assert legend == ["neoplastic", "non-neoplastic"]
    assert errors == []


def test_record_from_the_gui_gives_a_playable_file(qtbot, tmp_path, errors, real_core, color_model):
    from clips import frame_number, read_frames

    clip = box_clip(tmp_path / "boxes.mp4", frames=150)
    window = open_window(qtbot, tmp_path, None, source=str(clip), model=str(color_model),
                         overlay={"legend": False})
    qtbot.waitUntil(lambda: fresh_mask_shown(window), timeout=8000)
    bridge = window.bridge
    start = bridge.presented
    window.record_action.trigger()
    assert window.pipeline.recording and window.view.recording
    qtbot.waitUntil(lambda: bridge.presented - start >= 30, timeout=5000)
    window.record_action.trigger()
    presented = bridge.presented - start
    assert not window.pipeline.recording and not window.view.recording
    report = window.last_recording
    frames, rate = read_frames(window.recording_path)
    assert abs(rate - 30.0) < 0.01
    assert len(frames) == report.frames_written
    assert abs(len(frames) - presented) <= report.frames_dropped + 1  # +1: a frame presented during the click
    numbers = [frame_number(f) for f in frames]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert errors == []


def test_closing_mid_recording_finalises_the_file_within_the_timeout(qtbot, tmp_path, errors, real_core,
                                                                       color_model):
    from clips import read_frames

    clip = box_clip(tmp_path / "boxes.mp4", frames=150)
    window = open_window(qtbot, tmp_path, None, source=str(clip), model=str(color_model), stop_timeout_s=3.0)
    qtbot.waitUntil(lambda: window.bridge.presented >= 5, timeout=8000)
    window.record_action.trigger()
    qtbot.waitUntil(lambda: window.bridge.presented >= 20, timeout=5000)
    path = window.recording_path
    t0 = time.monotonic()
    window.close()
    assert time.monotonic() - t0 < 3.0 + 1.0
    frames, rate = read_frames(path)
    assert len(frames) >= 10 and abs(rate - 30.0) < 0.01
    assert errors == []


def test_run_gui_screenshot_of_the_demo_without_torch(tmp_path, real_core, color_model):
    """The whole GUI path in a fresh process: run_gui on the demo clip, grab, exit; torch never imported."""
    png = tmp_path / "shot.png"
    code = (
        "import argparse, os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from pathlib import Path\n"
        "from polypview.settings import Settings\n"
        "from polypview.ui import app, dialogs\n"
        "dialogs.show_error = lambda parent, message, title='': print('ERROR', message, file=sys.stderr)\n"
        f"settings = Settings(source='demo', size=(320, 180), model={str(color_model)!r}, "
        f"screenshot=Path({str(png)!r}), frames=10)\n"
        "code = app.run_gui(settings)\n"
        "print(code, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["0", "False"]
    assert "ERROR" not in out.stderr, out.stderr
    from PyQt6.QtGui import QImage

    image = QImage(str(png))
    assert not image.isNull() and image.width() >= 640


def test_end_of_file_then_space_plays_it_again(qtbot, tmp_path, errors, real_core, color_model):
    clip = box_clip(tmp_path / "short.mp4", frames=12)
    window = open_window(qtbot, tmp_path, None, source=str(clip), model=str(color_model))
    qtbot.waitUntil(lambda: window.finished, timeout=8000)
    assert window.play_action.text() == "Play" and window.view.frame() is not None
    first = window.pipeline
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.pipeline is not first and not window.finished
    qtbot.waitUntil(lambda: window.bridge.presented >= 3, timeout=5000)
    assert errors == []


def test_record_option_records_from_the_first_frame(qtbot, tmp_path, errors, real_core, color_model):
    from clips import frame_number, read_frames

    clip = box_clip(tmp_path / "short.mp4", frames=20)
    out = tmp_path / "out" / "cli.mp4"
    out.parent.mkdir()
    window = open_window(qtbot, tmp_path, None, source=str(clip), model=str(color_model), record_path=out,
                         overlay={"legend": False})
    assert window.view.recording and window.record_action.isChecked()
    qtbot.waitUntil(lambda: window.finished, timeout=8000)
    assert not window.view.recording  # the pipeline finalised the file at the end of the input
    assert window.last_recording.path == out and "recording saved" in window.statusBar().currentMessage()
    frames, rate = read_frames(out)
    presented = window.bridge.presented
    numbers = [frame_number(f) for f in frames]
    assert len(frames) == presented and numbers[0] == 0 and numbers == sorted(set(numbers))
    assert errors == []


def test_seek_slider_jumps_in_the_file(qtbot, tmp_path, errors, real_core):
    from clips import frame_number

    clip = box_clip(tmp_path / "long.mp4", frames=150)
    window = open_window(qtbot, tmp_path, None, source=str(clip), model="none")
    qtbot.waitUntil(lambda: window.bridge is not None and window.bridge.presented >= 2, timeout=8000)
    assert window.transport.slider.maximum() == 5000  # 150 frames at 30 fps
    window.transport.slider.setValue(4000)
    qtbot.waitUntil(lambda: window.last_presented.pts >= 3.9, timeout=5000)
    assert frame_number(window.last_presented.raw) >= 119
    assert errors == [] and window.engine is None


def test_bad_inputs_with_the_real_core_show_one_line_dialogs(qtbot, tmp_path, errors, real_core):
    from onnx_models import make_bad_models

    window = open_window(qtbot, tmp_path, None, source=str(tmp_path / "missing.mp4"), model="none")
    assert len(errors) == 1 and "missing.mp4" in errors[0] and "\n" not in errors[0]
    assert window.stack.currentWidget() is window.start_page
    garbage = make_bad_models(tmp_path)["garbage"]
    clip = box_clip(tmp_path / "boxes.mp4", frames=60)
    assert window.open_input(str(clip))
    window.load_model(str(garbage))
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=5000)
    assert "garbage.onnx" in errors[1] and "Traceback" not in errors[1]
    qtbot.waitUntil(lambda: window.bridge.presented >= 3, timeout=5000)  # the video keeps playing
    window.close()
    window = open_window(qtbot, tmp_path, None, source=str(clip), model="none",
                         record_path=tmp_path / "no-such-folder" / "out.mp4")
    assert len(errors) == 3 and "no-such-folder" in errors[2]
    assert window.stack.currentWidget() is window.start_page and not window.view.recording


def test_unexpected_exception_in_a_slot_becomes_a_dialog(qtbot, tmp_path, errors, monkeypatch, capsys):
    from polypview.ui.app import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    window = open_window(qtbot, tmp_path, FakeServices())
    install_excepthook(window)
    try:
        raise ValueError("boom")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    assert errors == ["unexpected error: boom (details on the console)"]
    assert "Traceback" in capsys.readouterr().err


def test_device_unplugged_mid_run_shows_the_dialog_and_keeps_the_recording(qtbot, tmp_path, errors, real_core):
    from polypview.errors import CaptureError
    from polypview.session import CoreServices
    from polypview.sources import Source

    from clips import read_frames

    class UnpluggedCapture(Source):
        """A live capture that delivers 20 frames, then fails as an unplugged card does."""

        fps, size, live, name = 30.0, (160, 120), True, "capture 7"

        def _next_image(self):
            if self._seq >= 20:
                raise CaptureError("capture device 7 stopped delivering frames (unplugged?): reconnect it")
            time.sleep(1 / self.fps)
            return np.full((120, 160, 3), 90, np.uint8), self._seq / self.fps

    class Services(CoreServices):
        def open_source(self, spec, **kw):
            return UnpluggedCapture()

    window = open_window(qtbot, tmp_path, Services(), source=7, model="none")
    window.record_action.trigger()
    path = window.recording_path
    qtbot.waitUntil(lambda: window.finished, timeout=8000)
    assert errors == ["capture device 7 stopped delivering frames (unplugged?): reconnect it"]
    assert not window.view.recording and not window.transport.slider.isVisible()
    frames, rate = read_frames(path)
    assert 10 <= len(frames) <= 20 and abs(rate - 30.0) < 0.01


def test_errors_raised_while_stopping_still_reach_the_dialog(qtbot, tmp_path, errors):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)
    pipeline = services.pipelines[-1]
    shown_during_run = OutputError("disk almost full")
    pipeline.sink.on_error(shown_during_run)
    qtbot.waitUntil(lambda: bool(errors), timeout=2000)
    pipeline.stop_errors = [shown_during_run, OutputError("cannot finalise x.mp4: disk full")]
    window.close()
    assert errors == ["disk almost full", "cannot finalise x.mp4: disk full"]  # each once


def test_the_log_file_keeps_what_a_tower_showed(qtbot, tmp_path, errors, monkeypatch):
    import logging
    import logging.handlers

    from polypview.logfile import log_path, start_log_file
    from polypview.ui.app import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    path = start_log_file(tmp_path / "logs" / "polypview.log")
    logger = logging.getLogger("polypview")
    try:
        assert path == tmp_path / "logs" / "polypview.log" and start_log_file(path) == path  # one handler only
        window = open_window(qtbot, tmp_path, FakeServices())
        wait_frames(qtbot, window)
        window.log_file = path
        window.show_error("cannot record to /full/disk.mp4: No space left on device")
        install_excepthook(window)
        try:
            raise ValueError("boom")
        except ValueError:
            sys.excepthook(*sys.exc_info())
        assert errors[-1] == f"unexpected error: boom (details in {path})"
        text = path.read_text()
        assert "INFO polypview.window: input fake.mp4" in text
        assert "ERROR polypview.window: cannot record to /full/disk.mp4: No space left on device" in text
        assert "Traceback" in text and "ValueError: boom" in text
        assert sum(isinstance(h, logging.handlers.RotatingFileHandler) for h in logger.handlers) == 1
    finally:
        for handler in [h for h in logger.handlers if isinstance(h, logging.handlers.RotatingFileHandler)]:
            logger.removeHandler(handler)
            handler.close()
    # where it goes when nothing says otherwise, and a folder that cannot be made keeps no log
    monkeypatch.delenv("POLYPVIEW_LOG")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert log_path() == tmp_path / "state" / "polypview" / "polypview.log" or sys.platform != "linux"
    (tmp_path / "file").write_text("")
    assert start_log_file(tmp_path / "file" / "polypview.log") is None
