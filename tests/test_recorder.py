"""Recorder: playable H.264 MP4 at the source rate, odd sizes, killed mid-recording, disk full."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from polypview.errors import OutputError
from polypview.recorder import Recorder, RecordItem, VideoWriter, check_output_path, to_i420

from clips import frame_number, pattern_frame, read_frames

TESTS = Path(__file__).resolve().parent


def test_writer_gives_playable_file_at_the_rate(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoWriter(path, fps=25, size=(160, 120)) as writer:
        for n in range(40):
            writer.write(pattern_frame(n))
    frames, rate = read_frames(path)
    assert rate == pytest.approx(25)
    assert [frame_number(f) for f in frames] == list(range(40))


def test_odd_sizes_are_made_even(tmp_path):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, fps=30, size=(161, 121)) as writer:
        writer.write(np.full((121, 161, 3), 128, np.uint8))
    frames, _ = read_frames(path)
    assert frames[0].shape == (120, 160, 3)


def test_frames_of_another_size_are_resized(tmp_path):
    recorder = Recorder(tmp_path / "r.mp4", 30, (160, 120))
    assert recorder.convert(np.zeros((240, 320, 3), np.uint8)).shape == (180, 160)
    assert recorder.convert(np.zeros((121, 161, 3), np.uint8)).shape == (180, 160)
    recorder.close()


def test_recorder_thread_keeps_order_and_burns_hud(tmp_path):
    path = tmp_path / "rec.mp4"
    written = []
    recorder = Recorder(path, 30, (160, 120), include_hud=True, on_written=lambda seq, t: written.append(seq))
    for n in range(30):
        recorder.submit(RecordItem(n, to_i420(pattern_frame(n, (160, 120))), hud=["", "", "HUD"]), block=True)
    report = recorder.close()
    assert report.frames_written == 30 and report.frames_dropped == 0 and report.finalised
    frames, rate = read_frames(path)
    assert [frame_number(f) for f in frames] == written == list(range(30))
    assert rate == pytest.approx(30)
    assert (frames[0][50:68, :60] != frames[0][50:68, 100:]).any()  # the HUD text is there


def test_full_queue_drops_are_counted(tmp_path):
    recorder = Recorder(tmp_path / "rec.mp4", 30, (160, 120), queue_size=1)
    items = [RecordItem(n, to_i420(pattern_frame(n))) for n in range(50)]
    accepted = sum(recorder.submit(item) for item in items)
    report = recorder.close()
    assert report.frames_written == accepted and report.frames_dropped == 50 - accepted


@pytest.mark.parametrize("bad, words", [("missing/out.mp4", "does not exist"), (".", "is a folder")])
def test_unwritable_output_is_refused_up_front(tmp_path, bad, words):
    with pytest.raises(OutputError, match=words):
        check_output_path(tmp_path / bad)


def test_output_on_readonly_filesystem_is_refused():
    with pytest.raises(OutputError, match="cannot write"):
        VideoWriter("/proc/polypview-test.mp4", 30, (160, 120))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_disk_full_stops_recording_cleanly():
    errors = []
    recorder = Recorder("/dev/full", 30, (160, 120), on_error=errors.append)
    for n in range(60):
        recorder.submit(RecordItem(n, to_i420(pattern_frame(n))), block=True)
    report = recorder.close(timeout=5)
    assert recorder.failed and len(errors) == 1 and "disk full" in str(errors[0])
    assert report.frames_written + report.frames_dropped == 60


def test_a_writer_that_does_not_stop_in_time_is_an_error_not_a_success(tmp_path, monkeypatch):
    errors = []
    recorder = Recorder(tmp_path / "slow.mp4", 30, (160, 120), on_error=errors.append)
    monkeypatch.setattr(recorder, "_write", lambda item: time.sleep(2.5))  # a disk that hangs
    recorder.submit(RecordItem(0, to_i420(pattern_frame(0))), block=True)
    report = recorder.close(timeout=0.2)
    assert recorder.failed and "did not stop within 0.2 s" in report.error and "may be cut short" in report.error
    assert [str(e) for e in errors] == [report.error]  # reported like disk full: a dialog, a non-zero exit


RECORD_FOREVER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from clips import pattern_frame
    from polypview.recorder import Recorder, RecordItem, to_i420
    recorder = Recorder(sys.argv[1], 30, (160, 120))
    for n in range(100000):
        recorder.submit(RecordItem(n, to_i420(pattern_frame(n))), block=True)
        if n == 75:
            print("recording", flush=True)
        time.sleep(0.002)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_mid_recording_leaves_a_playable_file(tmp_path):
    path = tmp_path / "killed.mp4"
    script = RECORD_FOREVER.format(tests=str(TESTS))
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "recording"
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    frames, rate = read_frames(path)
    assert len(frames) >= 30 and rate == pytest.approx(30)
    assert [frame_number(f) for f in frames] == list(range(len(frames)))
