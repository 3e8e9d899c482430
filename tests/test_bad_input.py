"""Bad input: one clear line on stderr, the right exit code, no traceback, no hang, no broken recording."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_sources import FakeCapture

from polypview.cli import main
from polypview.errors import CaptureError, InputError, ModelFileError, OutputError
from polypview.pipeline import Pipeline, PipelineConfig
from polypview.sources import DeviceSource

from clips import corrupt, make_clip, make_empty_clip, read_frames, truncate
from onnx_models import make_bad_models, make_color_model


@pytest.fixture(scope="module")
def color_model(tmp_path_factory):
    return make_color_model(tmp_path_factory.mktemp("models") / "color.onnx")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "ok.mp4", frames=30, size=(160, 120))


def run_cli(capsys, *argv):
    code = main([*map(str, argv)])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.strip()]
    return code, errors, captured.out


def one_error(capsys, code_expected, words, *argv):
    code, errors, out = run_cli(capsys, *argv)
    assert code == code_expected, errors
    assert len(errors) == 1 and errors[0].startswith("polypview: error:") and words in errors[0], errors
    return out


def test_missing_file(capsys, tmp_path):
    one_error(capsys, InputError.exit_code, "not found", "--video", tmp_path / "nope.mp4", "--headless")


def test_not_a_video(capsys, tmp_path):
    (tmp_path / "notes.mp4").write_text("these are notes, not frames\n" * 40)
    one_error(capsys, InputError.exit_code, "not a video", "--video", tmp_path / "notes.mp4", "--headless")


def test_zero_frames(capsys, tmp_path):
    path = make_empty_clip(tmp_path / "empty.avi")
    one_error(capsys, InputError.exit_code, "no video frames", "--video", path, "--headless")
    (tmp_path / "zero.mp4").write_bytes(b"")
    one_error(capsys, InputError.exit_code, "empty", "--video", tmp_path / "zero.mp4", "--headless")


def test_truncated_file_plays_what_is_there(capsys, tmp_path, color_model):
    path = truncate(make_clip(tmp_path / "cut.mkv", frames=60, codec="mpeg4"), 0.5)
    out = one_error(capsys, InputError.exit_code, "truncated", "--video", path, "--headless", "--sync",
                    "--model", color_model, "--record", tmp_path / "out.mp4")
    frames, _ = read_frames(tmp_path / "out.mp4")
    assert 10 < len(frames) < 60 and f"{len(frames)} frames to" in out


def test_corrupt_packets_are_skipped_and_reported(capsys, tmp_path, color_model):
    path = corrupt(make_clip(tmp_path / "bad.avi", frames=60, codec="mjpeg"), 0.3, 0.6)
    out = one_error(capsys, InputError.exit_code, "corrupt", "--video", path, "--headless", "--sync",
                    "--model", color_model)
    assert "corrupt packets skipped" in out


@pytest.mark.parametrize("device", ["/dev/video99", "63"])
def test_absent_capture_device(capsys, device):
    one_error(capsys, CaptureError.exit_code, "capture device", "--device", device, "--headless")


def test_device_unplugged_mid_run_stops_cleanly(tmp_path):
    class Sink:
        def __init__(self):
            self.frames, self.errors = 0, []

        def on_frame(self, p):
            self.frames += 1

        def on_error(self, e):
            self.errors.append(e)

        def on_finished(self, summary):
            pass

    source = DeviceSource(0, capture_factory=lambda d: FakeCapture(20, delay=0.02))
    sink = Sink()
    pipeline = Pipeline(source, None, PipelineConfig(record_path=tmp_path / "cap.mp4"), sink)
    pipeline.start()
    assert pipeline.wait(10)
    summary = pipeline.stop()
    assert sink.frames == 20 and len(sink.errors) == 1 and isinstance(sink.errors[0], CaptureError)
    assert summary.recording.finalised and len(read_frames(tmp_path / "cap.mp4")[0]) == 20


@pytest.mark.parametrize("kind", ["garbage", "empty", "no_metadata", "size_mismatch", "one_channel", "missing"])
def test_bad_model_files(capsys, tmp_path, clip, kind):
    model = tmp_path / "missing.onnx" if kind == "missing" else make_bad_models(tmp_path)[kind]
    one_error(capsys, ModelFileError.exit_code, "model", "--video", clip, "--headless", "--model", model)


@pytest.mark.parametrize("option", ["--record", "--metrics"])
def test_output_folder_missing(capsys, tmp_path, clip, option):
    one_error(capsys, OutputError.exit_code, "does not exist", "--video", clip, "--headless", "--model", "none",
              option, tmp_path / "no" / "such" / "out.mp4")


def test_output_over_the_input_is_refused(capsys, clip):
    one_error(capsys, 2, "is the input video", "--video", clip, "--headless", "--record", clip)
    assert read_frames(clip)[0]  # untouched


def test_output_not_writable(capsys, clip):
    one_error(capsys, OutputError.exit_code, "cannot write", "--video", clip, "--headless", "--model", "none",
              "--record", "/proc/polypview-out.mp4")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_disk_full_device(capsys, clip):
    one_error(capsys, OutputError.exit_code, "disk full", "--video", clip, "--headless", "--sync", "--model", "none",
              "--record", "/dev/full")


def _limit_file_size():
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # writes past 20 kB fail (EFBIG; Python ignores SIGXFSZ)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_full_disk_mid_recording_stops_cleanly_in_a_subprocess(tmp_path):
    big = make_clip(tmp_path / "big.mp4", frames=90, size=(320, 240))
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "polypview.cli", "--video", str(big), "--headless", "--sync", "--model", "none",
           "--record", str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, preexec_fn=_limit_file_size, env=env)
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == OutputError.exit_code, proc.stderr
    assert len(errors) == 1 and "failed after" in errors[0] and "Traceback" not in proc.stderr
    frames, _ = read_frames(out)  # what was written before the disk filled up still plays
    assert 0 < len(frames) < 90


def test_a_subprocess_gives_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "polypview.cli", "--video", str(tmp_path / "x.mkv"), "--headless"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == InputError.exit_code
    assert proc.stderr.strip().count("\n") == 0 and "not found" in proc.stderr and proc.stdout == ""


def test_no_input_in_headless(capsys):
    one_error(capsys, 2, "needs an input", "--headless")


def test_stop_never_hangs_with_a_stuck_sink(clip):
    class StuckSink:
        release = threading.Event()

        def on_frame(self, p):
            self.release.wait()

        def on_error(self, e):
            pass

        def on_finished(self, s):
            pass

    import time

    from polypview.sources import open_source

    sink = StuckSink()
    pipeline = Pipeline(open_source(clip), None, PipelineConfig(mode="sync"), sink)
    pipeline.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    summary = pipeline.stop(timeout=1.0)
    sink.release.set()
    assert time.monotonic() - t0 < 2.0 and summary.interrupted


def test_window_without_a_display_is_one_clear_line(tmp_path):
    """Qt would abort the process with a core dump; we refuse first, with the no-display exit code (not 'bad option')."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "polypview.cli", "--demo"], capture_output=True, text=True,
                         env=env, timeout=60, cwd=tmp_path)
    assert out.returncode == 8
    assert out.stderr.strip().count("\n") == 0 and "no display" in out.stderr and "--headless" in out.stderr


def test_a_bad_image_area_is_one_clear_line(capsys, clip):
    one_error(capsys, 2, "--roi must be auto, off or X,Y,W,H", "--video", clip, "--headless", "--roi", "left")
    one_error(capsys, 2, "--roi must be", "--video", clip, "--headless", "--roi", "0,0,8,8")
    one_error(capsys, 2, "reaches outside the 160x120 frame", "--video", clip, "--headless", "--model", "none",
              "--roi", "100,10,100,100")
