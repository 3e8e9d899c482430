"""`polypview batch` on a local Ray instance: a failure recorded, re-runs, a killed worker, Ctrl-C."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import pytest

from polypview.batch import collect_inputs
from polypview.batchjob import BatchSettings, file_sha256
from polypview.overlay import OverlaySettings

from clips import count_frames, make_box_clip
from onnx_models import make_color_model

ray = pytest.importorskip("ray", reason="Ray is the batch extra: pip install -e '.[batch]'")


@pytest.fixture(scope="module")
def color_model(tmp_path_factory):
    return make_color_model(tmp_path_factory.mktemp("model") / "color.onnx")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _system_config={"worker_niceness": 0})
    yield ray
    ray.shutdown()


@pytest.fixture
def three_clips(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    make_box_clip(folder / "a.mp4", frames=20)
    make_box_clip(folder / "b.mp4", frames=30)
    (folder / "c.mp4").write_bytes(b"\x00corrupt" * 1000)
    return folder


def run_batch(folder, out, model, force=False, on_submit=None, workers=2):
    from polypview.batchrun import BatchRunner

    videos = collect_inputs([str(folder)])
    settings = BatchSettings("color", file_sha256(model), asdict(OverlaySettings()))
    runner = BatchRunner(videos, out, settings, model=str(model), force=force, progress=False, on_submit=on_submit)
    return runner.run(workers=workers), runner


def test_batch_on_ray_records_the_failure_and_redoes_nothing(local_ray, three_clips, tmp_path, color_model, capsys):
    out = tmp_path / "out"
    out.mkdir()
    submitted = []
    code, runner = run_batch(three_clips, out, color_model, on_submit=lambda job, attempt, pid: submitted.append(
        (job.name, attempt, pid)))
    assert code == 1
    assert sorted(s[:2] for s in submitted) == [("a", 1), ("b", 1), ("c", 1), ("c", 2)]
    pids = {attempt: pid for name, attempt, pid in submitted if name == "c"}
    assert pids[1] != pids[2]  # the retry runs on the other worker, not on the one it failed on
    status = {o.job.name: (o.status, o.attempts) for o in runner.outcomes.values()}
    assert status == {"a": ("done", 1), "b": ("done", 1), "c": ("failed", 2)}
    index = {row["name"]: row for row in csv.DictReader(open(out / "index.csv"))}
    assert index["c"]["status"] == "failed" and "not a video" in index["c"]["error"]
    assert index["a"]["frames"] == "20" and index["b"]["frames"] == "30"
    assert index["a"]["appearances"] == "1" and index["c"]["appearances"] == ""  # the box held 0.3 s; failed: none
    assert count_frames(out / "b.mp4") == 30 and len(list(csv.DictReader(open(out / "b.frames.csv")))) == 30
    assert "c.json" not in os.listdir(out) and not [p for p in os.listdir(out) if ".partial." in p]
    assert "timeline" in (out / "index.html").read_text()
    assert "2 done, 1 failed" in capsys.readouterr().out

    (three_clips / "c.mp4").unlink()  # the re-run has nothing left to do: no video is handed out
    submitted.clear()
    stamp = (out / "a.json").stat().st_mtime_ns
    code, runner = run_batch(three_clips, out, color_model, on_submit=lambda *a: submitted.append(a))
    assert code == 0 and submitted == [] and (out / "a.json").stat().st_mtime_ns == stamp
    assert {o.status for o in runner.outcomes.values()} == {"skipped"}

    code, runner = run_batch(three_clips, out, color_model, force=True)
    assert code == 0 and {o.status for o in runner.outcomes.values()} == {"done"}
    assert (out / "a.json").stat().st_mtime_ns > stamp


def test_a_killed_worker_has_its_video_retried(local_ray, three_clips, tmp_path, color_model):
    (three_clips / "c.mp4").unlink()
    make_box_clip(three_clips / "long.mp4", frames=120)
    out = tmp_path / "out"
    out.mkdir()
    submitted = []

    def kill_first_try(job, attempt, pid):
        submitted.append((job.name, attempt))
        if job.name == "long" and attempt == 1:
            os.kill(pid, signal.SIGKILL)

    code, runner = run_batch(three_clips, out, color_model, on_submit=kill_first_try)
    assert code == 0, runner.outcomes
    assert ("long", 2) in submitted
    long = runner.outcomes["long"]
    assert long.status == "done" and long.attempts == 2 and long.summary["frames"] == 120
    assert count_frames(out / "long.mp4") == 120
    assert not [p for p in os.listdir(out) if ".partial." in p]


@pytest.mark.slow
def test_ctrl_c_stops_the_batch_cleanly(tmp_path, color_model):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c", "d", "e", "f"):  # one worker: when the first is being written, five wait
        make_box_clip(folder / f"{name}.mp4", frames=600)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "polypview.cli", "batch", str(folder), "--out", str(out),
                             "--model", str(color_model), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("*.partial.*")):
        time.sleep(0.05)  # wait until a video is being written
    finished_before = len(list(out.glob("*.json")))
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (finished_before, stdout[-2000:], stderr[-2000:])
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not list(out.glob("*.partial.*"))
    for summary in out.glob("*.json"):  # whatever finished is whole
        data = json.loads(summary.read_text())
        assert count_frames(out / data["outputs"]["video"]) == data["frames"] == 600
    rows = list(csv.DictReader(open(out / "index.csv")))
    assert {r["status"] for r in rows} <= {"done", "interrupted"} and "interrupted" in {r["status"] for r in rows}
