"""Paired comparison of two models on the same images (`polypview eval A B`): differences and their intervals."""

import json

import numpy as np
import pytest

from polypview.cli import main
from polypview.inference.training.metrics import METRIC_CLASSES, bootstrap_intervals
from polypview.inference.training.paired import Units, format_paired, paired_differences


def _counts(tp, fp, fn):
    """(images, classes, 3) with the same counts for every class."""
    per = np.stack([tp, fp, fn], axis=-1).astype(np.int64)
    return np.repeat(per[:, None, :], len(METRIC_CLASSES), axis=1)


def test_a_model_against_itself_differs_by_exactly_nothing():
    units = Units(_counts([50, 10, 80], [5, 9, 1], [7, 30, 2]))
    d = paired_differences(units, units, resamples=300, seed=0)
    assert set(d) == {"images"}  # no clip, no clip comparison
    for name in METRIC_CLASSES:
        assert d["images"][name] == {"diff": 0.0, "ci95": [0.0, 0.0]}


def test_pairing_separates_a_small_steady_gain_that_separate_intervals_cannot():
    """Twenty images of very unequal difficulty; B finds 4 more polyp pixels than A on every one of them.

    Each model's own interval is wide (the images differ), and the two overlap; the paired interval of the
    difference is narrow and above 0, because every resample holds the same images for both."""
    rng = np.random.default_rng(3)
    truth = rng.integers(50, 400, 20)
    tp_a = (truth * rng.uniform(0.3, 0.95, 20)).astype(int)
    tp_b = np.minimum(tp_a + 4, truth)
    fp = rng.integers(0, 40, 20)
    a, b = _counts(tp_a, fp, truth - tp_a), _counts(tp_b, fp, truth - tp_b)
    d = paired_differences(Units(a), Units(b), resamples=2000, seed=0)["images"]["polyp"]
    dice = [2 * x.sum() / (2 * x.sum() + fp.sum() + (truth - x).sum()) for x in (tp_a, tp_b)]
    assert d["diff"] == pytest.approx(dice[1] - dice[0])
    assert 0.0 < d["ci95"][0] < d["diff"] < d["ci95"][1]
    ci_a, ci_b = bootstrap_intervals(a, 2000, 0)["polyp"], bootstrap_intervals(b, 2000, 0)["polyp"]
    assert ci_b[0] < ci_a[1]  # separately, the two intervals overlap
    assert d["ci95"][1] - d["ci95"][0] < 0.25 * (ci_a[1] - ci_a[0])


def test_clip_rates_are_paired_by_source_image():
    """Three source images of 10 polyp frames and 30 polyp-free frames each (at 30 fps: 3 s polyp-free in all);
    B misses 2 more frames of image 1 and draws one more false region on image 2: +20 regions a minute."""
    dice = _counts([100, 100, 100], [0, 0, 0], [0, 0, 0])
    #                      polyp frames, missed, polyp-free frames, false regions, flips
    rates_a = np.array([[10, 0, 30, 0, 0], [10, 1, 30, 0, 1], [10, 0, 30, 2, 0]])
    rates_b = np.array([[10, 0, 30, 0, 0], [10, 3, 30, 0, 1], [10, 0, 30, 3, 0]])
    a = Units(dice, dice, rates_a, fps=30.0)
    b = Units(dice, dice, rates_b, fps=30.0)
    v = paired_differences(a, b, resamples=500, seed=1)["video"]
    assert v["missed_share"]["diff"] == pytest.approx(3 / 30 - 1 / 30)
    assert v["fp_regions_per_min"]["diff"] == pytest.approx(3 / 3 * 60 - 2 / 3 * 60)  # 90 s of frames: 3 s
    assert v["flips_per_polyp_second"]["diff"] == pytest.approx(0.0)
    lo, hi = v["missed_share"]["ci95"]
    assert lo == pytest.approx(0.0) and hi == pytest.approx(2 / 10)  # image 1 drawn never, or every time
    assert v["polyp"] == {"diff": 0.0, "ci95": [0.0, 0.0]}
    other_fps = paired_differences(a, Units(dice, dice, rates_b, fps=25.0), resamples=10)
    assert "video" not in other_fps  # not the same clip: not paired
    text = format_paired(["A", "B"], [paired_differences(a, b, resamples=500, seed=1)], 3, 500)
    assert "Paired with A" in text and "+6.7 [+0.0 to +20.0]" in text and "+20 [" in text


def test_eval_of_two_models_prints_and_writes_their_paired_differences(tmp_path, capsys):
    """Two colour models, one at a quarter of the other's resolution: the paired differences equal the
    differences of the two rows of the same run, for the still images and for the clip."""
    from test_videoeval import _make_dataset

    from onnx_models import make_color_model

    data = _make_dataset(tmp_path / "data", count=6)
    fine = make_color_model(tmp_path / "fine.onnx", input_size=(64, 64))
    coarse = make_color_model(tmp_path / "coarse.onnx", input_size=(16, 16))
    out = tmp_path / "eval.json"
    assert main(["eval", str(fine), str(coarse), "--data", str(data), "--split", "all", "--json", str(out),
                 "--no-fps", "--no-progress", "--threads", "1", "--video", "--video-fps", "8",
                 "--bootstrap", "200"]) == 0
    first, second = json.loads(out.read_text())["results"]
    assert first["paired"] is None and "units" not in first and "units" not in second
    paired = second["paired"]
    for name in METRIC_CLASSES:
        want = second["micro"][name]["dice"] - first["micro"][name]["dice"]
        assert paired["images"][name]["diff"] == pytest.approx(want)
        lo, hi = paired["images"][name]["ci95"]
        assert lo <= paired["images"][name]["diff"] <= hi
    want = second["video"]["micro"]["polyp"]["dice"] - first["video"]["micro"]["polyp"]["dice"]
    assert paired["video"]["polyp"]["diff"] == pytest.approx(want)
    assert paired["images"]["polyp"]["diff"] < 0  # the coarse model outlines worse
    assert paired["video"]["missed_share"]["diff"] == pytest.approx(
        second["video"]["missed_share"] - first["video"]["missed_share"])
    text = capsys.readouterr().out
    assert "Paired with" in text and "The tower clip as drawn, paired" in text
    assert f"{100 * paired['images']['polyp']['diff']:+.1f} [" in text.split("Paired with")[1]


def test_eval_of_one_model_prints_no_comparison(tmp_path, capsys):
    from test_videoeval import _make_dataset

    from onnx_models import make_color_model

    data = _make_dataset(tmp_path / "data", count=3)
    model = make_color_model(tmp_path / "m.onnx", input_size=(32, 32))
    assert main(["eval", str(model), "--data", str(data), "--split", "all", "--no-fps", "--no-progress"]) == 0
    assert "Paired with" not in capsys.readouterr().out
