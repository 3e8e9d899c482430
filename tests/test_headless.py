"""`polypview --headless`: every frame in --sync, recordings and metrics, live pacing, Ctrl-C."""

import csv
import signal
import subprocess
import sys
import time

import pytest

from polypview.cli import main

from clips import frame_number, make_clip, read_frames
from onnx_models import make_color_model


@pytest.fixture(scope="module")
def color_model(tmp_path_factory):
    return make_color_model(tmp_path_factory.mktemp("models") / "color.onnx")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "boxes.mp4", frames=45, size=(192, 144), fps=25, box=True)


def read_metrics(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_sync_processes_every_frame_in_order(clip, color_model, tmp_path, capsys):
    out, metrics = tmp_path / "out.mp4", tmp_path / "frames.csv"
    code = main(["--video", str(clip), "--headless", "--sync", "--model", str(color_model),
                 "--record", str(out), "--metrics", str(metrics)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "45 shown of 45 read" in captured.out and "sync mode" in captured.out
    assert "masks shown      45 frames (100.0 %)" in captured.out and "drops            none" in captured.out
    rows = read_metrics(metrics)
    assert [int(r["seq"]) for r in rows] == list(range(45))
    assert all(r["overlay_seq"] == r["seq"] and r["stale"] == "0" for r in rows)
    presented = [float(r["t_presented"]) for r in rows]
    assert presented == sorted(presented)
    assert all(float(r["t_infer_end"]) <= float(r["t_presented"]) <= float(r["t_recorded"]) for r in rows)
    frames, rate = read_frames(out)
    assert rate == pytest.approx(25) and [frame_number(f) for f in frames] == list(range(45))
    assert captured.err.strip() == ""


def test_live_headless_paces_the_file_and_reports_latency(clip, color_model, tmp_path, capsys):
    metrics = tmp_path / "live.csv"
    code = main(["--video", str(clip), "--headless", "--model", str(color_model), "--metrics", str(metrics)])
    out = capsys.readouterr().out
    assert code == 0
    assert "live mode" in out and "annotation delay min" in out and "video delay" in out
    rows = read_metrics(metrics)
    shown = [r for r in rows if r["t_presented"]]
    duration = float(shown[-1]["t_presented"]) - float(shown[0]["t_presented"])
    assert duration == pytest.approx(44 / 25, abs=0.3)  # played at its own frame rate
    drawn = [int(r["overlay_seq"]) for r in shown if r["overlay_seq"]]
    assert drawn == sorted(drawn) and all(int(r["overlay_seq"]) <= int(r["seq"]) for r in shown if r["overlay_seq"])


def test_demo_frames_and_screenshot(tmp_path, capsys):
    shot = tmp_path / "shot.png"
    code = main(["--demo", "--size", "320x180", "--headless", "--model", "none", "--frames", "12",
                 "--screenshot", str(shot)])
    out = capsys.readouterr().out
    assert code == 0 and "12 shown of 12 read" in out and "none (video only)" in out
    import cv2

    assert cv2.imread(str(shot)).shape == (180, 320, 3)


def test_record_hud_burns_text(clip, color_model, tmp_path, capsys):
    plain, hud = tmp_path / "plain.mp4", tmp_path / "hud.mp4"
    for path, extra in ((plain, []), (hud, ["--record-hud"])):
        assert main(["--video", str(clip), "--headless", "--sync", "--model", str(color_model), "--frames", "5",
                     "--record", str(path), *extra]) == 0
    capsys.readouterr()
    a, b = read_frames(plain)[0], read_frames(hud)[0]
    assert len(a) == len(b) == 5
    assert abs(a[4][40:100].astype(int) - b[4][40:100].astype(int)).max() > 100


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_finalises_the_recording_and_exits_130(tmp_path):
    out = tmp_path / "demo.mp4"
    cmd = [sys.executable, "-m", "polypview.cli", "--demo", "--size", "320x240", "--headless",
           "--model", "none", "--record", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 20000):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr and "(interrupted)" in stdout
    frames, rate = read_frames(out)
    assert len(frames) >= 10 and rate == pytest.approx(30)


def test_without_model_option_the_shipped_default_runs(clip, capsys):
    """No --model means the shipped CPU default, not 'video only' (str(None) once read as 'none')."""
    from polypview.inference.runtime.engine import find_models

    if not find_models():
        pytest.skip("no model is shipped in assets/")
    code = main(["--video", str(clip), "--headless", "--sync", "--frames", "5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "none (video only)" not in out
    assert "5 frames inferred" in out


def test_per_pixel_class_option_turns_region_voting_off():
    import argparse

    from polypview.run import add_arguments
    from polypview.settings import Settings

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert Settings.from_args(parser.parse_args(["--demo"])).overlay_settings().one_class_per_region
    assert not Settings.from_args(parser.parse_args(["--demo", "--per-pixel-class"])).overlay_settings().one_class_per_region


def test_reshow_and_input_size_options_reach_the_pipeline_and_the_window():
    import argparse

    from polypview.run import add_arguments
    from polypview.settings import Settings

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    default = Settings.from_args(parser.parse_args(["--demo"]))
    off = Settings.from_args(parser.parse_args(["--demo", "--no-reshow", "--input-size", "256x320"]))
    assert default.pipeline_config().reshow and not off.pipeline_config().reshow
    assert default.reshow and not off.reshow  # the window reads the same object
    assert default.input_size is None and off.input_size == (256, 320)


def test_a_bad_input_size_is_one_error_line(capsys):
    assert main(["--demo", "--headless", "--frames", "2", "--input-size", "300"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "multiples of 32" in err[0] and "Traceback" not in err[0]


def test_ctrl_c_stops_the_run_even_when_it_lands_in_a_finaliser():
    """A KeyboardInterrupt raised inside __del__ is swallowed ("Exception ignored in ..."): the run would go
    on recording. Ctrl-C sets an event instead, which nothing can swallow."""
    import os
    import threading

    from polypview.run import _drive

    class Finaliser:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(10000))  # the signal handler runs here, inside __del__

    class FakePipeline:
        calls = 0

        def start(self):
            pass

        def wait(self, timeout):
            self.calls += 1
            if self.calls == 1:
                Finaliser()  # collected at once: Ctrl-C lands in its __del__
            return self.calls >= 50  # "end of input" after 50 polls, so the test cannot hang

        def stop(self):
            return "summary"

    class Sink:
        failed = threading.Event()

    before = signal.getsignal(signal.SIGINT)
    pipeline = FakePipeline()
    summary, interrupted = _drive(pipeline, Sink())
    assert interrupted and summary == "summary" and pipeline.calls < 5
    assert signal.getsignal(signal.SIGINT) is before  # the usual Ctrl-C behaviour is back afterwards


def test_the_summary_says_when_polyps_appeared(tmp_path, capsys):
    from clips import make_box_clip, polyp_now_and_then

    clip = make_box_clip(tmp_path / "case.mp4", frames=130, frame=polyp_now_and_then)
    model = make_color_model(tmp_path / "color.onnx")
    assert main(["--video", str(clip), "--headless", "--sync", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    # drawn on frames 0-14 and 90-129: each appearance is announced once the polyp has been drawn 0.3 s
    assert "polyps           2 appearances at 0:00.3, 0:03.3 (a polyp drawn for 0.3 s after 2 s without one)" in out
    assert main(["--video", str(clip), "--headless", "--sync", "--model", "none"]) == 0
    assert "polyps           none appeared" in capsys.readouterr().out


def test_alert_sound_is_for_the_window(tmp_path, capsys):
    assert main(["--demo", "--headless", "--alert-sound", "--frames", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["polypview: error: --alert-sound needs the window; a headless run lists the polyp appearances "
                   "in its summary instead"]
