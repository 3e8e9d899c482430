"""`polypview batch` without Ray: inputs, one video's outputs, bad options (test_batch_ray.py: the driver).

The colour model (tests/onnx_models.py) marks red pixels neoplastic and green ones non-neoplastic,
so each clip's table can be checked against the boxes painted into its frames.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from polypview.batch import collect_inputs
from polypview.batchjob import BatchSettings, VideoJob, file_sha256, is_done, output_names, process_video, timeline_image
from polypview.cli import main
from polypview.errors import ConfigError, InputError
from polypview.overlay import OverlaySettings

from clips import GREEN_FROM, count_frames, make_box_clip
from onnx_models import make_color_model


@pytest.fixture(scope="module")
def color_model(tmp_path_factory) -> Path:
    return make_color_model(tmp_path_factory.mktemp("model") / "color.onnx")


@pytest.fixture(scope="module")
def settings(color_model) -> BatchSettings:
    return BatchSettings("color", file_sha256(color_model), asdict(OverlaySettings()))


@pytest.fixture(scope="module")
def engine(color_model):
    from polypview.inference.runtime.engine import load_engine

    with load_engine(color_model, threads=1) as e:
        yield e


# ------------------------------------------------------------------------------------ inputs


def test_inputs_from_files_folders_and_lists(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    one = make_box_clip(tmp_path / "a" / "one.mp4", frames=2)
    two = make_box_clip(tmp_path / "a" / "deep" / "two.MKV", frames=2)
    (tmp_path / "a" / "notes.txt").write_text("not a video list entry")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# archive\n\na/deep/two.MKV\n{one}\nmissing.mp4\n")
    assert collect_inputs([str(tmp_path / "a")]) == [two.resolve(), one.resolve()]
    # duplicates go, order stays; a listed path that does not exist stays (it fails as a video)
    assert collect_inputs([str(one), str(listing)]) == [one.resolve(), two.resolve(), (tmp_path / "missing.mp4").resolve()]
    with pytest.raises(ConfigError, match="does not exist"):
        collect_inputs([str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no video files"):
        collect_inputs([str(tmp_path / "empty")])


def test_an_out_folder_inside_an_input_folder_is_not_searched(tmp_path):
    archive = tmp_path / "archive"
    (archive / "annotated").mkdir(parents=True)
    case = archive / "case.mp4"
    case.write_bytes(b"x")
    (archive / "annotated" / "case.mp4").write_bytes(b"x")  # the last run's output
    assert collect_inputs([str(archive)], skip=archive / "annotated") == [case.resolve()]
    assert len(collect_inputs([str(archive)])) == 2  # without it, the output would be annotated again


def test_output_names_are_unique():
    names = output_names([Path("/x/case.mp4"), Path("/y/case.mp4"), Path("/y/other.avi")])
    assert names[2] == "other" and names[0] != names[1] and all(n.startswith("case-") for n in names[:2])


# ------------------------------------------------------------------------------ one video


def test_process_video_writes_table_video_timeline_and_summary(tmp_path, engine, settings):
    clip = make_box_clip(tmp_path / "case.mp4", frames=20)
    out = tmp_path / "out"
    out.mkdir()
    job = VideoJob(str(clip), "case", str(out))
    summary = process_video(job, engine, settings)
    assert sorted(p.name for p in out.iterdir()) == ["case.appearances.jpg", "case.frames.csv", "case.json", "case.mp4",
                                                     "case.timeline.png"]
    rows = list(csv.DictReader(open(out / "case.frames.csv")))
    assert [int(r["frame"]) for r in rows] == list(range(20))
    for n, row in enumerate(rows):
        regions = json.loads(row["details"])
        assert int(row["neoplastic"]) == 1 and int(row["non_neoplastic"]) == (n >= GREEN_FROM)
        red = next(r for r in regions if r["class"] == "neoplastic")
        x, y, w, h = red["box"]
        assert abs(x - (10 + 2 * n)) <= 3 and abs(y - 60) <= 3 and abs(w - 30) <= 4 and abs(h - 30) <= 4
        assert 0.03 < red["area"] < 0.07 and red["score"] > 0.9
    assert count_frames(out / "case.mp4") == 20
    assert summary == json.loads((out / "case.json").read_text())
    assert summary["frames"] == 20 and summary["frames_with_polyp"] == 20 and summary["first_detection_s"] == 0.0
    assert summary["appearances_s"] == [pytest.approx(0.3, abs=0.001)]  # the box held 0.3 s: one appearance
    sheet = cv2.imread(str(out / "case.appearances.jpg"))  # its annotated frame, 240 px wide, with its time
    assert sheet.shape == (4 + 180 + 4, 4 + 240 + 4, 3) and summary["outputs"]["appearances"] == "case.appearances.jpg"
    assert summary["regions_per_class"] == {"neoplastic": 20, "non-neoplastic": 20 - GREEN_FROM}
    assert summary["model_sha256"] == settings.model_sha256 and summary["settings"] == settings.key()
    assert is_done(job, settings)
    older = json.loads((out / "case.json").read_text())  # made before the overlay had `class_confidence`
    del older["settings"]["overlay"]["class_confidence"]
    (out / "case.json").write_text(json.dumps(older))
    assert is_done(job, settings)  # at its default it draws as before: nothing to redo
    assert not is_done(job, BatchSettings("color", settings.model_sha256, {**settings.overlay, "class_confidence": 0.9}))
    assert not is_done(job, BatchSettings("color", settings.model_sha256, settings.overlay, video=False))
    assert not is_done(job, BatchSettings("color", "0" * 64, settings.overlay))


def test_the_contact_sheet_shows_each_appearance_with_its_time(tmp_path, engine, settings):
    from polypview.batchjob import contact_sheet, thumbnail

    from clips import make_box_clip, polyp_now_and_then

    clip = make_box_clip(tmp_path / "twice.mp4", frames=130, frame=polyp_now_and_then)
    out = tmp_path / "out"
    out.mkdir()
    summary = process_video(VideoJob(str(clip), "twice", str(out)), engine, settings)
    assert summary["appearances_s"] == [pytest.approx(0.3, abs=0.001), pytest.approx(3.3, abs=0.001)]
    sheet = cv2.imread(str(out / "twice.appearances.jpg"))
    assert sheet.shape == (4 + 180 + 4, 4 + 2 * (240 + 4), 3)  # two cells side by side
    first = sheet[4:184, 4:244]
    assert first[95:130, 20:55, 2].mean() > 150  # the red box (10, 60, 30, 30 at 160x120), drawn, in the first cell
    label = first[:12, :40]
    assert label.min() < 40 and label.max() > 200  # the time: light text on a dark label
    # seven appearances: rows of six
    seven = contact_sheet([thumbnail(np.zeros((90, 160, 3), np.uint8), t) for t in range(7)])
    assert seven.shape == (4 + 2 * (135 + 4), 4 + 6 * (240 + 4), 3)
    # no appearance: no sheet (and none left over from an earlier run)
    quiet = make_box_clip(tmp_path / "quiet.mp4", frames=5)
    (out / "quiet.appearances.jpg").write_bytes(b"old")
    assert process_video(VideoJob(str(quiet), "quiet", str(out)), engine, settings)["outputs"]["appearances"] is None
    assert not (out / "quiet.appearances.jpg").exists()


def test_timeline_marks_each_class_where_it_was_seen():
    marks = [(True, False)] * 5 + [(False, False)] * 5 + [(True, True)] * 10
    image = timeline_image(marks, [(0, 0, 255), (0, 255, 0)], width=20, height=4)
    red, green = image[0, :, 2] == 255, image[3, :, 1] == 255
    assert red.tolist() == [True] * 5 + [False] * 5 + [True] * 10
    assert green.tolist() == [False] * 10 + [True] * 10


def test_a_corrupt_video_leaves_no_files(tmp_path, engine, settings):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 500)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError):
        process_video(VideoJob(str(bad), "bad", str(out)), engine, settings)
    assert list(out.iterdir()) == []


def test_batch_without_ray_says_how_to_install_it(monkeypatch):
    from polypview.batchrun import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'polypview\[batch\]'"):
        import_ray()


def test_batch_bad_options_are_one_line(tmp_path, capsys, color_model):
    clip = make_box_clip(tmp_path / "c.mp4", frames=2)
    assert main(["batch", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert main(["batch", str(clip), "--out", str(clip)]) == 2
    assert main(["batch", str(clip), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert main(["batch", str(clip), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "no.onnx")]) == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("polypview: error: ") for line in err)


def test_batch_draws_with_the_model_files_region_peak_unless_given_and_redoes_when_it_changes(tmp_path):
    import argparse

    from polypview.batch import _check_model, add_arguments, batch_settings

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    model = make_color_model(tmp_path / "peaked.onnx", overlay={"min_peak": 0.8})
    args = parser.parse_args(["x.mp4", "--out", "o", "--model", str(model)])
    peaked = batch_settings(args, _check_model(args))
    assert peaked.overlay["min_peak"] == 0.8
    given = parser.parse_args(["x.mp4", "--out", "o", "--model", str(model), "--min-peak", "0"])
    assert batch_settings(given, _check_model(given)).overlay["min_peak"] == 0.0
    plain = parser.parse_args(["x.mp4", "--out", "o", "--model", str(make_color_model(tmp_path / "plain.onnx"))])
    assert batch_settings(plain, _check_model(plain)).overlay["min_peak"] == OverlaySettings().min_peak
    assert peaked.key() != batch_settings(given, _check_model(given)).key()  # outputs made otherwise are redone
