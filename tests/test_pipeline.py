"""Pipeline: order, no mask from the future, counted drops, staleness, shutdown with a hung engine."""

import csv
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from polypview.inference.runtime.engine import Prediction
from polypview.inference.runtime.modelfile import neopolyp_info
from polypview.overlay import OverlaySettings
from polypview.pipeline import LatestSlot, Pacer, Pipeline, PipelineConfig
from polypview.sources import open_source

from clips import frame_number, make_clip, read_frames

MODEL_HW = (16, 16)


class PatternEngine:
    """A fake engine that reads the frame number from the pattern, optionally slowly or hanging.

    Its mask is a band whose width says which frame it came from (`mask_columns`), so a test can
    tell from the pixels which frame's mask was drawn; it remembers which frame numbers it saw.
    """

    name, backend, provider = "pattern", "fake", "none"

    def __init__(self, delay: float = 0.0, hang_after: int | None = None, fail_after: int | None = None):
        self.info = neopolyp_info("fake", MODEL_HW[0])
        self.delay, self.hang_after, self.fail_after = delay, hang_after, fail_after
        self.seen: list[int] = []
        self.rois: list = []
        self.release = threading.Event()

    def predict(self, frame, roi=None):
        n = frame_number(frame)
        self.seen.append(n)
        self.rois.append(roi)
        if self.hang_after is not None and len(self.seen) > self.hang_after:
            self.release.wait()  # hangs until the test ends
        if self.fail_after is not None and len(self.seen) > self.fail_after:
            raise RuntimeError("simulated model crash")
        time.sleep(self.delay)
        scores = np.zeros(MODEL_HW, np.float32)
        scores[8:12, MODEL_HW[1] - mask_columns(n):] = 0.9
        return Prediction(scores, np.zeros(MODEL_HW, np.uint8), {"inference": self.delay})

    def close(self):
        self.release.set()


def mask_columns(n: int) -> int:
    """Width, in model pixels, of the mask PatternEngine makes for frame n."""
    return 1 + n % 15


def drawn_columns(image, raw) -> int:
    """Width, in model pixels (10 frame pixels), of the band drawn on a 160x120 frame."""
    changed = (image[64:86] != raw[64:86]).any(axis=(0, 2))
    return round(int(changed.sum()) / 10)


class ListSink:
    def __init__(self):
        self.frames, self.errors, self.finished = [], [], []
        self.reshows = []  # frames shown again with their own mask (live re-show), kept apart
        self.shown = []  # every call, in order
        self.done = threading.Event()

    def on_frame(self, p):
        seen = SimpleNamespace(seq=p.seq, number=frame_number(p.raw), overlay_seq=p.overlay_seq, stale=p.stale,
                               changed=not np.array_equal(p.image, p.raw), mask=drawn_columns(p.image, p.raw),
                               reshown=p.reshown)
        (self.reshows if p.reshown else self.frames).append(seen)
        self.shown.append(seen)

    def on_error(self, e):
        self.errors.append(e)

    def on_finished(self, summary):
        self.finished.append(summary)
        self.done.set()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", frames=60, size=(160, 120), fps=30)


def run_pipeline(source, engine, timeout=20.0, stop_timeout=5.0, **config):
    sink = ListSink()
    pipeline = Pipeline(source, engine, PipelineConfig(roi=False, **config), sink)
    pipeline.start()
    assert pipeline.wait(timeout)
    summary = pipeline.stop(stop_timeout)
    return sink, summary


def test_sync_mode_draws_every_frame_with_its_own_mask(clip, tmp_path):
    engine = PatternEngine()
    sink, summary = run_pipeline(open_source(clip), engine, mode="sync", record_path=tmp_path / "out.mp4",
                                 metrics_path=tmp_path / "m.csv")
    assert [f.number for f in sink.frames] == list(range(60)) == [f.seq for f in sink.frames]
    # every frame inferred exactly once; two sync workers may call the engine out of order (results are re-ordered)
    assert sorted(engine.seen) == list(range(60))
    assert all(f.overlay_seq == f.seq and f.changed and not f.stale for f in sink.frames)
    assert [f.mask for f in sink.frames] == [mask_columns(n) for n in range(60)]  # its own mask, from the pixels
    assert summary.drops == {} and summary.frames_shown == summary.masks_shown == 60
    assert summary.recording.frames_written == 60 and len(sink.finished) == 1
    frames, rate = read_frames(tmp_path / "out.mp4")
    assert len(frames) == 60 and rate == pytest.approx(30)
    rows = (tmp_path / "m.csv").read_text().splitlines()
    assert len(rows) == 61 and rows[0].startswith("seq,pts,t_enter,t_infer_start")


def test_live_mode_never_draws_the_future_and_counts_drops(clip):
    engine = PatternEngine(delay=0.08)  # ~12 fps of inference for a 30 fps clip
    sink, summary = run_pipeline(open_source(clip), engine, mode="live", staleness_s=0.5)
    seqs = [f.seq for f in sink.frames]
    assert seqs == sorted(seqs) and [f.number for f in sink.frames] == seqs  # nothing out of order
    drawn = [f.overlay_seq for f in sink.frames if f.overlay_seq is not None]
    assert drawn and drawn == sorted(drawn)  # masks never go backwards
    assert all(f.overlay_seq <= f.seq for f in sink.frames if f.overlay_seq is not None)  # never from the future
    assert all(f.mask == mask_columns(f.overlay_seq) for f in sink.frames if f.overlay_seq is not None)
    assert all(f.mask == 0 for f in sink.frames if f.overlay_seq is None)
    assert summary.drops.get("inference", 0) > 10  # the worker skipped frames...
    assert summary.frames_shown + summary.drops.get("display", 0) == 60  # ...the display did not
    assert len(engine.seen) < 40 and engine.seen == sorted(engine.seen)
    assert summary.annotation_delay.count == len(set(drawn))


def test_live_mode_hides_stale_masks(clip):
    engine = PatternEngine(delay=0.25)  # masks arrive 250 ms late: older than the 100 ms limit
    sink, summary = run_pipeline(open_source(clip), engine, mode="live", staleness_s=0.1)
    assert all(f.overlay_seq is None and f.stale for f in sink.frames)
    assert summary.stale_frames == summary.frames_shown == 60 and summary.masks_shown == 0


def test_live_mode_plays_at_the_clip_rate(clip):
    sink, summary = run_pipeline(open_source(clip), None, mode="live")
    assert summary.duration_s == pytest.approx(2.0, abs=0.4) and len(sink.frames) == 60


def test_video_only_and_disabled_overlay_leave_frames_untouched(clip):
    sink, _ = run_pipeline(open_source(clip), None, mode="sync")
    assert not any(f.changed or f.stale for f in sink.frames)
    sink = ListSink()
    pipeline = Pipeline(open_source(clip), PatternEngine(), PipelineConfig(mode="sync", roi=False), sink)
    pipeline.set_overlay(OverlaySettings(enabled=False))
    pipeline.start()
    assert pipeline.wait(10)
    pipeline.stop()
    assert not any(f.changed or f.overlay_seq is not None for f in sink.frames)


def test_max_frames_and_stats_snapshot(clip):
    sink, summary = run_pipeline(open_source(clip), PatternEngine(), mode="sync", max_frames=10)
    assert len(sink.frames) == 10 and summary.frames_read == 10
    assert summary.inference.count == 10 and summary.annotation_delay.p50 > 0


def test_stop_returns_in_time_when_the_engine_hangs(clip, tmp_path):
    engine = PatternEngine(hang_after=3)
    sink = ListSink()
    pipeline = Pipeline(open_source(clip), engine, PipelineConfig(mode="sync", roi=False, record_path=tmp_path / "h.mp4"), sink)
    pipeline.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    summary = pipeline.stop(timeout=2.0)
    assert time.monotonic() - t0 < 3.0
    engine.close()
    assert summary.interrupted and summary.recording.finalised
    assert len(read_frames(tmp_path / "h.mp4")[0]) == summary.recording.frames_written == len(sink.frames)


def test_live_video_keeps_playing_when_the_engine_hangs(clip):
    engine = PatternEngine(hang_after=2)
    sink, summary = run_pipeline(open_source(clip), engine, mode="live", stop_timeout=1.0)
    engine.close()
    assert len(sink.frames) + summary.drops.get("display", 0) == 60
    assert sink.frames[-1].stale and sink.frames[-1].overlay_seq is None


def test_model_crash_is_reported_once_and_video_goes_on(clip):
    sink, summary = run_pipeline(open_source(clip), PatternEngine(fail_after=5), mode="sync")
    assert len(sink.errors) == 1 and "simulated model crash" in str(sink.errors[0])
    assert len(sink.frames) == 60


def test_recording_start_and_stop_while_running(clip, tmp_path):
    sink = ListSink()
    pipeline = Pipeline(open_source(clip), PatternEngine(), PipelineConfig(mode="live", roi=False), sink)
    pipeline.start()
    time.sleep(0.4)
    pipeline.start_recording(tmp_path / "part.mp4")
    assert pipeline.recording
    time.sleep(0.6)
    report = pipeline.stop_recording()
    assert not pipeline.recording and report.finalised
    pipeline.stop()
    frames, rate = read_frames(tmp_path / "part.mp4")
    assert 10 <= len(frames) == report.frames_written and rate == pytest.approx(30)
    numbers = [frame_number(f) for f in frames]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # in order, none missing


def test_pause_resume_and_seek(clip):
    sink = ListSink()
    pipeline = Pipeline(open_source(clip), None, PipelineConfig(mode="live", roi=False), sink)
    pipeline.start()
    time.sleep(0.3)
    pipeline.pause()
    time.sleep(0.15)
    count = len(sink.frames)
    time.sleep(0.3)
    assert pipeline.paused and len(sink.frames) == count
    pipeline.seek(1.5)
    time.sleep(0.4)
    assert sink.frames[-1].number == 45  # the frame sought to is shown while paused
    pipeline.resume()
    assert pipeline.wait(5)
    pipeline.stop()
    numbers = [f.number for f in sink.frames]
    assert numbers[-1] == 59 and [f.seq for f in sink.frames] == sorted(f.seq for f in sink.frames)


def test_set_engine_while_running(clip):
    sink = ListSink()
    pipeline = Pipeline(open_source(clip), None, PipelineConfig(mode="live", roi=False, realtime=True), sink)
    pipeline.start()
    time.sleep(0.5)
    pipeline.set_engine(PatternEngine())
    assert pipeline.wait(5)
    pipeline.stop()
    assert sink.frames[0].overlay_seq is None and any(f.overlay_seq is not None for f in sink.frames[-10:])


def test_latest_slot_and_pacer():
    slot = LatestSlot()
    assert slot.put("a") is None and slot.put("b") == "a"
    assert slot.take(0.01) == "b" and slot.take(0.01) is None
    slot.close()
    assert slot.closed and slot.take(1.0) is None
    pacer = Pacer()
    assert pacer.wait_s(10.0, 100.0) == 0.0
    assert pacer.wait_s(10.5, 100.1) == pytest.approx(0.4)
    assert pacer.wait_s(5.0, 100.2) == 0.0  # jumped back (seek): re-anchored
    assert pacer.wait_s(5.1, 101.0) == 0.0  # far behind: re-anchored instead of rushing


def test_bad_mode_is_refused():
    from polypview.errors import ConfigError

    with pytest.raises(ConfigError, match="live, sync"):
        PipelineConfig(mode="fast")


def test_stats_collector_latencies_and_bounded_memory(tmp_path):
    from polypview.stats import RECENT_RECORDS, StatsCollector

    collector = StatsCollector(keep_records=False)
    for seq in range(3000):
        t = 100 + seq / 30
        collector.entered(seq, seq / 30, t)
        collector.inferred(seq, t, t + 0.01, 0.008)
        collector.presented(seq, t + 0.005, seq - 1 if seq else None, seq == 0)
    summary = collector.summary()
    assert len(collector.records()) <= RECENT_RECORDS  # a day-long session does not grow without bound
    assert summary.frames_read == summary.frames_shown == 3000 and summary.stale_frames == 1
    assert summary.video_delay.p50 == pytest.approx(5.0) and summary.inference.p99 == pytest.approx(8.0)
    # frame k's mask first appears with frame k+1: one frame interval plus 5 ms later
    assert summary.annotation_delay.count == 2999 and summary.annotation_delay.p50 == pytest.approx(1000 / 30 + 5)
    assert summary.staleness.max == pytest.approx(1000 / 30 + 5)
    keep = StatsCollector(keep_records=True)
    keep.entered(0, 0.0, 5.0)
    keep.presented(0, 5.02, 0, False)
    keep.write_csv(tmp_path / "m.csv")
    rows = (tmp_path / "m.csv").read_text().splitlines()
    assert rows[1].split(",")[10] == "20.000"  # video_delay_ms


def test_endoscope_area_is_found_and_given_to_the_engine():
    engine = PatternEngine()
    source = open_source("demo", size=(320, 180), fps=30)
    sink = ListSink()
    pipeline = Pipeline(source, engine, PipelineConfig(mode="sync", max_frames=5), sink)
    pipeline.start()
    assert pipeline.wait(10)
    pipeline.stop()
    x, y, w, h = engine.rois[0]
    assert engine.rois == [engine.rois[0]] * 5
    assert 60 < x and x + w < 260 and w < 220  # the circular field, not the black sides


def test_a_lagging_display_drops_its_oldest_frames_and_catches_up(clip):
    class SlowSink(ListSink):
        def on_frame(self, p):
            time.sleep(0.06)  # a display at half the clip's rate
            super().on_frame(p)

    sink = SlowSink()
    pipeline = Pipeline(open_source(clip), None, PipelineConfig(mode="live", roi=False), sink)
    pipeline.start()
    assert pipeline.wait(20)
    summary = pipeline.stop()
    numbers = [f.number for f in sink.frames]
    assert numbers == sorted(set(numbers)) and numbers[-1] == 59  # in order, and the newest frame is shown
    assert summary.drops["display"] > 10 and len(numbers) + summary.drops["display"] == 60


def recorded_masks(recording, clip_path) -> dict[int, int]:
    """frame number -> width of the band drawn on it, from a recording compared with the source clip."""
    raw = {frame_number(f): f for f in read_frames(clip_path)[0]}
    widths = {}
    for image in read_frames(recording)[0]:
        n = frame_number(image)
        changed = (np.abs(image[64:86].astype(int) - raw[n][64:86]).max(axis=2) > 20).any(axis=0)
        widths[n] = round(int(changed.sum()) / 10)
    return widths


def test_live_reshows_a_frame_with_its_own_mask_and_records_that_form(clip, tmp_path):
    engine = PatternEngine(delay=0.002)  # far faster than the clip's 33 ms frame interval
    sink, summary = run_pipeline(open_source(clip), engine, mode="live", record_path=tmp_path / "out.mp4",
                                 metrics_path=tmp_path / "m.csv")
    assert sink.reshows, "a fast model's mask should reach the screen on its own frame"
    assert len(sink.frames) == 60 and summary.frames_shown == 60 and summary.frames_reshown == len(sink.reshows)
    for before, again in zip(sink.shown, sink.shown[1:]):
        if again.reshown:  # right after the frame's first showing, with the frame's own mask (from the pixels)
            assert before.seq == again.seq and not before.reshown
            assert again.overlay_seq == again.seq and again.mask == mask_columns(again.seq)
    # annotation delay of a re-shown frame's mask is counted when it was re-shown
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    reshown = [r for r in rows if r["t_reshown"]]
    assert len(reshown) == len(sink.reshows)
    for r in reshown:
        delay = 1000 * (float(r["t_reshown"]) - float(r["t_enter"]))
        assert float(r["annotation_delay_ms"]) == pytest.approx(delay, abs=0.01)
        assert r["overlay_seq"] == r["seq"]
    # every shown frame is recorded once, in order, and a re-shown frame in its re-shown form
    assert summary.recording.frames_written == 60
    widths = recorded_masks(tmp_path / "out.mp4", clip)
    assert sorted(widths) == list(range(60))
    assert {f.seq: widths[f.seq] for f in sink.reshows} == {f.seq: mask_columns(f.seq) for f in sink.reshows}


def test_live_reshow_can_be_turned_off(clip, tmp_path):
    sink, summary = run_pipeline(open_source(clip), PatternEngine(delay=0.002), mode="live", reshow=False,
                                 record_path=tmp_path / "out.mp4")
    assert sink.reshows == [] and summary.frames_reshown == 0 and len(sink.frames) == 60
    assert summary.recording.frames_written == 60
    widths = recorded_masks(tmp_path / "out.mp4", clip)  # recorded as shown
    assert all(widths[f.seq] == (mask_columns(f.overlay_seq) if f.overlay_seq is not None else 0) for f in sink.frames)
    assert [f.seq for f in sink.shown] == sorted({f.seq for f in sink.shown})  # each frame shown once


def test_a_reshow_turns_a_frame_shown_without_a_mask_into_a_masked_one():
    from polypview.stats import StatsCollector

    stats = StatsCollector()
    stats.entered(0, 0.0, 10.0)
    stats.presented(0, 10.004, None, stale=True)
    stats.reshown(0, 10.012, 0)
    summary = stats.summary()
    assert (summary.frames_shown, summary.masks_shown, summary.stale_frames, summary.frames_reshown) == (1, 1, 0, 1)
    assert summary.annotation_delay.p50 == pytest.approx(12.0)
    assert summary.video_delay.p50 == pytest.approx(4.0)


def _tower_screen(x0: int, seed: int = 0) -> np.ndarray:
    """A black 720p screen with a bright, textured 600 x 560 image area at x0."""
    screen = np.zeros((720, 1280, 3), np.uint8)
    screen[80:640, x0:x0 + 600] = np.random.default_rng(seed).integers(60, 255, (560, 600, 3), dtype=np.uint8)
    return screen


def test_the_image_area_is_checked_again_and_a_new_layout_is_taken():
    from polypview.sources import Frame
    from polypview.stages import ROI_RECHECK_EVERY, ModelState

    every = ROI_RECHECK_EVERY
    left, right, black = _tower_screen(60), _tower_screen(620, 1), np.zeros((720, 1280, 3), np.uint8)
    state = ModelState(None, find_roi=True)
    state.look_for_roi(Frame(0, left, 0.0, 0.0))
    first = state.roi
    assert first is not None and abs(first[0] - 60) <= 8 and abs(first[2] - 600) <= 16
    state.temporal = "class memory of the old regions"
    state.look_for_roi(Frame(every, right, 0.0, 0.0))
    assert state.roi == first  # one check is not enough: a menu or a flash passes
    state.look_for_roi(Frame(2 * every, black, 0.0, 0.0))
    state.look_for_roi(Frame(2 * every + 1, right, 0.0, 0.0))  # between checks: not looked at
    assert state.roi == first  # a black frame tells nothing either way
    state.look_for_roi(Frame(3 * every, right, 0.0, 0.0))
    assert abs(state.roi[0] - 620) <= 8 and state.temporal is None  # two checks in a row agree: taken
    state.look_for_roi(Frame(4 * every, left, 0.0, 0.0))
    state.look_for_roi(Frame(5 * every, right, 0.0, 0.0))
    assert abs(state.roi[0] - 620) <= 8  # a lone check of another area is forgotten
    off = ModelState(None, find_roi=False)
    for seq in range(0, 4 * every, every):
        off.look_for_roi(Frame(seq, left, 0.0, 0.0))
    assert off.roi is None  # --no-roi: never looked for


@pytest.mark.parametrize("roi", [(40, 20, 200, 140), False], ids=["given", "off"])
def test_an_image_area_given_or_switched_off_is_used_as_it_is(roi):
    from polypview.settings import parse_roi

    assert parse_roi("auto") is True and parse_roi("OFF") is False and parse_roi("40,20,200,140") == (40, 20, 200, 140)
    engine = PatternEngine()
    pipeline = Pipeline(open_source("demo", size=(320, 180), fps=30), engine,
                        PipelineConfig(mode="sync", max_frames=5, roi=roi), ListSink())
    pipeline.start()
    assert pipeline.wait(10)
    pipeline.stop()
    assert engine.rois == [roi or None] * 5  # never replaced by a detected area


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_recorder_that_gave_up_no_longer_counts_as_recording():
    sink = ListSink()
    pipeline = Pipeline(open_source("demo", size=(160, 120), fps=30), None, PipelineConfig(mode="live", roi=False), sink)
    pipeline.start()
    pipeline.start_recording("/dev/full")
    deadline = time.monotonic() + 10
    while not sink.errors and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink.errors and "disk full" in str(sink.errors[0])
    assert not pipeline.recording and not pipeline.stats().recording  # the window clears REC from this
    report = pipeline.stop_recording()  # what was written is finalised, the error kept
    assert report is not None and "disk full" in report.error
    pipeline.stop()


def test_the_image_area_can_be_changed_while_running():
    """The window sets the area live (drawn by the user, the whole frame, or found again): the engine gets the new
    one from the next frames on, and an area outside the frame is refused in one line without changing anything."""
    from polypview.errors import ConfigError

    engine = PatternEngine()
    pipeline = Pipeline(open_source("demo", size=(320, 180), fps=30), engine,
                        PipelineConfig(mode="sync", roi=False), ListSink())
    pipeline.start()
    try:
        for area, expected in (((40, 20, 200, 140), (40, 20, 200, 140)), (False, None)):
            pipeline.set_roi(area)
            assert pipeline.roi == expected
            seen = len(engine.rois)
            deadline = time.monotonic() + 10
            while len(engine.rois) < seen + 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert engine.rois[-1] == expected
        with pytest.raises(ConfigError, match="reaches outside the 320x180 frame"):
            pipeline.set_roi((200, 20, 200, 140))
        assert pipeline.roi is None
        pipeline.set_roi(True)  # found again: the demo's round field, not the black sides
        deadline = time.monotonic() + 10
        while pipeline.roi is None and time.monotonic() < deadline:
            time.sleep(0.01)
        x, y, w, h = pipeline.roi
        assert 60 < x and x + w < 260 and w < 220
    finally:
        pipeline.stop()
