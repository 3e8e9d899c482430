"""`polypview check`: what an installer sees on a ready machine, and on one that is not."""

import json

import pytest

from polypview.check import (
    FRAME_BUDGET_MS,
    Finding,
    check_packages,
    check_window,
    format_finding,
    speed_status,
    verdict,
)
from polypview.cli import main

VIEWER = {"numpy": "2", "av": "18", "PyQt6": "6.11", "tqdm": "4", "opencv-python-headless": "5",
          "onnxruntime-gpu": "1.31"}


def test_a_ready_machine_says_so_part_by_part_and_writes_json(tmp_path, capsys):
    out = tmp_path / "check.json"
    code = main(["check", "--no-window", "--frames", "3", "--json", str(out)])
    text = capsys.readouterr().out
    for line in ("ok    python", "ok    packages", "ok    models", "ok    recording"):
        assert line in text
    assert "nanonet-lite0-neo on onnxruntime" in text and "a 1080p frame (median of 3)" in text
    findings = json.loads(out.read_text())["findings"]
    assert [f["part"] for f in findings] == ["python", "packages", "models", "speed", "recording", "sound",
                                             "capture", "gpu", "log", "training"]
    assert all(f["status"] in ("ok", "warn", "fail", "info") for f in findings)
    # only the speed can fail on this machine (a loaded CI runner): the exit code and the verdict follow it
    failed = [f["part"] for f in findings if f["status"] == "fail"]
    assert failed in ([], ["speed"]) and code == (1 if failed else 0)
    assert ("polypview check: ready" in text) != bool(failed) and ("NOT ready: speed failed" in text) == bool(failed)


def test_packages_that_overwrite_each_other_or_are_missing_fail_with_the_command_that_mends_them():
    assert check_packages(VIEWER).status == "ok"
    both = check_packages({**VIEWER, "onnxruntime": "1.31"})
    assert both.status == "fail" and "both onnxruntime-gpu and onnxruntime" in both.text
    assert "uninstall -y onnxruntime-gpu onnxruntime" in both.fix and both.fix.endswith("install onnxruntime-gpu")
    cv = check_packages({**VIEWER, "opencv-python": "5"})
    assert cv.status == "fail" and cv.fix.endswith("install opencv-python-headless")
    gone = check_packages({k: v for k, v in VIEWER.items() if k not in ("av", "onnxruntime-gpu")})
    assert gone.status == "fail" and gone.text == "missing: av, onnxruntime-gpu or onnxruntime"


def test_the_speed_verdict_leaves_room_for_the_rest_of_the_pipeline():
    assert speed_status(12.0) == "ok"
    assert speed_status(0.8 * FRAME_BUDGET_MS) == "warn"  # fits a 30 fps frame, barely
    assert speed_status(1.2 * FRAME_BUDGET_MS) == "fail"


def test_a_window_that_cannot_open_fails_with_qts_reason_and_the_way_out(monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "nosuch")
    finding = check_window()
    assert finding.status == "fail" and 'platform plugin "nosuch"' in finding.text
    assert "libxcb-cursor0" in finding.fix
    assert main(["check", "--frames", "1"]) == 1
    out = capsys.readouterr().out
    assert "fail  window" in out and "→ see the README's Troubleshooting" in out
    assert "polypview check: NOT ready: " in out and "window" in out.strip().splitlines()[-1]


def test_without_a_display_the_window_is_a_warning_not_a_failure(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    finding = check_window()
    assert finding.status == "warn" and "--headless works" in finding.text


def test_the_findings_read_as_one_line_each_and_a_verdict():
    warn = Finding("sound", "warn", "no sound", "apt-get install libpulse0")
    assert format_finding(warn).splitlines() == ["warn  sound      no sound", " " * 16 + "→ apt-get install libpulse0"]
    assert format_finding(Finding("gpu", "info", "none", "ignored for info")) == "info  gpu        none"
    assert verdict([warn, Finding("python", "ok", "3.11")]) == "polypview check: ready (1 warning)"


def test_the_report_is_the_printed_lines_and_the_verdict():
    from polypview.check import report

    text = report(frames=1, window=False)
    lines = text.splitlines()
    assert lines[0].startswith("ok    python") and lines[-1].startswith("polypview check: ")
    assert any(line.split()[1:2] == ["speed"] for line in lines)  # its verdict depends on the machine's load


def test_a_bad_frame_count_is_one_error_line(capsys):
    assert main(["check", "--frames", "0"]) == 2
    assert capsys.readouterr().err.strip() == "polypview: error: --frames must be at least 1, got 0"


@pytest.mark.parametrize("status", ["ok", "fail"])
def test_the_exit_code_is_one_only_when_a_part_failed(status, monkeypatch, capsys):
    import polypview.check as check

    monkeypatch.setattr(check, "steps", lambda model, frames, window=True: [lambda: Finding("x", status, "t")])
    assert main(["check"]) == (1 if status == "fail" else 0)


def test_a_check_that_breaks_is_a_failed_part_not_a_traceback(monkeypatch, capsys):
    import polypview.check as check

    def check_recording():
        raise RuntimeError("libavcodec.so.61: cannot open shared object file")

    monkeypatch.setattr(check, "steps", lambda model, frames, window=True: [check_recording])
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "fail  recording  the check itself failed: RuntimeError: libavcodec.so.61" in out


def test_a_log_folder_that_cannot_be_written_is_a_warning(tmp_path, monkeypatch):
    from polypview.check import check_log

    monkeypatch.setenv("POLYPVIEW_LOG", str(tmp_path / "polypview.log"))
    assert check_log().status == "ok"
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("POLYPVIEW_LOG", str(tmp_path / "file" / "polypview.log"))
    finding = check_log()
    assert finding.status == "warn" and "POLYPVIEW_LOG" in finding.fix
