"""The window a clinician keeps open all day: remembered settings, menus and shortcuts, the transport
after the end, recording states, readouts that never cover the image, the too-slow-model warning."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QRect, Qt  # noqa: E402
from PyQt6.QtWidgets import QLabel  # noqa: E402

from polypview.settings import Settings  # noqa: E402
from polypview.ui import dialogs  # noqa: E402
from polypview.ui.main_window import MainWindow  # noqa: E402
from polypview.ui.menus import ACTIONS, shortcuts_text  # noqa: E402
from polypview.ui.preferences import Preferences  # noqa: E402

from gui_fakes import FakeServices  # noqa: E402
from test_gui import box_clip, open_window, wait_frames  # noqa: E402


def window_with(qtbot, tmp_path, services, prefs, **options) -> MainWindow:
    options.setdefault("source", "fake.mp4")
    window = MainWindow(Settings(recordings_dir=tmp_path / "rec", **options), services, prefs)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.start()
    return window


def remembering_window(qtbot, tmp_path, ini) -> MainWindow:
    """A window that keeps its settings in `ini`, playing, with its model loaded."""
    services = FakeServices()
    window = window_with(qtbot, tmp_path, services, Preferences.from_file(ini))
    wait_frames(qtbot, window)
    qtbot.waitUntil(lambda: bool(services.loaded), timeout=2000)
    return window


def in_window(widget, window) -> QRect:
    return QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())


def test_settings_survive_a_restart(qtbot, tmp_path, errors):
    ini = tmp_path / "settings.ini"
    window = remembering_window(qtbot, tmp_path, ini)
    window.panel.opacity_slider.setValue(70)
    window.panel.threshold_slider.setValue(35)
    window.panel.peak_slider.setValue(80)  # not remembered: the region peak belongs to the model
    window.panel.area_slider.setValue(20)  # regions under 0.2 % of the image area are not drawn
    assert window.pipeline.overlays[-1].min_area == pytest.approx(0.002)  # live
    assert window.panel.area_label.text() == "min area 0.20%"
    window.panel.style_combo.setCurrentText("contour")
    window.panel.tags_check.setChecked(True)
    assert window.pipeline.overlays[-1].name_tags  # live
    window.panel.model_chosen.emit("other-model")
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.name == "other-model", timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_H)
    window.resize(700, 500)  # inside the offscreen screen (800x600): restoring clamps to the screen
    size = (window.width(), window.height())
    window.close()
    assert ini.is_file()

    again = FakeServices()
    window = window_with(qtbot, tmp_path, again, Preferences.from_file(ini), source=None)
    qtbot.waitUntil(lambda: bool(again.requested), timeout=2000)
    assert again.requested[0] == "other-model"  # the model of the last session
    values = window.panel.overlay_values()
    assert (values["opacity"], values["threshold"], values["min_peak"], values["style"]) == (0.7, 0.35, 0.9, "contour")
    assert values["min_area"] == pytest.approx(0.002) and values["name_tags"]
    assert window.hud.isHidden() and not window.hud_action.isChecked()
    assert (window.width(), window.height()) == size
    assert [a.text() for a in window.recent_menu.actions()] == [str((tmp_path.cwd() / "fake.mp4").resolve())]
    # the command line wins over what was remembered
    third = window_with(qtbot, tmp_path, FakeServices(), Preferences.from_file(ini), overlay={"opacity": 0.2})
    assert third.panel.overlay_values()["opacity"] == 0.2
    assert errors == []


@pytest.mark.parametrize("min_area, label", [(0.02, "min area 2.00%"), (0.00005, "min area 0.005%")])
def test_a_command_line_min_area_off_the_slider_steps_is_kept(qtbot, tmp_path, errors, min_area, label):
    # --min-area 2 % (above the slider's 1 %) or 0.005 % (between its steps): moving another control must not
    # clamp or round it; moving the area slider itself sets it
    window = window_with(qtbot, tmp_path, FakeServices(), Preferences(), overlay={"min_area": min_area})
    wait_frames(qtbot, window)
    assert window.panel.area_label.text() == label
    window.panel.opacity_slider.setValue(30)
    assert window.pipeline.overlays[-1].min_area == min_area
    assert window.panel.overlay_values()["min_area"] == min_area
    window.panel.area_slider.setValue(3)
    assert window.pipeline.overlays[-1].min_area == pytest.approx(0.0003)
    assert window.panel.area_label.text() == "min area 0.03%"
    assert errors == []


def test_without_a_store_nothing_is_remembered(qtbot, tmp_path, errors):
    window = open_window(qtbot, tmp_path, FakeServices())
    window.panel.opacity_slider.setValue(10)
    window.close()
    assert Preferences().overlay() == {}


def test_menus_list_every_command_and_shortcuts_work(qtbot, tmp_path, errors, monkeypatch):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&Playback", "&View", "&Help"]
    in_menus = {a.text() for m in window.menuBar().actions() for a in m.menu().actions()}
    for spec in ACTIONS:
        assert spec.name == "escape" or window.actions[spec.name].text() in in_menus or spec.name == "play"
    shown = []
    monkeypatch.setattr(dialogs, "show_info", lambda parent, title, text: shown.append((title, text)))
    qtbot.keyClick(window, Qt.Key.Key_F1)
    assert shown[-1][0] == "Keyboard shortcuts" and "Ctrl+O" in shown[-1][1] and "F11" in shown[-1][1]
    window.actions["about"].trigger()
    assert "Research use only" in shown[-1][1] and "fake-model" in shown[-1][1] or "none" in shown[-1][1]
    asked = []
    monkeypatch.setattr(dialogs, "ask_video_file", lambda parent, folder=None: asked.append(folder) or None)
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert asked == [None]
    pipeline = services.pipelines[-1]
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert pipeline.seeks and pipeline.seeks[-1] == pytest.approx(window.position() + 5.0, abs=0.5)
    qtbot.keyClick(window, Qt.Key.Key_Space)  # pause, then step one frame on and back
    assert pipeline.paused
    at = window.position()
    qtbot.keyClick(window, Qt.Key.Key_Period)
    assert pipeline.seeks[-1] == pytest.approx(at + 1 / 30)
    qtbot.keyClick(window, Qt.Key.Key_Comma)
    assert pipeline.seeks[-1] == pytest.approx(at - 1 / 30)
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert pipeline.overlays[-1].enabled is False and not window.panel.overlay_check.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert pipeline.overlays[-1].enabled is True
    qtbot.keyClick(window, Qt.Key.Key_N)  # class names on the polyps, as the panel's box
    assert pipeline.overlays[-1].name_tags is True and window.panel.tags_check.isChecked()
    window.panel.tags_check.setChecked(False)  # and the box drives the menu's tick
    assert pipeline.overlays[-1].name_tags is False and not window.names_action.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    qtbot.waitUntil(window.isFullScreen, timeout=2000)
    assert window.menuBar().isHidden()
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.isFullScreen(), timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=2000)
    assert pipeline.stopped_with is not None
    assert "Step" not in shortcuts_text() and "Next frame" in shortcuts_text()


def test_recording_button_states_and_elapsed_time(qtbot, tmp_path, errors, monkeypatch):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)
    assert window.record_action.text() == "Record" and window.rec_label.isHidden()
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.record_action.text() == "Stop recording" and window.record_action.isChecked()
    assert not window.rec_label.isHidden() and window.rec_label.text() == "● REC 0:00"
    window.recording_started -= 75  # as if it had run for 75 s
    window.refresh_hud()
    assert window.rec_label.text() == "● REC 1:15"
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.record_action.text() == "Record" and window.rec_label.isHidden()


def test_closing_while_recording_asks_first(qtbot, tmp_path, errors, monkeypatch):
    services = FakeServices()
    window = open_window(qtbot, tmp_path, services)
    wait_frames(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_R)
    pipeline = services.pipelines[-1]
    answers = []
    monkeypatch.setattr(dialogs, "ask_yes_no", lambda parent, title, question: answers.append(question) or False)
    window.close()
    assert window.isVisible() and pipeline.recording and "recording" in answers[-1].lower()
    monkeypatch.setattr(dialogs, "ask_yes_no", lambda parent, title, question: True)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=2000)
    assert not pipeline.recording and pipeline.stopped_with is not None


def test_readouts_never_cover_the_image(qtbot, tmp_path, errors):
    window = open_window(qtbot, tmp_path, FakeServices())
    wait_frames(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_R)  # REC shows too
    for full in (False, True):
        if full:
            qtbot.keyClick(window, Qt.Key.Key_F11)
            qtbot.waitUntil(window.isFullScreen, timeout=2000)
        view = in_window(window.view, window)
        for widget in (window.hud, window.rec_label):
            assert widget.isVisible() and not in_window(widget, window).intersects(view)
    small = window.hud.styleSheet()
    window.resize(window.width(), 1400)
    qtbot.waitUntil(lambda: window.hud.styleSheet() != small, timeout=2000)  # the font grows with the window


def test_opacity_is_disabled_for_contours_and_boxes(qtbot, tmp_path, errors):
    window = open_window(qtbot, tmp_path, FakeServices())
    assert window.panel.opacity_slider.isEnabled()
    for style in ("contour", "box"):
        window.panel.style_combo.setCurrentText(style)
        assert window.panel.style_combo.currentText() == style
        assert not window.panel.opacity_slider.isEnabled()
    window.panel.style_combo.setCurrentText("fill")
    assert window.panel.opacity_slider.isEnabled()


def test_a_model_too_slow_for_the_machine_is_said_plainly(qtbot, tmp_path, errors):
    services = FakeServices(models=("blazeneo-dha", "nanonet-lite0-neo"), mask_share=0.2)
    window = open_window(qtbot, tmp_path, services, model="blazeneo-dha")
    wait_frames(qtbot, window)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    text = window.banner.label.text()
    share = int(re.search(r"only (\d+)% of frames", text).group(1))
    assert "blazeneo-dha is too slow" in text and 15 <= share <= 25  # the fake masks 20 % of its frames
    assert window.banner.button.text() == "Use nanonet-lite0-neo"
    window.banner.button.click()
    qtbot.waitUntil(lambda: services.requested[-1] == "nanonet-lite0-neo", timeout=2000)
    qtbot.waitUntil(lambda: window.banner.isHidden(), timeout=2000)


def test_a_fast_model_gets_no_warning(qtbot, tmp_path, errors):
    window = open_window(qtbot, tmp_path, FakeServices())
    wait_frames(qtbot, window, 60)
    window.refresh_hud()
    assert window.banner.isHidden()


def test_masks_switched_off_are_said_and_never_taken_for_a_slow_model(qtbot, tmp_path, errors):
    window = open_window(qtbot, tmp_path, FakeServices())
    wait_frames(qtbot, window)
    window.masks_action.trigger()  # M: masks off
    assert not window.overlay.enabled
    for _ in range(4):  # several HUD refreshes, 20+ frames apart, none of them with a mask
        wait_frames(qtbot, window, window.bridge.presented + 25)
        window.refresh_hud()
    assert window.banner.isHidden()
    assert "MASKS OFF" in window.hud.text()
    window.masks_action.trigger()
    wait_frames(qtbot, window, window.bridge.presented + 25)
    window.refresh_hud()
    assert window.overlay.enabled and "MASKS OFF" not in window.hud.text() and window.banner.isHidden()


def test_after_the_end_the_time_is_full_and_seeking_plays_again(qtbot, tmp_path, errors, real_core):
    from clips import frame_number

    clip = box_clip(tmp_path / "short.mp4", frames=120)  # 4.0 s
    window = open_window(qtbot, tmp_path, None, source=str(clip), model="none")
    qtbot.waitUntil(lambda: window.finished, timeout=8000)
    assert window.transport.time_label.text() == "0:04 / 0:04"
    assert "End of input" in window.statusBar().currentMessage()
    window.seek(0.5)  # the slider, or the arrow keys, after the end: the file plays again from there
    assert not window.finished and window.statusBar().currentMessage() == ""
    qtbot.waitUntil(lambda: window.last_presented is not None and window.last_presented.pts >= 0.45, timeout=5000)
    assert 14 <= frame_number(window.last_presented.raw) <= 119
    qtbot.keyClick(window, Qt.Key.Key_Space)  # pause, then step a frame
    qtbot.wait(100)
    before = frame_number(window.last_presented.raw)
    qtbot.keyClick(window, Qt.Key.Key_Period)
    qtbot.waitUntil(lambda: frame_number(window.last_presented.raw) == before + 1, timeout=3000)
    assert errors == []


def test_open_device_lists_the_devices_and_remembers_the_choice(qtbot, tmp_path, errors, monkeypatch):
    from polypview.devices import CaptureDevice, CaptureFormat
    from polypview.ui.device_dialog import DeviceDialog

    card = CaptureDevice("/dev/video2", "USB Capture HDMI", [CaptureFormat("MJPG", 1920, 1080, 60.0),
                                                              CaptureFormat("YUYV", 1280, 720, 30.0)])
    dialog = DeviceDialog(None, [card])
    qtbot.addWidget(dialog)
    assert [dialog.device_combo.itemText(i) for i in range(dialog.device_combo.count())][0] == card.label()
    assert dialog.format_combo.itemText(1) == "MJPG 1920x1080 @ 60 fps"
    dialog.format_combo.setCurrentIndex(1)
    choice = dialog.choice()
    assert choice == {"device": "/dev/video2", "size": "1920x1080", "fps": 60.0, "fourcc": "MJPG"}
    again = DeviceDialog(None, [card], choice)  # the last choice comes back selected
    qtbot.addWidget(again)
    assert again.choice() == choice
    empty = DeviceDialog(None, [], None)  # nothing found: an index can be typed
    qtbot.addWidget(empty)
    assert empty.other.isEnabled() and empty.choice()["device"] == "0"

    services = FakeServices()
    services.devices = [card]
    prefs = Preferences.from_file(tmp_path / "s.ini")
    window = window_with(qtbot, tmp_path, services, prefs, source=None)
    offered = []
    monkeypatch.setattr(dialogs, "ask_device", lambda parent, devices, last=None: offered.append((devices, last))
                        or choice)
    window.actions["open_device"].trigger()
    assert offered == [([card], None)]
    assert services.opened[-1] == ("/dev/video2", (1920, 1080), 60.0, "MJPG")
    window.actions["open_device"].trigger()
    assert offered[-1][1] == choice  # remembered


def test_a_recordings_folder_that_cannot_be_made_says_what_to_do(qtbot, tmp_path, errors):
    window = open_window(qtbot, tmp_path, FakeServices())
    wait_frames(qtbot, window)
    (tmp_path / "a-file").write_text("not a folder")
    window.options.recordings_dir = tmp_path / "a-file" / "rec"
    window.toggle_recording()
    qtbot.waitUntil(lambda: bool(errors), timeout=2000)
    assert len(errors) == 1 and errors[0].startswith("cannot record to ")
    assert errors[0].endswith("choose another folder (File → Recordings folder)")
    assert not window.record_action.isChecked() and not window.view.recording


def test_the_image_area_is_drawn_over_the_video_found_again_or_the_whole_frame(qtbot, tmp_path, errors):
    from PyQt6.QtCore import QPoint

    window = window_with(qtbot, tmp_path, FakeServices(), Preferences())
    wait_frames(qtbot, window)
    pipeline, view = window.pipeline, window.view
    shown = view.image_rect()  # the 160x120 frames, fitted into the view

    def at(fx, fy):  # a frame position as a point of the view
        return QPoint(shown.left() + round(fx * shown.width() / 160), shown.top() + round(fy * shown.height() / 120))

    window.actions["area_draw"].trigger()
    assert view.drawing_area and "Drag over" in window.statusBar().currentMessage()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=at(40, 30))
    qtbot.mouseMove(view, at(100, 70))
    qtbot.mouseMove(view, at(120, 90))
    grab = view.grab().toImage()  # the dashed rectangle follows the drag, on screen only
    top = at(40, 30).y()
    edge = [grab.pixelColor(x, top + dy) for x in range(at(50, 0).x(), at(110, 0).x()) for dy in (-1, 0, 1)]
    assert any(c.red() > 200 and c.green() > 180 and c.blue() < 80 for c in edge)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=at(120, 90))
    x, y, w, h = pipeline.rois[-1]
    assert all(abs(a - b) <= 2 for a, b in zip((x, y, w, h), (40, 30, 80, 60)))  # frame pixels, not the view's
    assert not view.drawing_area and "as drawn" in window.statusBar().currentMessage()

    count = len(pipeline.rois)
    qtbot.keyClick(window, Qt.Key.Key_A)  # again, then cancelled: a right click, or a drag too small to be an area
    qtbot.mouseClick(view, Qt.MouseButton.RightButton, pos=at(60, 60))
    qtbot.keyClick(window, Qt.Key.Key_A)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=at(60, 60))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=at(65, 64))
    assert len(pipeline.rois) == count and "unchanged" in window.statusBar().currentMessage()

    window.actions["area_whole"].trigger()
    window.actions["area_find"].trigger()
    assert pipeline.rois[-2:] == [False, True]
    assert "found automatically" in window.statusBar().currentMessage()
    window._set_area((100, 100, 100, 100))  # outside the 160x120 frame: one line in a dialog, nothing changes
    assert len(errors) == 1 and "reaches outside" in errors[0] and pipeline.rois[-1] is True


def test_the_image_area_in_use_can_be_outlined_on_screen(qtbot, tmp_path, errors):
    window = window_with(qtbot, tmp_path, FakeServices(), Preferences())
    wait_frames(qtbot, window)
    view, pipeline = window.view, window.pipeline
    assert view.outline is None  # off by default
    window.actions["area_show"].trigger()
    assert view.outline == pipeline.roi == (10, 10, 140, 100)
    left = view.widget_rect(pipeline.roi).left()
    grab = view.grab().toImage()
    column = [grab.pixelColor(x, y) for x in (left - 1, left, left + 1)
              for y in range(view.widget_rect(pipeline.roi).top(), view.widget_rect(pipeline.roi).bottom())]
    assert any(c.red() > 200 and c.green() > 180 and c.blue() < 80 for c in column)  # dotted yellow, on screen
    window.actions["area_whole"].trigger()
    assert view.outline is None  # the whole frame: nothing to outline
    pipeline.roi = (20, 20, 100, 80)  # found anew while playing: the outline follows at the next refresh
    qtbot.waitUntil(lambda: view.outline == (20, 20, 100, 80), timeout=2000)
    window.actions["area_show"].trigger()
    assert view.outline is None and errors == []


class FakeSound:
    fallback = ""

    def __init__(self):
        self.plays = 0

    def play(self):
        self.plays += 1


def test_a_tone_sounds_once_when_a_polyp_appears_and_again_only_after_a_quiet_stretch(qtbot, tmp_path, errors):
    ini = tmp_path / "settings.ini"
    window = window_with(qtbot, tmp_path, FakeServices(), Preferences.from_file(ini))
    window.sound = FakeSound()
    wait_frames(qtbot, window)
    pipeline = window.pipeline
    assert not window.actions["sound"].isChecked() and window.bridge.alerts is None  # off by default
    start = pipeline._seq + 30  # the fake's frames are 1/30 s apart in video time
    pipeline.marked = lambda seq: start <= seq < start + 30 or start + 40 <= seq < start + 60 or seq >= start + 150
    qtbot.keyClick(window, Qt.Key.Key_B)  # on, as the panel's box
    assert window.actions["sound"].isChecked() and window.panel.sound_check.isChecked()
    assert window.statusBar().currentMessage().startswith("Sound on")
    qtbot.waitUntil(lambda: pipeline._seq > start + 200, timeout=10000)
    # a polyp for 1 s, gone for 0.33 s, back for 0.67 s (one appearance), gone for 3 s, back: two tones
    qtbot.waitUntil(lambda: window.sound.plays == 2, timeout=2000)
    assert window.alerts_sounded == 2
    window.panel.sound_check.setChecked(False)  # the box drives the action, and the gate goes
    assert not window.actions["sound"].isChecked() and window.bridge.alerts is None
    plays = window.sound.plays
    pipeline.marked = lambda seq: seq % 90 < 45  # polyps come and go: no tone while off
    qtbot.wait(600)
    assert window.sound.plays == plays
    window.panel.sound_check.setChecked(True)
    window.close()
    again = window_with(qtbot, tmp_path, FakeServices(), Preferences.from_file(ini))
    assert again.actions["sound"].isChecked() and again.bridge.alerts is not None  # remembered
    assert errors == []


def test_alert_sound_on_the_command_line_is_not_remembered(qtbot, tmp_path, errors):
    ini = tmp_path / "settings.ini"
    window = window_with(qtbot, tmp_path, FakeServices(), Preferences.from_file(ini), alert_sound=True)
    assert window.actions["sound"].isChecked() and window.panel.sound_check.isChecked()
    window.close()
    assert Preferences.from_file(ini).alert_sound is False
    assert errors == []


def test_the_tone_is_a_short_wav_and_playing_it_never_fails(qtbot, tmp_path):
    import wave

    from polypview.ui.alert_sound import AlertSound, write_tone

    path = write_tone(tmp_path / "cache" / "tone.wav")
    with wave.open(str(path)) as tone:
        assert (tone.getnchannels(), tone.getsampwidth(), tone.getframerate()) == (1, 2, 44100)
        assert 0.2 <= tone.getnframes() / tone.getframerate() <= 0.3
    sound = AlertSound(path=tmp_path / "alert.wav")
    sound.play()  # the chime, or the system bell where no sound library loads (one reason kept)
    assert sound._effect is not None or "sound library" in sound.fallback


def test_without_qt_multimedia_the_bell_rings_and_says_why_once(qtbot, tmp_path, monkeypatch):
    import sys

    from polypview.ui.alert_sound import AlertSound

    monkeypatch.setitem(sys.modules, "PyQt6.QtMultimedia", None)  # as where libpulse is missing
    sound = AlertSound(path=tmp_path / "alert.wav")
    assert sound.fallback.startswith("sound library not available") and not (tmp_path / "alert.wav").exists()
    said = []
    sound.fell_back.connect(said.append)
    sound.play()
    sound.play()
    assert said == [sound.fallback]


def test_where_the_tone_cannot_play_the_bell_rings_and_the_window_says_why_once(qtbot, tmp_path, errors,
                                                                                   monkeypatch):
    from polypview.ui import alert_sound

    monkeypatch.setattr(alert_sound, "tone_path", lambda: tmp_path / "cache" / "tone.wav")
    window = window_with(qtbot, tmp_path, FakeServices(), Preferences(), alert_sound=True)
    wait_frames(qtbot, window)
    window.pipeline.marked = lambda seq: True
    qtbot.waitUntil(lambda: window.alerts_sounded == 1, timeout=3000)
    assert (tmp_path / "cache" / "tone.wav").is_file() or "sound library" in window.sound.fallback
    if window.sound.fallback:  # no sound output on this machine (CI): said in the status bar, not as spam
        qtbot.waitUntil(lambda: "system bell" in window.statusBar().currentMessage(), timeout=3000)
    assert errors == []


def test_yellow_when_the_class_is_unsure_is_a_box_with_its_legend_row_and_is_remembered(qtbot, tmp_path, errors):
    ini = tmp_path / "settings.ini"
    window = remembering_window(qtbot, tmp_path, ini)
    panel, pipeline = window.panel, window.pipeline

    def legend():
        return [w.text() for w in panel.legend.findChildren(QLabel) if w.text()]

    assert not panel.unsure_check.isChecked() and pipeline.overlays[-1].class_confidence == 0.0  # off by default
    rows = legend()
    panel.unsure_check.setChecked(True)
    assert pipeline.overlays[-1].class_confidence == 0.9  # live
    assert legend() == rows + ["class uncertain"]
    panel.region_check.setChecked(False)  # per-pixel classes: no class per polyp, so none uncertain
    assert not panel.unsure_check.isEnabled() and legend() == rows
    panel.region_check.setChecked(True)
    window.close()
    again = window_with(qtbot, tmp_path, FakeServices(), Preferences.from_file(ini))
    assert again.panel.unsure_check.isChecked() and again.overlay.class_confidence == 0.9  # remembered
    # a value from the command line is kept, and ticking the box again brings it back
    third = window_with(qtbot, tmp_path, FakeServices(), Preferences(), overlay={"class_confidence": 0.8})
    third.panel.unsure_check.setChecked(False)
    assert third.overlay.class_confidence == 0.0
    third.panel.unsure_check.setChecked(True)
    assert third.overlay.class_confidence == 0.8
    assert errors == []


def test_help_system_check_shows_the_findings_without_blocking_the_video(qtbot, tmp_path, errors, monkeypatch):
    import polypview.check as check

    asked = []

    def steps(model, frames, window=True):
        asked.append((model, frames, window))
        return [lambda: check.Finding("python", "ok", "Python 3"),
                lambda: check.Finding("sound", "warn", "no sound", "apt-get install libpulse0")]

    monkeypatch.setattr(check, "steps", steps)
    shown = []
    monkeypatch.setattr(dialogs, "show_info", lambda parent, title, text: shown.append((title, text)))
    window = window_with(qtbot, tmp_path, FakeServices(), Preferences())
    wait_frames(qtbot, window)
    window.actions["check"].trigger()
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    title, text = shown[0]
    assert title == "System check" and asked[0][2] is False  # the window is open: not tried again
    assert "ok    python     Python 3" in text and "→ apt-get install libpulse0" in text
    assert "polypview check: ready (1 warning)" in text and "measured while the video plays" in text
    assert errors == []
