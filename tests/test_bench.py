"""`polypview bench`: a quick run writes every section and prints the table; targets and clips are checked."""

import json

import pytest

from polypview import bench
from polypview.benchclips import ClipSpec, make_clip, parse_size
from polypview.benchreport import STAGES
from polypview.cli import main
from polypview.errors import ConfigError
from polypview.sources import open_source

from onnx_models import make_color_model


@pytest.fixture
def color_model(tmp_path):
    return make_color_model(tmp_path / "color.onnx", input_size=(64, 64))


def test_quick_bench_writes_every_section_and_prints_the_table(tmp_path, color_model, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--quick", "--sizes", "320x180", "--seconds", "1", "--model", str(color_model),
                 "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert {"machine", "command", "clips", "gui", "targets"} <= set(report)
    assert report["machine"]["cores"] >= 1 and report["machine"]["provider"]
    (clip,) = report["clips"]
    assert clip["label"] == "320x180@30" and clip["frames"] == 30
    assert set(bench.RUN_NAMES) <= set(clip)
    for name in STAGES:
        assert clip["stages"]["stages"][name]["count"] > 0, name
    # Every frame reaches the recording in every-frame mode, and the file holds them all.
    assert clip["sync_record"]["frames_in_file"] == clip["sync_record"]["frames_shown"] == 30
    assert clip["io_floor"]["frames_in_file"] == 30 and clip["naive"]["frames_in_file"] == 30
    assert clip["live"]["frames_shown"] + clip["live"]["display_drops"] == clip["live"]["frames_read"]
    assert clip["ratios"]["sync_over_io_floor"] > 0 and clip["ratios"]["sync_over_naive"] > 0
    assert report["gui"].get("error") is None and report["gui"]["torch_imported"] is False
    assert report["gui"]["first_frame_s"] > 0
    printed = capsys.readouterr().out
    for text in ("polypview bench", "inference (the model alone)", "I/O floor", "sync / naive", "targets (live 1080p30"):
        assert text in printed
    delay = clip["live"]["annotation_delay_ms"]
    assert f"annotation delay min/p50/p95/p99/max {delay['min']:.0f} / {delay['p50']:.0f} /" in printed


def test_bench_on_a_given_clip_runs_only_the_chosen_runs(tmp_path, color_model, capsys):
    from clips import make_clip as make_test_clip

    clip_path = make_test_clip(tmp_path / "in.mp4", frames=12, size=(160, 120))
    out = tmp_path / "b.json"
    assert main(["bench", "--clip", str(clip_path), "--only", "stages,naive", "--no-gui", "--model", str(color_model),
                 "--json", str(out)]) == 0
    (clip,) = json.loads(out.read_text())["clips"]
    assert clip["kind"] == "file" and clip["size"] == [160, 120]
    assert "naive" in clip and "live" not in clip and clip["naive"]["frames"] == 12


def test_bad_options_are_one_line_errors(color_model, capsys):
    assert main(["bench", "--sizes", "999q", "--model", str(color_model)]) != 0
    assert "valid: 360p" in capsys.readouterr().err
    assert main(["bench", "--only", "everything", "--model", str(color_model)]) != 0
    assert "valid: stages" in capsys.readouterr().err


def _clip(label_size, fps, **runs):
    return {"label": "x", "size": list(label_size), "fps": fps, **runs}


def test_targets_apply_to_1080p_only_and_compare_with_their_bounds():
    good = _clip((1920, 1080), 30, live={"display_drops": 0, "mask_share": 0.97,
                                         "annotation_delay_ms": {"p50": 35.0, "p99": 90.0}},
                 live_record={"recorded_lost": 0}, ratios={"sync_over_io_floor": 0.95, "sync_over_naive": 1.2})
    checks = {t["target"]: t["passed"] for t in bench.evaluate_targets([good], None)}
    assert checks == {"live_drops": True, "live_mask": True, "live_p50": True, "live_p99": False,
                      "live_rec_lost": True, "sync_floor": True, "sync_naive": False}
    assert bench.evaluate_targets([_clip((1280, 720), 30, live={"display_drops": 3})], None) == []
    gui = bench.evaluate_targets([], {"first_frame_s": 1.2, "torch_imported": True})
    assert gui[0]["passed"] is False  # fast, but it imported torch


def test_gpu_targets_apply_when_the_model_ran_on_a_gpu():
    hd60 = _clip((1920, 1080), 60, live={"annotation_delay_ms": {"p99": 12.0}},
                 stages={"stages": {"inference": {"median_ms": 1.8}}})
    cpu = {"provider": "CPUExecutionProvider", "architecture": "blazeneo-dha", "input_size": [352, 352]}

    def gpu_checks(machine):
        return {t["target"]: (t["value"], t["passed"]) for t in bench.evaluate_targets([hd60], None, machine)
                if t["target"].startswith("gpu")}

    assert gpu_checks(cpu) == {}
    gpu = dict(cpu, provider="cuda fp16 CUDA graph")
    assert gpu_checks(gpu) == {"gpu_live_p99": (12.0, True), "gpu_model": (1.8, False)}
    other = dict(gpu, architecture="nanonet-a-neo", input_size=[192, 192])  # the model target is BlazeNeo-DHA's
    assert gpu_checks(other) == {"gpu_live_p99": (12.0, True)}


def test_sizes_parse_by_name_or_wxh():
    assert parse_size("1080p") == (1920, 1080) and parse_size("800x600") == (800, 600)
    with pytest.raises(ConfigError, match="valid: 360p"):
        parse_size("big")
    assert ClipSpec((1920, 1080), 60, 2).label == "1080p60"


def test_realistic_clip_drifts_over_neopolyp_images(tmp_path, neopolyp_dir):
    path = make_clip("realistic", ClipSpec((160, 120), 10, 1.0), tmp_path, data_dir=neopolyp_dir)
    source = open_source(str(path))
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame.image)
    source.close()
    assert len(frames) == 10 and frames[0].shape == (120, 160, 3)
    assert frames[0].mean() > 20  # an image, not the black border
    assert abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1  # the view moves


def _stage(ms, cpu=None):
    return {"count": 10, "median_ms": ms, "p95_ms": ms, "mean_ms": ms, "cpu_ms": ms if cpu is None else cpu}


def test_holdback_names_the_thread_and_stage_with_its_cost():
    from polypview.benchreport import holdback

    stages = {"decode": _stage(2), "colour": _stage(1), "preprocess": _stage(1), "inference": _stage(50),
              "postprocess": _stage(1), "overlay": _stage(3), "display": _stage(0), "i420": _stage(1), "encode": _stage(9)}
    clip = {"fps": 30.0, "stages": {"stages": stages, "encode_alone": {"fps": 100.0}}}
    live = holdback("live_p50", clip)
    assert live["thread"] == "inference worker" and live["stage"] == "inference" and live["stage_wall_ms"] == 50
    assert holdback("live_rec_lost", clip)["stage"] == "encode"
    assert holdback("live_drops", clip)["thread"] == "presenter"  # 4 ms against the source thread's 3 ms
    sync = holdback("sync_floor", clip)
    assert sync["stage"] == "inference" and "recorder 9.0 ms" in sync["text"]
    assert holdback("sync_naive", {"fps": 30.0}) is None  # no stage costs measured: nothing to blame


def test_sync_floor_holdback_says_what_the_target_leaves_the_model():
    from polypview.benchreport import holdback, model_budget

    stages = {"decode": _stage(2), "colour": _stage(1), "preprocess": _stage(1), "inference": _stage(20),
              "postprocess": _stage(1), "overlay": _stage(2), "display": _stage(0), "i420": _stage(1), "encode": _stage(8)}
    clip = {"fps": 30.0, "stages": {"stages": stages}, "io_floor": {"throughput_fps": 100.0},
            "sync_record": {"cpu_cores": 2.0}}
    budget = model_budget(clip, stages, 36.0)
    # 0.9 x 100 fps on 2 cores = 22.2 ms CPU per frame, of which the other stages take 16
    assert budget["fps"] == pytest.approx(90.0) and budget["model_cpu_ms"] == pytest.approx(2000 / 90 - 16)
    text = holdback("sync_floor", clip)["text"]
    assert "90 fps on the 2.00 cores sync obtained leaves 6.2 ms CPU/frame for the model (it takes 20.0)" in text
    del clip["io_floor"]
    assert model_budget(clip, stages, 36.0) is None and "for the model" not in holdback("sync_floor", clip)["text"]


def test_micro_benchmarks_collect():
    """`python -m pytest benchmarks/` (README, Tests) is not run by CI: at least its modules must import."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           str(root / "benchmarks")], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


# ------------------------------------------------------------------------------------ soak


def test_loop_source_plays_the_file_again_with_rising_timestamps(tmp_path):
    from polypview.benchsoak import LoopSource

    from clips import frame_number
    from clips import make_clip as make_test_clip

    source = LoopSource(make_test_clip(tmp_path / "loop.mp4", frames=10))
    try:
        frames = [source.read() for _ in range(25)]
    finally:
        source.close()
    assert [frame_number(f.image) for f in frames] == list(range(10)) * 2 + list(range(5))
    steps = [b.pts - a.pts for a, b in zip(frames, frames[1:])]
    assert all(step == pytest.approx(1 / 30, abs=1e-3) for step in steps)  # no jump back at a restart
    assert [f.seq for f in frames] == list(range(25)) and source.loops == 2


def test_soak_runs_live_and_recording_and_reports_each_sample(tmp_path, color_model, capsys):
    from clips import make_clip as make_test_clip

    clip_path = make_test_clip(tmp_path / "in.mp4", frames=15, size=(160, 120))
    out = tmp_path / "soak.json"
    assert main(["bench", "--soak", "0.1", "--clip", str(clip_path), "--model", str(color_model),
                 "--json", str(out)]) == 0
    soak = json.loads(out.read_text())["soak"]
    assert soak["loops"] >= 5 and not soak["ended_early"]  # 6 s of a 0.5 s clip
    assert len(soak["samples"]) >= 3
    # The samples count every frame shown up to the last one; a frame or two may come while the pipeline stops.
    assert 0 <= soak["frames_shown"] - sum(s["frames_shown"] for s in soak["samples"]) <= 5
    assert soak["frames_shown"] > 100
    assert soak["frames_in_file"] == soak["frames_shown"] and soak["record_finalised"]
    sample = soak["samples"][-1]
    if sample["rss_mb"] is not None:  # Linux /proc, else psutil
        assert sample["rss_mb"] > 10 and sample["threads"] >= 4 and sample["open_files"] > 0
        assert all(0 < s["rss_floor_mb"] <= s["rss_mb"] for s in soak["samples"])  # read between the samples too
    assert sample["annotation_p99_ms"] > 0
    printed = capsys.readouterr().out
    assert "soak: 0.1 min live, recording" in printed and "no recorded frame lost, file finalised" in printed
    assert "resident memory (floor) growth" in printed and "not judged under 10 min" in printed  # too short to judge


def test_soak_targets_catch_creeping_delay_growing_threads_and_memory():
    from polypview.benchsoak import growth_per_hour, soak_targets

    times = [30.0 * i for i in range(40)]  # 20 minutes
    slope, margin = growth_per_hour(times, [300 + 30 * t / 3600 for t in times])
    assert slope == pytest.approx(30.0) and margin == pytest.approx(0.0, abs=1e-6)
    assert growth_per_hour(times[:10], [300.0] * 10) is None  # a 5-minute run: not judged
    jitter = [300 + (8 if i % 2 else -8) for i in range(len(times))]  # a sawtooth, no trend
    slope, margin = growth_per_hour(times, jitter)
    assert abs(slope) < margin  # the margin covers the jitter's apparent slope

    def sample(t, p99, threads):
        return {"t_s": t, "rss_mb": 300 + 30 * t / 3600, "rss_floor_mb": 300 + 30 * t / 3600, "threads": threads, "open_files": 9,
                "annotation_p99_ms": p99}

    samples = [sample(t, 30.0 if t < 500 else 95.0, 18 if t < 500 else 19) for t in times]
    result = {"samples": samples, "display_drops": 0, "rss_growth_mb_per_h": growth_per_hour(times, [
        s["rss_mb"] for s in samples])}
    marks = {name: ok for name, ok, _ in soak_targets(result, 80.0)}
    assert marks == {"display drops = 0": True, "each sample's annotation delay p99 <= 80 ms (after the first)": False,
                     "resident memory (floor) growth <= 20 MB/h": False, "threads: last fifth's most <= first fifth's": False,
                     "open files: last fifth's most <= first fifth's": True}
    start_only = [sample(t, 200.0 if t == 0 else 30.0, 18) for t in times]  # the start is the first-frame probe's
    result = {"samples": start_only, "display_drops": 0, "rss_growth_mb_per_h": (4.0, 30.0)}
    checks = {name: (ok, figure) for name, ok, figure in soak_targets(result, 80.0)}
    assert checks["each sample's annotation delay p99 <= 80 ms (after the first)"] == (True, "worst 30.0 at 0:30")
    assert checks["resident memory (floor) growth <= 20 MB/h"] == (None, "+4.0 +/- 30.0 (cannot tell: run longer)")


def test_soak_keeps_the_memory_floor_between_samples_and_judges_growth_on_it(monkeypatch):
    from types import SimpleNamespace

    from polypview import benchsoak
    from polypview.stats import StatsCollector

    readings = iter([310.0, 304.0, 316.0, 320.0, 330.0, 302.0])
    monkeypatch.setattr(benchsoak, "resident_mb", lambda: next(readings))
    sampler = benchsoak.Sampler(StatsCollector(keep_records=False), SimpleNamespace(loops=0))
    for _ in range(3):
        sampler.watch()  # 310, 304, 316 between the rows
    row = sampler.sample(10.0)  # 320 at the row itself
    assert (row["rss_mb"], row["rss_floor_mb"]) == (320.0, 304.0)
    sampler.watch()  # 330
    row = sampler.sample(20.0)  # 302: the floor starts again at each row
    assert (row["rss_mb"], row["rss_floor_mb"]) == (302.0, 302.0)

    # Frames in flight: the readings at the samples climb by whole frames now and then, the floor stays put.
    times = [30.0 * i for i in range(40)]  # 20 minutes
    samples = [{"t_s": t, "rss_mb": 300.0 + 6.2 * (i * i % 7 == 0) * (i // 8), "rss_floor_mb": 300.0,
                "threads": 18, "open_files": 9, "annotation_p99_ms": 30.0, "frames_shown": 900, "display_drops": 0,
                "record_drops": 0, "annotation_p50_ms": 20.0, "parts_p99_ms": {}} for i, t in enumerate(times)]
    summary = SimpleNamespace(frames_shown=36000, drops={}, annotation_delay=SimpleNamespace(p50=20.0, p99=30.0),
                              errors=[], recording=None)
    result = benchsoak.soak_result(samples, summary, None, 1200.0, False, 40)
    assert result["rss_growth_mb_per_h"] == pytest.approx((0.0, 0.0), abs=1e-6)
    slope, margin = result["rss_growth_at_samples_mb_per_h"]
    assert slope + margin > 20.0  # judged on the readings at the samples, it could not pass
    checks = {name: ok for name, ok, _ in benchsoak.soak_targets(result, 80.0)}
    assert checks["resident memory (floor) growth <= 20 MB/h"] is True
    assert "resident memory at the samples (not their floors): +" in benchsoak.format_soak(result, 80.0)


def test_soak_needs_a_positive_length(color_model, capsys):
    assert main(["bench", "--soak", "0", "--model", str(color_model)]) != 0
    assert "--soak must be a positive number of minutes" in capsys.readouterr().err


def test_window_soak_plays_the_clip_through_the_window_in_a_child(tmp_path, color_model, capsys):
    from clips import make_clip as make_test_clip

    clip_path = make_test_clip(tmp_path / "in.mp4", frames=15, size=(160, 120))
    out = tmp_path / "soak.json"
    assert main(["bench", "--soak", "0.1", "--soak-window", "--clip", str(clip_path), "--model", str(color_model),
                 "--json", str(out)]) == 0
    soak = json.loads(out.read_text())["soak"]
    assert soak["window"] and soak["loops"] >= 3 and len(soak["samples"]) >= 2
    assert soak["frames_in_file"] == soak["frames_shown"] > 60 and soak["record_finalised"]
    assert all(s["rss_mb"] is None or 0 < s["rss_floor_mb"] <= s["rss_mb"] for s in soak["samples"])
    assert "soak in the window: 0.1 min live, recording" in capsys.readouterr().out


def test_soak_window_needs_soak(color_model, capsys):
    assert main(["bench", "--soak-window", "--model", str(color_model)]) != 0
    assert "--soak-window goes with --soak MINUTES" in capsys.readouterr().err
