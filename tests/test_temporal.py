"""ClassMemory and TemporalSteps: a polyp's class kept steady over frames, its mask never changed."""

import numpy as np
import pytest

from polypview.inference.runtime.engine import Prediction
from polypview.inference.runtime.temporal import ClassMemory, TemporalSteps
from polypview.overlay import OverlaySettings

BACKGROUND = 2


def _prediction(regions, shape=(20, 30), roi=None):
    """regions: [(y0, y1, x0, x1, share of non-neoplastic columns)] -> scores 0.95 inside, labels split by columns."""
    scores = np.zeros(shape, np.float32)
    labels = np.full(shape, BACKGROUND, np.uint8)
    for y0, y1, x0, x1, non in regions:
        scores[y0:y1, x0:x1] = 0.95
        labels[y0:y1, x0:x1] = 0
        cut = x0 + round((x1 - x0) * non)
        labels[y0:y1, x0:cut] = 1
    return Prediction(scores, labels, roi=roi)


def _classes(p, y0, y1, x0, x1):
    return set(np.unique(p.labels[y0:y1, x0:x1]).tolist())


def test_a_region_keeps_its_class_until_the_new_one_wins_over_its_past():
    memory = ClassMemory(0.5, threshold=0.5)
    first = memory(_prediction([(2, 12, 2, 12, 0.0)]))  # all neoplastic
    assert _classes(first, 2, 12, 2, 12) == {0}
    second = memory(_prediction([(3, 13, 3, 13, 0.6)]))  # 60 % green now: 0.5 * 0.6 + 0.5 * 0 < 0.5
    assert _classes(second, 3, 13, 3, 13) == {0}
    third = memory(_prediction([(3, 13, 3, 13, 1.0)]))  # all green: 0.5 * 1 + 0.5 * 0.3 > 0.5
    assert _classes(third, 3, 13, 3, 13) == {1}
    assert np.array_equal(third.scores, _prediction([(3, 13, 3, 13, 1.0)]).scores)  # the mask is untouched


def test_without_memory_or_overlap_each_frame_speaks_for_itself():
    assert _classes(ClassMemory(0.0, 0.5)(_prediction([(2, 12, 2, 12, 0.6)])), 2, 12, 2, 12) == {1}
    memory = ClassMemory(0.9, threshold=0.5)
    memory(_prediction([(2, 8, 2, 8, 0.0)]))
    moved = memory(_prediction([(10, 18, 20, 28, 1.0)]))  # a new polyp elsewhere: its own class
    assert _classes(moved, 10, 18, 20, 28) == {1}
    memory(_prediction([(2, 8, 2, 8, 0.0)], roi=(0, 0, 30, 20)))
    other_area = memory(_prediction([(2, 8, 2, 8, 1.0)], roi=(5, 0, 25, 20)))  # another image area
    assert _classes(other_area, 2, 8, 2, 8) == {1}
    memory.reset()
    assert _classes(memory(_prediction([(2, 8, 2, 8, 1.0)])), 2, 8, 2, 8) == {1}


def test_a_region_takes_the_blend_of_the_regions_it_overlaps():
    memory = ClassMemory(0.5, threshold=0.5)
    memory(_prediction([(2, 10, 2, 8, 0.0), (2, 10, 12, 28, 1.0)]))  # red left (48 px), green right (128 px)
    merged = memory(_prediction([(2, 10, 2, 28, 0.5)]))  # one region over both, half green now
    # past share of green = 128 / 176 overlap-weighted = 0.73; blended 0.5 * 0.5 + 0.5 * 0.73 > 0.5
    assert _classes(merged, 2, 10, 2, 28) == {1}


def test_memory_is_checked():
    with pytest.raises(ValueError):
        ClassMemory(1.0, 0.5)
    from polypview.errors import ConfigError

    with pytest.raises(ConfigError):
        OverlaySettings(class_memory=1.0)


def test_temporal_steps_follow_the_overlay_settings():
    assert TemporalSteps(OverlaySettings(class_memory=0), 2).steps == []
    assert OverlaySettings().class_memory == 0.5  # the default, chosen on the validation tower clip
    steps = TemporalSteps(OverlaySettings(smoothing=3, class_memory=0.5), 2).steps
    assert [type(s).__name__ for s in steps] == ["TemporalSmoother", "ClassMemory"]
    per_pixel = OverlaySettings(class_memory=0.5, one_class_per_region=False)
    assert TemporalSteps(per_pixel, 2).steps == []  # each pixel shows its own class: nothing to keep
    assert TemporalSteps.key(OverlaySettings()) != TemporalSteps.key(OverlaySettings(class_memory=0.3))


def test_the_pipeline_state_applies_and_forgets_the_memory():
    from polypview.stages import ModelState

    class Info:
        classes = ("neoplastic", "non-neoplastic")
        colors = ((255, 0, 0), (0, 255, 0))

    class FakeEngine:
        info = Info()

    state = ModelState(FakeEngine(), find_roi=False)
    state.set_overlay(OverlaySettings(class_memory=0.5))
    state.smooth(_prediction([(2, 12, 2, 12, 0.0)]))
    assert _classes(state.smooth(_prediction([(2, 12, 2, 12, 0.6)])), 2, 12, 2, 12) == {0}  # remembered
    with state.lock:
        state.new_epoch()  # a seek: the past is gone
    assert _classes(state.smooth(_prediction([(2, 12, 2, 12, 0.6)])), 2, 12, 2, 12) == {1}
    state.set_overlay(OverlaySettings(class_memory=0))  # memory off: the labels pass through as the model gave them
    p = _prediction([(2, 12, 2, 12, 0.6)])
    assert state.smooth(p) is p


def test_class_uncertain_is_decided_on_the_remembered_probability_share():
    def frame(neo_share):
        scores = np.zeros((20, 20), np.float32)
        scores[5:15, 5:15] = 0.95
        probs = np.zeros((2, 20, 20), np.float32)
        probs[0][scores > 0] = 0.95 * neo_share
        probs[1][scores > 0] = 0.95 * (1 - neo_share)
        return Prediction(scores, np.zeros((20, 20), np.uint8), probs=probs)

    def unsure(step, shares):
        return [bool((step(frame(s)).labels[5:15, 5:15] == 2).all()) for s in shares]

    shares = (0.95, 0.87, 0.95, 0.6, 0.6)
    # alone, the 0.87 frame drops under 0.9; remembered (0.91) it does not; a share that falls far (0.6) is under
    # 0.9 even remembered (0.77)
    assert unsure(ClassMemory(0.0, 0.5, 2, confidence=0.9), shares) == [False, True, False, True, True]
    assert unsure(ClassMemory(0.5, 0.5, 2, confidence=0.9), shares) == [False, False, False, True, True]
    assert unsure(ClassMemory(0.5, 0.5, 2), shares) == [False] * 5  # no confidence asked: never
