"""`polypview eval --video`: the tower clip is aligned with its truth, the metrics equal hand counts,
the drawn mask is the overlay's, and a whole run on a tiny model and dataset writes its JSON."""

import json

import cv2
import numpy as np
import pytest

from polypview.cli import main
from polypview.errors import ConfigError
from polypview.inference.runtime.labels import BACKGROUND, NEOPLASTIC, NON_NEOPLASTIC
from polypview.inference.training.towerclip import KINDS, TowerClip, VideoOptions, parse_seconds
from polypview.inference.training.videoeval import DrawnLabels, FrameScore, score_frame, video_metrics

from onnx_models import make_color_model

RED_BGR, GREEN_BGR, GREY_BGR = (0, 0, 255), (0, 255, 0), (128, 128, 128)
MASK_BGR = {NEOPLASTIC: (0, 0, 255), NON_NEOPLASTIC: (0, 255, 0)}  # NeoPolyp mask colours (BGR)
SMALL = VideoOptions(fps=10, size=(320, 180), score_size=(160, 90))


def _make_dataset(root, count=12, size=(96, 128), seed=0):
    """`count` images painted from their label maps: grey scene, one red or green polyp (NeoPolyp-like)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    h, w = size
    for i in range(count):
        labels = np.full((h, w), BACKGROUND, np.uint8)
        cls = NEOPLASTIC if i % 3 else NON_NEOPLASTIC
        cx, cy = int(rng.integers(w // 5, 4 * w // 5)), int(rng.integers(h // 5, 4 * h // 5))
        cv2.ellipse(labels, (cx, cy), (int(rng.integers(6, 14)), int(rng.integers(6, 14))), 0, 0, 360, int(cls), -1)
        image = np.empty((h, w, 3), np.uint8)
        image[:] = GREY_BGR
        image[labels == cls] = RED_BGR if cls == NEOPLASTIC else GREEN_BGR
        mask = np.zeros((h, w, 3), np.uint8)
        mask[labels == cls] = MASK_BGR[cls]
        cv2.imwrite(str(root / "images" / f"im{i:02d}.png"), image)
        cv2.imwrite(str(root / "masks" / f"im{i:02d}.png"), mask)
    return root


@pytest.fixture
def painted(tmp_path):
    from polypview.inference.training.data import folder_pairs

    return folder_pairs(_make_dataset(tmp_path / "data"))


# ---------------------------------------------------------------- the clip


def test_clip_truth_is_the_painted_colour_of_every_frame(painted):
    clip = TowerClip(painted, SMALL)
    frames = 0
    for item in clip:
        frames += 1
        b, g, r = (item.image[..., c].astype(int) for c in range(3))
        red = (r > 200) & (g < 40) & (b < 40)
        green = (g > 200) & (r < 40) & (b < 40)
        for truth_class, colour in ((NEOPLASTIC, red), (NON_NEOPLASTIC, green)):
            true = item.truth == truth_class
            if true.sum() >= 20:  # interior pixels keep the exact colour; edges are interpolated
                assert (colour & true).sum() >= 0.8 * true.sum()
            # a pure-coloured pixel is always that class in the truth (a warped edge may blend)
            assert (colour & ~true).sum() <= 0.05 * max(colour.sum(), 1) + 2
        # black pixels (border of a framed view) are never polyp in the truth
        assert not (item.truth[item.image.max(axis=2) == 0] != BACKGROUND).any()
    assert frames == len(clip) == sum(s.frames for s in clip.segments)


def test_clip_has_polyp_free_edge_and_black_framed_views(painted):
    clip = TowerClip(painted, SMALL)
    kinds = {s.kind for s in clip.segments}
    assert {"framed", "away", "polyp"} <= kinds <= set(KINDS)
    free = edge = framed = 0
    w, h = SMALL.size
    for item in clip:
        polyp = item.truth != BACKGROUND
        free += not polyp.any()
        edge += bool(polyp[0].any() or polyp[-1].any() or polyp[:, 0].any() or polyp[:, -1].any())
        segment = clip.segments[item.segment]
        if segment.kind == "framed":
            x, y, ww, hh = segment.window
            assert ww < w  # a 4:3 picture in a 16:9 frame: black beside it
            outside = np.ones((h, w), bool)
            outside[y:y + hh, x:x + ww] = False
            assert (item.image[outside] == 0).mean() > 0.9  # black, but for the burned-in text
            assert (item.truth[outside] == BACKGROUND).all()
            framed += 1
    assert free > 0 and edge > 0 and framed > 0


def test_clip_is_seeded_and_each_image_lasts_its_seconds(painted):
    clip = TowerClip(painted, SMALL)
    again = TowerClip(painted, SMALL)
    other = TowerClip(painted, VideoOptions(fps=10, size=(320, 180), seed=1))
    assert clip.segments == again.segments and clip.segments != other.segments
    assert [s.image for s in clip.segments] == list(range(len(painted)))
    assert all(5 <= s.frames <= 10 for s in clip.segments)  # 0.5-1 s at 10 fps
    assert all(1.0 <= s.begin.zoom <= 3.0 and 1.0 <= s.end.zoom <= 3.0 for s in clip.segments)
    assert max(max(s.begin.zoom, s.end.zoom) for s in clip.segments) > 2.0
    fixed = TowerClip(painted, VideoOptions(fps=10, seconds=(0.8, 0.8), size=(320, 180)))
    assert {s.frames for s in fixed.segments} == {8}


def test_several_clips_play_each_seed_after_the_other(painted):
    from dataclasses import replace

    three = TowerClip(painted, replace(SMALL, clips=3))
    clips = [TowerClip(painted, replace(SMALL, seed=SMALL.seed + k)).segments for k in range(3)]
    assert [s.image for s in three.segments] == list(range(len(painted))) * 3
    assert [replace(s, start=0) for s in three.segments] == [replace(s, start=0) for c in clips for s in c]
    assert three.frames == sum(s.frames for c in clips for s in c) == len(list(three))
    starts = [s.start for s in three.segments]
    assert starts == sorted(starts) and starts[len(painted)] == sum(s.frames for s in clips[0])
    with pytest.raises(ConfigError, match="at least one clip"):
        TowerClip(painted, replace(SMALL, clips=0))


def test_seconds_per_image_parses_ranges():
    assert parse_seconds("0.5-1") == (0.5, 1.0)
    assert parse_seconds("0.75") == (0.75, 0.75)


def test_clip_of_the_real_test_split(neopolyp_dir):
    """The packaged test split as the default clip: about 2000 frames of 1920x1080, every kind of view."""
    from polypview.inference.training.data import load_split, neopolyp_pairs

    clip = TowerClip(neopolyp_pairs(neopolyp_dir, load_split("test")))
    assert len(clip.segments) == 90 and 1400 <= len(clip) <= 2700
    assert {s.kind for s in clip.segments} == set(KINDS)
    item = next(iter(clip))
    assert item.image.shape == (1080, 1920, 3) and item.truth.shape == (1080, 1920)


# ---------------------------------------------------------------- the metrics


def _maps(true_boxes=(), drawn=()):
    """(pred, truth) 10x20 label maps: true polyp boxes (y0, y1, x0, x1, class), drawn the same way."""
    truth = np.full((10, 20), BACKGROUND, np.uint8)
    pred = truth.copy()
    for layer, boxes in ((truth, true_boxes), (pred, drawn)):
        for y0, y1, x0, x1, cls in boxes:
            layer[y0:y1, x0:x1] = cls
    return pred, truth


POLYP = (2, 4, 2, 4, NEOPLASTIC)  # a 2x2 true polyp


def test_video_metrics_on_a_hand_made_sequence():
    frames = [
        # image 0: drawn neo, non, nothing (missed), non -> 1 missed of 4; classes neo, non, non: 1 flip
        (0, [POLYP], [(2, 4, 2, 4, NEOPLASTIC)]),
        (0, [POLYP], [(2, 4, 2, 4, NON_NEOPLASTIC)]),
        (0, [POLYP], [(7, 9, 10, 12, NEOPLASTIC)]),  # drawn, but not on the polyp: missed, not a flip
        (0, [POLYP], [(2, 3, 2, 4, NON_NEOPLASTIC), (3, 4, 2, 3, NEOPLASTIC)]),  # 2 non vs 1 neo: non
        # image 1: two polyp-free frames (2 regions, then none), then a polyp drawn neo: no flip
        (1, [], [(0, 2, 0, 2, NEOPLASTIC), (5, 6, 15, 20, NON_NEOPLASTIC)]),
        (1, [], []),
        (1, [POLYP], [(1, 5, 1, 5, NEOPLASTIC)]),
        # image 2: a 1-pixel sliver of polyp (below 2 pixels): neither a polyp frame nor polyp-free
        (2, [(0, 1, 0, 1, NEOPLASTIC)], [(5, 6, 5, 6, NEOPLASTIC)]),
    ]
    scores = [score_frame(*_maps(t, d), segment=s) for s, t, d in frames]
    assert [s.hit for s in scores[:4]] == [True, True, False, True]
    assert [s.drawn_class for s in scores[:4]] == [NEOPLASTIC, NON_NEOPLASTIC, None, NON_NEOPLASTIC]
    assert scores[4].regions == 2
    m = video_metrics(scores, fps=2.0, min_true_pixels=2)
    assert (m["polyp_frames"], m["missed_frames"], m["missed_share"]) == (5, 1, pytest.approx(0.2))
    assert (m["polyp_free_frames"], m["fp_regions"], m["fp_frames"], m["fp_frame_share"]) == (2, 2, 1, 0.5)
    assert m["fp_regions_per_min"] == pytest.approx(2 / (2 / 2.0 / 60))  # 2 regions in 1 s: 120 per minute
    assert (m["class_flips"], m["polyp_seconds"]) == (1, pytest.approx(2.5))
    assert m["flips_per_polyp_second"] == pytest.approx(0.4)
    assert m["frames"] == 8 and m["tracks"] == 2


def test_alert_figures_count_alerted_polyp_views_and_false_alerts_on_polyp_free_stretches():
    from polypview.inference.training.videoeval import alert_metrics

    fps = 10.0  # the gate holds 0.3 s: 4 frames (0, 0.1, 0.2, 0.3 s)
    seen = [FrameScore(0, 4, True, 1, NEOPLASTIC)] * 6  # view 0: seen from its first frame -> alerted at 0.3 s
    late = [FrameScore(1, 4, False, 0, None)] * 3 + [FrameScore(1, 4, True, 1, NEOPLASTIC)] * 5  # from 0.3 s: 0.6 s
    never = [FrameScore(2, 4, False, 0, None)] * 8  # view 2: never drawn on the polyp
    beside = [FrameScore(3, 4, False, 1, None)] * 8  # view 3: drawn, but beside the polyp: not an alert for it
    blip = [FrameScore(4, 0, False, 1, None)] * 3 + [FrameScore(4, 0, False, 0, None)] * 7  # 0.3 s false: no alert
    held = [FrameScore(5, 0, False, 2, None)] * 5 + [FrameScore(5, 0, False, 0, None)] * 5  # 0.5 s false: one
    a = alert_metrics(seen + late + never + beside + blip + held, fps)
    assert (a["tracks"], a["tracks_alerted"]) == (4, 2)
    assert a["delay_s"] == pytest.approx((0.3 + 0.6) / 2)
    assert a["false_alerts"] == 1  # the two polyp-free views are one stretch; only the held region sounds
    assert a["false_alerts_per_min"] == pytest.approx(1 / (20 / fps / 60))
    assert alert_metrics(seen, fps)["false_alerts_per_min"] is None  # no polyp-free frame: no rate


def test_flips_are_counted_within_each_image_only():
    """The class changes from image 0 to image 1, but each track is constant: no flip."""
    neo = FrameScore(0, 4, True, 1, NEOPLASTIC)
    non = FrameScore(1, 4, True, 1, NON_NEOPLASTIC)
    m = video_metrics([neo, neo, non, non], fps=4.0)
    assert m["class_flips"] == 0 and m["flips_per_polyp_second"] == 0.0
    flicker = [FrameScore(0, 4, True, 1, c) for c in (NEOPLASTIC, NON_NEOPLASTIC, NEOPLASTIC, NEOPLASTIC)]
    assert video_metrics(flicker, fps=4.0)["flips_per_polyp_second"] == pytest.approx(2 / 1.0)


def test_video_run_sums_dice_over_frames_and_per_kind_of_view():
    from polypview.inference.training.videoeval import VideoRun

    run = VideoRun(fps=2.0)
    run.add(*_maps([POLYP], [(2, 4, 2, 4, NEOPLASTIC)]), segment=0, kind="framed")  # polyp TP 4
    run.add(*_maps([POLYP], [(2, 4, 2, 6, NEOPLASTIC)]), segment=0, kind="framed")  # TP 4, FP 4
    run.add(*_maps([], [(0, 1, 0, 4, NEOPLASTIC)]), segment=1, kind="away")  # FP 4, one false region
    summary = run.summary(min_true_pixels=1, resamples=100, seed=0)
    polyp = summary["micro"]["polyp"]
    assert (polyp["tp"], polyp["fp"], polyp["fn"]) == (8, 8, 0) and polyp["dice"] == pytest.approx(16 / 24)
    framed, away = summary["by_view"]["framed"], summary["by_view"]["away"]
    assert framed["micro"]["polyp"]["dice"] == pytest.approx(16 / 20) and framed["polyp_frames"] == 2
    # a view with no polyp to find has no Dice (its false region is counted as one, not as a Dice of 0)
    assert away["micro"]["polyp"]["dice"] is None and away["fp_regions_per_min"] == pytest.approx(120)
    assert framed["images"] == away["images"] == 1
    assert polyp["dice_ci95"][0] <= polyp["dice"] <= polyp["dice_ci95"][1]


def test_video_run_resamples_source_images_and_follows_flips_per_view():
    """Two views of one image (two clips) are two polyp tracks, but one unit of the bootstrap."""
    from polypview.inference.training.videoeval import VideoRun

    run = VideoRun(fps=2.0)
    run.add(*_maps([POLYP], [(2, 4, 2, 4, NEOPLASTIC)]), segment=0, kind="polyp", image=0)
    run.add(*_maps([POLYP], [(2, 4, 2, 4, NON_NEOPLASTIC)]), segment=1, kind="polyp", image=0)
    run.add(*_maps([POLYP], []), segment=2, kind="polyp", image=1)
    summary = run.summary(min_true_pixels=1, resamples=200, seed=0)
    assert summary["class_flips"] == 0 and summary["tracks"] == 3  # the class changed between views, not within
    lo, hi = summary["micro"]["polyp"]["dice_ci95"]
    assert lo == pytest.approx(0.0) and hi == pytest.approx(1.0)  # resampled: image 0 alone (1.0) or image 1 alone (0)
    assert run.images == [0, 0, 1]


def test_rate_intervals_resample_source_images_with_their_frames_and_tracks():
    """Image 0: 4 polyp frames, all missed; image 1: 4 found, 1 flip, and polyp-free frames with 2 regions.

    Each resample holds image 0 only, image 1 only or both, so the missed share's interval runs from
    0 (image 1 alone) to 1 (image 0 alone); the flips and false regions belong to image 1's frames."""
    from polypview.inference.training.videoeval import rate_units, video_intervals

    def video_intervals_of(scores, images, **kw):
        return video_intervals(rate_units(scores, images), **kw)

    missed = [FrameScore(0, 4, False, 0, None)] * 4
    found = [FrameScore(1, 4, True, 1, c) for c in (NEOPLASTIC, NEOPLASTIC, NON_NEOPLASTIC, NON_NEOPLASTIC)]
    free = [FrameScore(1, 0, False, 2, None), FrameScore(1, 0, False, 0, None)]
    scores = missed + found + free
    ci = video_intervals_of(scores, [0] * 4 + [1] * 6, fps=2.0, resamples=400, seed=0)
    assert ci["missed_share_ci95"] == pytest.approx([0.0, 1.0])
    assert ci["fp_regions_per_min_ci95"] == pytest.approx([120.0, 120.0])  # 2 regions in 1 s whenever image 1 is in
    lo, hi = ci["flips_per_polyp_second_ci95"]
    assert lo == pytest.approx(0.0) and hi == pytest.approx(1 / 2.0)  # image 0 alone: none; image 1 alone: 1 in 2 s
    m = video_metrics(scores, fps=2.0)
    assert lo <= m["flips_per_polyp_second"] <= hi and 0.0 <= m["missed_share"] <= 1.0
    # one image without a missed frame: every resample is that image
    only = video_intervals_of(found + free, [1] * 6, fps=2.0, resamples=50, seed=0)
    assert only["missed_share_ci95"] == [0.0, 0.0]
    none = video_intervals_of(scores, [0] * 4 + [1] * 6, fps=2.0, resamples=0)
    assert set(none.values()) == {None}
    no_free = video_intervals_of(missed, [0] * 4, fps=2.0, resamples=50)
    assert no_free["fp_regions_per_min_ci95"] is None and no_free["missed_share_ci95"] == [1.0, 1.0]


def test_video_run_summary_and_table_carry_the_rate_intervals():
    from types import SimpleNamespace

    from polypview.inference.training.videoeval import VideoRun, format_video_table

    run = VideoRun(fps=2.0)
    for image in range(6):
        truth = [POLYP]
        drawn = [] if image == 0 else [(2, 4, 2, 4, NEOPLASTIC)]
        for _ in range(3):
            run.add(*_maps(truth, drawn), segment=image, kind="polyp")
    summary = run.summary(min_true_pixels=1, resamples=500, seed=1)
    lo, hi = summary["missed_share_ci95"]
    assert lo == pytest.approx(0.0) and 1 / 6 < hi <= 0.5 and summary["missed_share"] == pytest.approx(1 / 6)
    assert summary["fp_regions_per_min_ci95"] is None  # no polyp-free frame
    video = {**summary, "images": 6, "frames": 18, "size": [32, 18], "score_size": [32, 18], "fps": 2.0,
             "seconds": 9.0, "seconds_per_image": [1.5, 1.5], "seed": 1, "views": {"polyp": 6}, "roi_images": 0,
             "overlay": {"threshold": 0.5, "min_area": 0.0}, "ms_per_frame": dict.fromkeys(
                 ("make", "predict", "draw", "score"), 1.0), "bootstrap": {"resamples": 500}}
    table = format_video_table([SimpleNamespace(video=video, architecture="m", path="m.onnx")])
    assert f"16.7 % [0.0-{100 * hi:.1f}] (3/18)" in table and "the rates' intervals" in table


def test_video_metrics_without_polyp_or_polyp_free_frames_say_none():
    only_polyp = video_metrics([FrameScore(0, 4, True, 1, NEOPLASTIC)], fps=30)
    assert only_polyp["fp_regions_per_min"] is None and only_polyp["missed_share"] == 0.0
    only_free = video_metrics([FrameScore(0, 0, False, 0, None)], fps=30)
    assert only_free["missed_share"] is None and only_free["flips_per_polyp_second"] is None
    assert only_free["fp_regions_per_min"] == 0.0


def test_the_class_as_shown_counts_polyps_drawn_in_a_class_and_whether_it_is_the_true_one():
    from polypview.inference.runtime.labels import UNDEFINED

    right = score_frame(*_maps([POLYP], [(2, 4, 2, 4, NEOPLASTIC)]))
    wrong = score_frame(*_maps([(2, 4, 2, 4, NON_NEOPLASTIC)], [(2, 4, 2, 4, NEOPLASTIC)]))
    unsure = score_frame(*_maps([POLYP], [(2, 4, 2, 4, UNDEFINED)]))  # drawn "class uncertain"
    missed = score_frame(*_maps([POLYP], []))
    assert (right.true_class, wrong.true_class, wrong.drawn_class) == (NEOPLASTIC, NON_NEOPLASTIC, NEOPLASTIC)
    assert unsure.hit and unsure.drawn_class is None
    m = video_metrics([right, wrong, unsure, missed, right], fps=30)
    assert m["class_shown_share"] == pytest.approx(3 / 4)  # 4 polyps drawn, 3 in a class
    assert m["class_right_share"] == pytest.approx(2 / 3) and m["class_judged_frames"] == 3
    assert video_metrics([missed], fps=30)["class_shown_share"] is None


def test_drawn_labels_say_a_polyp_drawn_class_uncertain_is_a_polyp_of_no_class():
    from polypview.inference.runtime.engine import Prediction
    from polypview.inference.runtime.labels import UNDEFINED
    from polypview.inference.runtime.temporal import TemporalSteps
    from polypview.overlay import OverlaySettings

    scores = np.zeros((48, 64), np.float32)
    labels = np.zeros((48, 64), np.uint8)
    probs = np.zeros((2, 48, 64), np.float32)
    scores[8:24, 8:30] = 0.95  # voted neoplastic, but 60 % of its class probability only
    probs[0, 8:24, 8:30], probs[1, 8:24, 8:30] = 0.57, 0.38
    scores[30:44, 40:60] = 0.95  # neoplastic and sure of it
    probs[0, 30:44, 40:60] = 0.95
    prediction = Prediction(scores, labels, probs=probs)
    settings = OverlaySettings(class_confidence=0.9)
    prediction = TemporalSteps(settings, 2)(prediction)  # where the class is decided, as in the app
    drawn = DrawnLabels(("neoplastic", "non-neoplastic"), settings)(prediction, (480, 640))
    assert set(np.unique(drawn[8 * 10 + 20:24 * 10 - 20, 8 * 10 + 20:30 * 10 - 20])) == {UNDEFINED}
    assert set(np.unique(drawn[30 * 10 + 20:44 * 10 - 20, 40 * 10 + 20:60 * 10 - 20])) == {NEOPLASTIC}


# ---------------------------------------------------------------- the drawn mask


def test_drawn_labels_are_what_the_overlay_draws():
    """Where the app's Overlay (its own colours, default settings) changes a grey frame, DrawnLabels
    says polyp, with the class whose colour was blended in; a region under min_area is not drawn."""
    from polypview.inference.runtime.engine import Prediction
    from polypview.inference.runtime.modelfile import NEOPLASTIC_RGB, NON_NEOPLASTIC_RGB
    from polypview.overlay import Overlay, OverlaySettings

    scores = np.zeros((48, 64), np.float32)
    labels = np.zeros((48, 64), np.uint8)
    scores[8:24, 8:30] = 0.9  # one region, mostly class 1, partly class 0: the vote makes it all class 1
    labels[8:24, 8:30] = 1
    labels[8:24, 8:12] = 0
    scores[30:44, 40:60] = 0.95  # another region of class 0
    scores[2, 60] = 0.9  # one pixel: below the default minimum area (0.0005 of 3072 = 1.5 px)
    prediction = Prediction(scores, labels, roi=(160, 20, 320, 240))
    frame = np.full((270, 480, 3), 128, np.uint8)
    roi = (160, 20, 320, 240)
    drawn = Overlay(("neoplastic", "non-neoplastic"), (NEOPLASTIC_RGB, NON_NEOPLASTIC_RGB)).draw(
        frame, prediction, OverlaySettings(legend=False), roi)
    changed = (drawn != frame).any(axis=2)
    ours = DrawnLabels(("neoplastic", "non-neoplastic"))(prediction, frame.shape, roi)
    assert changed.sum() > 1000
    assert np.array_equal(changed, ours != BACKGROUND)
    assert set(np.unique(ours[changed])) == {NEOPLASTIC, NON_NEOPLASTIC}
    top = ours[20 + 8 * 5:20 + 24 * 5, 160 + 8 * 5:160 + 30 * 5]  # the voted region, in frame pixels
    assert (top[top != BACKGROUND] == NON_NEOPLASTIC).all()
    assert ours[20 + 2 * 5 + 2, 160 + 60 * 5 + 2] == BACKGROUND  # the one-pixel speck
    half = DrawnLabels(("neoplastic", "non-neoplastic"))(prediction, frame.shape, roi, size=(240, 135))
    assert half.shape == (135, 240) and np.array_equal(half, ours[::2, ::2])


def test_drawn_labels_of_a_binary_model_are_polyp_of_no_class():
    from polypview.inference.runtime.engine import Prediction
    from polypview.inference.runtime.labels import UNDEFINED

    scores = np.zeros((16, 16), np.float32)
    scores[4:12, 4:12] = 1.0
    ours = DrawnLabels(("polyp",))(Prediction(scores, np.zeros((16, 16), np.uint8)), (32, 32, 3))
    assert set(np.unique(ours)) == {BACKGROUND, UNDEFINED}
    assert score_frame(ours, ours).drawn_class is None


# ---------------------------------------------------------------- end to end


def test_eval_video_end_to_end_writes_json_and_prints_the_table(tmp_path, capsys):
    """The colour model sees exactly the painted polyps: near-perfect Dice and no missed frame;
    the clip at 1920x1080 goes through the engine, the ROI detection and the overlay."""
    data = _make_dataset(tmp_path / "data", count=6)
    model = make_color_model(tmp_path / "color.onnx", input_size=(64, 64))
    out = tmp_path / "eval.json"
    code = main(["eval", str(model), "--data", str(data), "--split", "all", "--json", str(out), "--no-fps",
                 "--no-progress", "--threads", "1", "--video", "--video-fps", "8", "--bootstrap", "200"])
    assert code == 0
    video = json.loads(out.read_text())["results"][0]["video"]
    assert video["images"] == 6 and video["fps"] == 8 and video["size"] == [1920, 1080]
    assert sum(video["views"].values()) == 6
    assert 6 * 4 <= video["frames"] <= 6 * 8
    assert video["micro"]["polyp"]["dice"] > 0.85
    lo, hi = video["micro"]["polyp"]["dice_ci95"]
    assert lo <= video["micro"]["polyp"]["dice"] <= hi
    assert video["missed_frames"] == 0 and video["polyp_frames"] > 0
    assert video["fp_regions"] == 0 and video["class_flips"] == 0
    assert video["roi_images"] == video["views"]["framed"]  # a black frame is found, a full view is not
    assert set(video["by_view"]) <= set(KINDS)
    assert sum(part["frames"] for part in video["by_view"].values()) == video["frames"]
    table = capsys.readouterr().out
    assert "Missed frames" in table and "FP regions/min" in table and "Class flips/polyp-s" in table
    alerts = video["alerts"]
    assert alerts["tracks"] > 0 and alerts["false_alerts"] == 0 and alerts["hold_s"] == 0.3
    assert f"alert tone (a polyp drawn 0.3 s, gaps under 0.15 s bridged) on {alerts['tracks_alerted']} of" in table
    assert "test-color" in table.split("Video, as a tower")[1]


def test_video_evaluation_of_a_model_file_needs_no_torch(tmp_path):
    """The clip, the engine, the overlay and the metrics run without importing torch."""
    import subprocess
    import sys

    data = _make_dataset(tmp_path / "data", count=2)
    model = make_color_model(tmp_path / "color.onnx", input_size=(64, 64))
    code = (
        "import sys\n"
        "from polypview.inference.training.data import folder_pairs\n"
        "from polypview.inference.training.towerclip import VideoOptions\n"
        "from polypview.inference.training.videoeval import evaluate_video\n"
        f"v = evaluate_video({str(model)!r}, folder_pairs({str(data)!r}), VideoOptions(fps=4), threads=1, resamples=50)\n"
        "print(v['frames'] > 0, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def _small_video_eval(tmp_path):
    """(eval arguments, JSON path) for a 2-image clip at 4 fps with a colour model."""
    data = _make_dataset(tmp_path / "data", count=2)
    model = make_color_model(tmp_path / "color.onnx", input_size=(64, 64))
    args = ["eval", str(model), "--data", str(data), "--split", "all", "--no-fps", "--no-progress", "--threads", "1",
            "--video", "--video-fps", "4", "--bootstrap", "20"]
    return args, tmp_path / "eval.json"


def test_eval_video_threshold_is_the_overlay_threshold_it_draws_with(tmp_path, capsys):
    args, out = _small_video_eval(tmp_path)
    assert main([*args, "--json", str(out), "--video-threshold", "0.9"]) == 0
    assert json.loads(out.read_text())["results"][0]["video"]["overlay"]["threshold"] == 0.9
    assert "overlay: threshold 0.9," in capsys.readouterr().out
    for bad in ("2", "x"):
        assert main([*args, "--video-threshold", bad]) == 2
        assert "threshold" in capsys.readouterr().err


def test_eval_video_smoothing_averages_scores_as_the_viewer_does(tmp_path, capsys, monkeypatch):
    from polypview.inference.runtime import engine as engine_module

    made = []

    class Spy(engine_module.TemporalSmoother):
        def __init__(self, n):
            super().__init__(n)
            self.calls = 0
            made.append(self)

        def __call__(self, p):
            self.calls += 1
            return super().__call__(p)

    monkeypatch.setattr(engine_module, "TemporalSmoother", Spy)
    args, out = _small_video_eval(tmp_path)
    assert main([*args, "--json", str(out), "--video-smoothing", "3"]) == 0
    video = json.loads(out.read_text())["results"][0]["video"]
    assert video["overlay"]["smoothing"] == 3
    assert [s.n for s in made] == [3] and made[0].calls == video["frames"]
    assert "scores averaged over the last 3 frames" in capsys.readouterr().out
    for bad in ("-1", "x"):
        assert main([*args, "--video-smoothing", bad]) == 2
        assert "--video-smoothing" in capsys.readouterr().err


def test_eval_video_min_peak_and_class_memory_are_recorded_and_checked(tmp_path, capsys):
    args, out = _small_video_eval(tmp_path)
    assert main([*args, "--json", str(out), "--video-min-peak", "0.8", "--video-class-memory", "0.5",
                 "--video-class-confidence", "0.9"]) == 0
    video = json.loads(out.read_text())["results"][0]["video"]
    overlay = video["overlay"]
    assert (overlay["min_peak"], overlay["class_memory"], overlay["class_confidence"]) == (0.8, 0.5, 0.9)
    text = capsys.readouterr().out
    assert ("regions peaking >= 0.8, one class per region, class memory 0.5, class uncertain below 0.9 of the "
            "class probability") in text
    assert f"the class as shown: on {100 * video['class_shown_share']:.1f} % of the polyp frames" in text
    for flag, bad in (("--video-min-peak", "1.5"), ("--video-min-peak", "x"), ("--video-min-peak", "nan"),
                      ("--video-class-memory", "1"), ("--video-class-memory", "-0.1"),
                      ("--video-class-confidence", "2")):
        assert main([*args, flag, bad]) == 2
        assert flag in capsys.readouterr().err


def test_eval_video_draws_with_the_model_files_own_region_peak_unless_told(tmp_path, capsys):
    args, out = _small_video_eval(tmp_path)
    make_color_model(tmp_path / "color.onnx", input_size=(64, 64), overlay={"min_peak": 0.8})  # the same model
    assert main([*args, "--json", str(out)]) == 0
    video = json.loads(out.read_text())["results"][0]["video"]
    assert video["overlay"]["min_peak"] == 0.8 and video["model_overlay"] == {"min_peak": 0.8}
    assert "regions peaking >= 0.8" in capsys.readouterr().out
    assert main([*args, "--json", str(out), "--video-min-peak", "0.95"]) == 0  # the option wins
    assert json.loads(out.read_text())["results"][0]["video"]["overlay"]["min_peak"] == 0.95


def test_eval_video_table_says_which_model_drew_with_which_region_peak(tmp_path, capsys):
    args, out = _small_video_eval(tmp_path)
    peaked = make_color_model(tmp_path / "peaked.onnx", input_size=(64, 64), overlay={"min_peak": 0.8})
    assert main([*args[:2], str(peaked), *args[2:]]) == 0
    text = capsys.readouterr().out
    assert "each model with its file's own drawing defaults" in text
    assert "(peaked.onnx): threshold 0.5, min area 0.0005, regions peaking >= 0.8" in text
    assert "(color.onnx): threshold 0.5, min area 0.0005, regions peaking >= 0.9" in text
    assert main(args) == 0  # one model: one overlay, said once
    assert "(overlay: threshold 0.5" in capsys.readouterr().out


def test_eval_video_clips_pool_more_views_of_the_same_images(tmp_path, capsys):
    args, out = _small_video_eval(tmp_path)
    assert main([*args, "--json", str(out)]) == 0
    one = json.loads(out.read_text())["results"][0]["video"]
    assert main([*args, "--json", str(out), "--video-clips", "3"]) == 0
    three = json.loads(out.read_text())["results"][0]["video"]
    assert one["clips"] == 1 and three["clips"] == 3 and three["images"] == one["images"] == 2
    assert sum(three["views"].values()) == 6 and three["frames"] > one["frames"]
    assert three["polyp_frames"] + three["polyp_free_frames"] <= three["frames"]
    table = capsys.readouterr().out.split("Video, as a tower")[-1]
    assert "3 clips one after another (seeds 0-2)" in table and "views)" in table
    capsys.readouterr()
    assert main([*args, "--video-clips", "0"]) == 2
    assert "--video-clips must be at least 1" in capsys.readouterr().err


def test_the_peak_sweep_tool_scores_each_peak_as_eval_video_does(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("peak_sweep", Path(__file__).parents[1] / "tools" / "peak_sweep.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args, out = _small_video_eval(tmp_path)
    data, model = tmp_path / "data", tmp_path / "color.onnx"
    assert tool.main([str(model), "--data", str(data), "--split", "all", "--peaks", "0,0.99", "--fps", "4",
                      "--json", str(tmp_path / "sweep.json"), "--by-view", "--bootstrap", "20"]) == 0
    swept = json.loads((tmp_path / "sweep.json").read_text())["peaks"]
    printed = capsys.readouterr().out
    assert "0.99" in printed and printed.count("missed by view: ") == 2
    for peak in ("0", "0.99"):
        assert main([*args, "--json", str(out), "--video-min-peak", peak]) == 0
        video = json.loads(out.read_text())["results"][0]["video"]
        mine = swept[str(float(peak))]
        assert mine["dice"] == {c: v["dice"] for c, v in video["micro"].items()}
        assert (mine["missed_frames"], mine["fp_regions"], mine["class_flips"]) == (
            video["missed_frames"], video["fp_regions"], video["class_flips"])
        assert mine["missed_share_ci95"] == video["missed_share_ci95"] is not None  # same resamples as eval's
        assert mine["by_view"] and {view: (v["missed_frames"], v["polyp_frames"]) for view, v in mine["by_view"].items()} == {
            view: (v["missed_frames"], v["polyp_frames"]) for view, v in video["by_view"].items()}
    assert tool.main([str(model), "--data", str(data), "--split", "all", "--peaks", "0.99", "--fps", "4",
                      "--clips", "2", "--json", str(tmp_path / "sweep2.json"), "--bootstrap", "0"]) == 0
    assert main([*args, "--json", str(out), "--video-min-peak", "0.99", "--video-clips", "2"]) == 0
    two = json.loads((tmp_path / "sweep2.json").read_text())["peaks"]["0.99"]
    assert two["missed_share_ci95"] is None  # --bootstrap 0: no interval
    video = json.loads(out.read_text())["results"][0]["video"]
    assert (two["missed_frames"], two["fp_regions"], two["polyp_frames"]) == (
        video["missed_frames"], video["fp_regions"], video["polyp_frames"])
    assert two["polyp_frames"] > mine["polyp_frames"]
    assert "chosen by the rule: " in capsys.readouterr().out
    assert tool.main([str(model), "--data", str(data), "--split", "all", "--peaks", "1.5"]) == 2
    assert tool.main([str(model), "--data", str(data), "--split", "all", "--peaks", "x"]) == 2


def test_two_sweeps_compare_paired_as_eval_compares_the_same_two_models(tmp_path, capsys):
    """`--paired A.json:P B.json:P` gives the differences `eval A B --video --video-min-peak P` prints."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("peak_sweep", Path(__file__).parents[1] / "tools" / "peak_sweep.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    data = _make_dataset(tmp_path / "data", count=4)
    fine = make_color_model(tmp_path / "fine.onnx", input_size=(64, 64))
    coarse = make_color_model(tmp_path / "coarse.onnx", input_size=(16, 16))
    common = ["--data", str(data), "--split", "all", "--peaks", "0,0.6", "--fps", "4", "--bootstrap", "0"]
    assert tool.main([str(fine), *common, "--json", str(tmp_path / "a.json")]) == 0
    assert tool.main([str(coarse), *common, "--json", str(tmp_path / "b.json")]) == 0
    capsys.readouterr()
    assert tool.main(["--paired", f"{tmp_path / 'a.json'}:0.6", f"{tmp_path / 'b.json'}:0.6", "--bootstrap", "300"]) == 0
    text = capsys.readouterr().out
    out = tmp_path / "e.json"
    assert main(["eval", str(fine), str(coarse), "--data", str(data), "--split", "all", "--no-fps", "--no-progress",
                 "--threads", "1", "--video", "--video-fps", "4", "--video-min-peak", "0.6", "--bootstrap", "300",
                 "--json", str(out)]) == 0
    paired = json.loads(out.read_text())["results"][1]["paired"]["video"]
    row = text.strip().splitlines()[-1]
    assert paired["polyp"]["diff"] < 0 and paired["polyp"]["ci95"][0] < paired["polyp"]["ci95"][1]  # a real difference
    assert row.startswith("b at 0.6") and "a at 0.6" in text and "Polyp Dice" not in text.split("tower clip")[0]
    for key, scale, fmt in (("polyp", 100, ".1f"), ("missed_share", 100, ".1f"), ("fp_regions_per_min", 1, ".0f")):
        d = paired[key]
        assert f"{scale * d['diff']:+{fmt}} [{scale * d['ci95'][0]:+{fmt}} to {scale * d['ci95'][1]:+{fmt}}]" in row
    capsys.readouterr()
    assert tool.main(["--paired", f"{tmp_path / 'a.json'}:0.7", f"{tmp_path / 'b.json'}:0.6"]) == 2  # not swept
    assert "--paired needs SWEEP.json:PEAK" in capsys.readouterr().err
    assert tool.main([str(coarse), *common[:-2], "--fps", "8", "--json", str(tmp_path / "c.json")]) == 0
    capsys.readouterr()
    assert tool.main(["--paired", f"{tmp_path / 'a.json'}:0.6", f"{tmp_path / 'c.json'}:0.6"]) == 2
    assert "must play the same clip" in capsys.readouterr().err


def test_the_peak_rule_takes_the_fewest_false_regions_within_the_missed_bound_else_the_smallest_sum():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("peak_sweep", Path(__file__).parents[1] / "tools" / "peak_sweep.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    def r(missed, fp, fp_frames):
        return {"missed_share": missed, "fp_regions_per_min": fp, "fp_frame_share": fp_frames}

    results = {0.0: r(0.01, 600, 0.3), 0.9: r(0.02, 250, 0.14), 0.95: r(0.031, 190, 0.10), 0.98: r(0.053, 105, 0.06)}
    assert tool.choose_peak(results)[0] == 0.95  # 0.98 has fewer false regions but misses more than 4 %
    assert tool.choose_peak(results, max_missed=0.06)[0] == 0.98
    weak = {0.9: r(0.16, 444, 0.21), 0.95: r(0.21, 250, 0.12), 0.98: r(0.39, 59, 0.03)}
    peak, why = tool.choose_peak(weak)
    assert peak == 0.95 and "smallest sum" in why  # 0.33 against 0.37 and 0.42
    assert tool.choose_peak({0.9: r(0.0, None, None), 0.95: r(0.0, None, None)})[0] == 0.95  # no polyp-free frames
    # the later rule: within a false-region budget, the fewest misses
    assert tool.fewest_misses_within(results, 190) == 0.95 and tool.fewest_misses_within(results, 300) == 0.9
    assert tool.fewest_misses_within(results, 100) is None
