"""Whole-pipeline throughput at 1080p: every-frame mode with recording, its I/O floor, and the naive loop."""

from polypview.benchclips import ClipSpec
from polypview.benchruns import naive_loop, run_pipeline
from polypview.overlay import OverlaySettings

SPEC = ClipSpec((1920, 1080), 30.0, 2.0)
TIMEOUT_S = 300.0


def _fps(benchmark, result):
    benchmark.extra_info["throughput_fps"] = result["throughput_fps"]
    return result


def test_sync_with_recording(benchmark, hd_clip, engine, tmp_path):
    run = lambda: run_pipeline(hd_clip, engine, "sync", tmp_path / "sync.mp4", OverlaySettings(), TIMEOUT_S)  # noqa: E731
    result = _fps(benchmark, benchmark.pedantic(run, rounds=2, iterations=1))
    assert result["frames_in_file"] == result["frames_shown"] == SPEC.frames


def test_io_floor(benchmark, hd_clip, tmp_path):
    run = lambda: run_pipeline(hd_clip, None, "sync", tmp_path / "floor.mp4", OverlaySettings(), TIMEOUT_S)  # noqa: E731
    result = _fps(benchmark, benchmark.pedantic(run, rounds=2, iterations=1))
    assert result["frames_in_file"] == SPEC.frames


def test_naive_loop(benchmark, hd_clip, engine, tmp_path):
    run = lambda: naive_loop(hd_clip, engine, OverlaySettings(), SPEC, tmp_path / "naive.mp4")  # noqa: E731
    result = _fps(benchmark, benchmark.pedantic(run, rounds=2, iterations=1))
    assert result["frames_in_file"] == SPEC.frames
