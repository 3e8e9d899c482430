"""The appearance gate: one alert per polyp appearance, none for a blip."""

import pytest

from polypview.alerts import AlertGate, AlertTiming, appearances
from polypview.errors import ConfigError

FPS = 30.0


def frames(pattern: str, start: float = 0.0, fps: float = FPS):
    """'#' a frame with a polyp drawn, '.' one without, one character per frame from `start` s."""
    return [(start + i / fps, c == "#") for i, c in enumerate(pattern)]


def test_a_polyp_held_is_announced_once_after_the_hold():
    # 0.3 s hold at 30 fps: the 10th drawn frame (t = 9/30 = 0.3 s after the first) is the first at >= 0.3 s
    times = appearances(frames("." * 30 + "#" * 90))
    assert times == [pytest.approx(1.0 + 9 / FPS)]


def test_a_blip_shorter_than_the_hold_is_never_announced():
    assert appearances(frames(("#" * 8 + "." * 30) * 5)) == []


def test_one_or_two_missed_frames_do_not_restart_the_hold_but_a_longer_gap_does():
    # 6 drawn, 2 missed (0.067 s < 0.15 s), 6 drawn: the run counts from the first frame -> announced
    assert appearances(frames("#" * 6 + ".." + "#" * 6)) == [pytest.approx(9 / FPS)]
    # 6 drawn, 6 missed (0.2 s > 0.15 s), 6 drawn: two runs of 0.17 s each -> nothing
    assert appearances(frames("#" * 6 + "." * 6 + "#" * 6)) == []


def test_a_polyp_that_drops_out_briefly_is_not_announced_again():
    # drawn 1 s, nothing for 1 s (< quiet 2 s), drawn again 1 s: one appearance
    assert len(appearances(frames("#" * 30 + "." * 30 + "#" * 30))) == 1


def test_after_a_quiet_stretch_the_next_polyp_is_announced_again():
    times = appearances(frames("#" * 30 + "." * 61 + "#" * 30))  # 61 frames: 2.03 s quiet
    assert len(times) == 2
    assert times[1] == pytest.approx((30 + 61 + 9) / FPS)


def test_a_seek_backwards_or_a_jump_starts_afresh():
    gate = AlertGate()
    assert [gate.update(t, d) for t, d in frames("#" * 15)].count(True) == 1
    # seek back to 0 s with the polyp still on screen: a new appearance
    assert [gate.update(t, d) for t, d in frames("#" * 15)].count(True) == 1
    # a jump forward of more than the quiet time (a seek, a new file): the same again
    assert [gate.update(t, d) for t, d in frames("#" * 15, start=100.0)].count(True) == 1


def test_frames_not_fed_between_two_drawn_frames_count_as_a_gap():
    gate = AlertGate()
    assert not gate.update(0.0, True)
    assert not gate.update(0.5, True)  # 0.5 s since the last drawn frame, nothing fed between: a new run
    assert not gate.update(0.6, True)
    assert not gate.update(0.7, True)
    assert gate.update(0.8, True)  # 0.3 s into the run that began at 0.5 s


def test_the_times_are_the_users_and_are_checked():
    assert appearances(frames("#" * 4), AlertTiming(hold_s=0.1)) == [pytest.approx(3 / FPS)]
    assert appearances(frames("#"), AlertTiming(hold_s=0.0)) == [0.0]
    with pytest.raises(ConfigError, match="alert times"):
        AlertTiming(quiet_s=0.0)
    with pytest.raises(ConfigError, match="alert times"):
        AlertTiming(hold_s=-1.0)

