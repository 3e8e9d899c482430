"""`polypview eval` on a tiny hand-made dataset and model file: Dice/IoU equal the hand counts."""

import json

import cv2
import numpy as np
import pytest

from polypview.cli import main
from polypview.errors import DataError
from polypview.inference.runtime.modelfile import ModelInfo

H, W = 32, 48  # mask/image resolution; the model runs at half of it (exact 2x2 area resize)
RED, GREEN = (255, 0, 0), (0, 255, 0)


def _channel_model(path, size=(H // 2, W // 2)):
    """ONNX model: probs = the R and G channels of the image (sigmoid semantics: R -> neo, G -> non)."""
    import onnx
    from onnx import TensorProto, helper

    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [2])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    node = helper.make_node("Slice", ["image", "starts", "ends", "axes"], ["probs"])
    graph = helper.make_graph(
        [node], "channels",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, *size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2, *size])],
        initializer=[starts, ends, axes],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    info = ModelInfo(architecture="channels-test", classes=("neoplastic", "non-neoplastic"),
                     colors=(RED, GREEN), activation="sigmoid", input_size=size,
                     mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    for key, value in info.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path


def _write_pair(folder, name, paint, truth):
    """An RGB image painted by `paint` [(colour, y0, y1, x0, x1)], and its mask from `truth`."""
    image = np.zeros((H, W, 3), np.uint8)
    mask = np.zeros((H, W, 3), np.uint8)
    for layer, regions in ((image, paint), (mask, truth)):
        for color, y0, y1, x0, x1 in regions:
            layer[y0:y1, x0:x1] = color
    cv2.imwrite(str(folder / "images" / f"{name}.png"), image[..., ::-1])
    cv2.imwrite(str(folder / "masks" / f"{name}.png"), mask[..., ::-1])


@pytest.fixture
def fake_data(tmp_path):
    """Two pairs with hand-countable overlaps (all region edges even: the 2x2 resize is exact)."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    # a: predicted neo 16x16 inside true neo 16x24 -> neo TP 256, FN 128
    _write_pair(root, "a", [(RED, 0, 16, 0, 16)], [(RED, 0, 16, 0, 24)])
    # b: predicted non 8x8 inside true non 16x8 (TP 64, FN 64); predicted neo 8x8 on background (FP 64)
    _write_pair(root, "b", [(GREEN, 16, 24, 24, 32), (RED, 0, 8, 40, 48)], [(GREEN, 16, 32, 24, 32)])
    return root


EXPECTED = {  # (TP, FP, FN) summed over both images
    "neoplastic": (256, 64, 128),
    "non_neoplastic": (64, 0, 64),
    "polyp": (320, 64, 192),
}


def test_eval_gives_hand_computed_micro_dice(fake_data, tmp_path, capsys):
    model = _channel_model(tmp_path / "channels.onnx")
    out = tmp_path / "eval.json"
    code = main(["eval", str(model), "--data", str(fake_data), "--split", "all",
                 "--json", str(out), "--no-fps", "--no-progress"])
    assert code == 0
    result = json.loads(out.read_text())["results"][0]
    assert result["images"] == 2
    for cls, (tp, fp, fn) in EXPECTED.items():
        micro = result["micro"][cls]
        assert (micro["tp"], micro["fp"], micro["fn"]) == (tp, fp, fn)
        assert micro["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert micro["iou"] == pytest.approx(tp / (tp + fp + fn))
    table = capsys.readouterr().out
    assert "72.7" in table and "66.7" in table  # neo and non Dice in percent
    assert "paper" in table


def test_eval_measures_fps_and_names_split_file(fake_data, tmp_path):
    model = _channel_model(tmp_path / "channels.onnx")
    names = tmp_path / "names.txt"
    names.write_text("a\n")
    out = tmp_path / "eval.json"
    assert main(["eval", str(model), "--data", str(fake_data), "--split", str(names),
                 "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())["results"][0]
    assert result["images"] == 1 and result["fps"] > 0
    assert result["micro"]["neoplastic"]["dice"] == pytest.approx(512 / 640)
    assert result["threads"] >= 1  # the FPS says with how many ONNX Runtime threads it was measured


def test_eval_table_says_the_threads_each_fps_was_measured_with():
    from polypview.inference.training.evaluate import EvalResult, format_table

    counts = {"dice": 0.5, "iou": 0.33}
    micro = {k: counts for k in ("polyp", "neoplastic", "non_neoplastic")}

    def result(arch, threads):
        return EvalResult(model=arch, architecture=arch, input_size=(192, 192), micro=micro, macro=micro,
                          images=3, fps=10.0, threads=threads)

    assert format_table([result("a", 1), result("b", 1)]).endswith("batch 1, 1 intra-op thread(s))")
    assert "intra-op threads: a 1, b 2)" in format_table([result("a", 1), result("b", 2)])
    assert "intra-op" not in format_table([result("a", None)])


def test_eval_rows_of_one_architecture_are_told_apart_by_their_files():
    from polypview.inference.training.evaluate import EvalResult, format_table

    counts = {"dice": 0.5, "iou": 0.33}
    micro = {k: counts for k in ("polyp", "neoplastic", "non_neoplastic")}

    def result(model, arch):
        return EvalResult(model=model, architecture=arch, input_size=(192, 192), micro=micro, macro=micro, images=3)

    rows = format_table([result("runs/a/best.pt", "net"), result("assets/net.onnx", "net"), result("other", "other")])
    names = [line.split("  ")[0] for line in rows.splitlines()[2:]]
    assert names[0] == "net (best.pt)" and "net (net.onnx)" in names and "other" in names


def test_eval_missing_data_is_a_clear_error(tmp_path, capsys):
    model = _channel_model(tmp_path / "channels.onnx")
    code = main(["eval", str(model), "--data", str(tmp_path / "nowhere"), "--json", str(tmp_path / "e.json")])
    assert code == DataError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]


def _eval_pairs(tmp_path, pairs: dict) -> dict:
    """Write {name: (paint, truth)} pairs, evaluate the channel model on them, return its JSON result."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, (paint, truth) in pairs.items():
        _write_pair(root, name, paint, truth)
    model = _channel_model(tmp_path / "channels.onnx")
    out = tmp_path / "eval.json"
    assert main(["eval", str(model), "--data", str(root), "--split", "all",
                 "--json", str(out), "--no-fps", "--no-progress"]) == 0
    return json.loads(out.read_text())["results"][0]


def test_eval_also_scores_one_class_per_polyp_region(tmp_path, capsys):
    """A true neoplastic polyp predicted 10 columns red + 6 green: per pixel it splits, voted it is all red."""
    result = _eval_pairs(tmp_path, {"c": ([(RED, 8, 24, 8, 18), (GREEN, 8, 24, 18, 24)], [(RED, 8, 24, 8, 24)]),
                                    # a separate region keeps its class
                                    "d": ([(GREEN, 0, 8, 32, 48)], [(GREEN, 0, 8, 32, 48)])})
    pixel, region = result["micro"], result["micro_region"]
    assert (pixel["neoplastic"]["tp"], pixel["neoplastic"]["fn"]) == (160, 96)
    assert (pixel["non_neoplastic"]["tp"], pixel["non_neoplastic"]["fp"]) == (128, 96)
    assert (region["neoplastic"]["tp"], region["neoplastic"]["fp"], region["neoplastic"]["fn"]) == (256, 0, 0)
    assert (region["non_neoplastic"]["tp"], region["non_neoplastic"]["fp"]) == (128, 0)
    assert region["polyp"] == pixel["polyp"]  # voting never moves the polyp outline
    assert "one class/polyp" in capsys.readouterr().out


def test_eval_true_class_row_fixes_only_the_class_of_predicted_regions(tmp_path, capsys):
    """Predicted all green over a true red polyp, plus a green false region: the ceiling row makes the
    polyp red (its extent unchanged) and leaves the false region green (no truth under it)."""
    result = _eval_pairs(tmp_path, {"e": ([(GREEN, 8, 24, 8, 24), (GREEN, 0, 4, 40, 48)], [(RED, 8, 24, 8, 20)])})
    pixel, ceiling = result["micro"], result["micro_true_class"]
    assert pixel["neoplastic"]["tp"] == 0 and pixel["non_neoplastic"]["fp"] == 256 + 32
    assert (ceiling["neoplastic"]["tp"], ceiling["neoplastic"]["fp"], ceiling["neoplastic"]["fn"]) == (192, 64, 0)
    assert (ceiling["non_neoplastic"]["tp"], ceiling["non_neoplastic"]["fp"]) == (0, 32)
    assert ceiling["polyp"]["dice"] == pixel["polyp"]["dice"]  # the extent is the prediction's
    assert "true class/polyp" in capsys.readouterr().out


# ---------------------------------------------------------------- bootstrap intervals

from polypview.errors import ConfigError  # noqa: E402
from polypview.inference.training.evaluate import ImageCounts, bootstrap_intervals  # noqa: E402
from polypview.inference.training.metrics import METRIC_CLASSES  # noqa: E402


def _per_image(rows):
    """(images, 3 classes, 3) counts where every class gets the same (TP, FP, FN) rows."""
    return np.repeat(np.asarray(rows, np.int64)[:, None, :], len(METRIC_CLASSES), axis=1)


def _realistic_counts(n, seed=3):
    """Per-image counts shaped like polyp masks: sizes vary 30x, hit rates vary."""
    rng = np.random.default_rng(seed)
    true = rng.integers(200, 6000, n)
    tp = (true * rng.uniform(0.3, 1.0, n)).astype(np.int64)
    fp = (true * rng.uniform(0.0, 0.5, n)).astype(np.int64)
    return _per_image(np.stack([tp, fp, true - tp], axis=1))


def _micro_dice(counts):
    tp, fp, fn = counts.sum(axis=0)[0]
    return 2 * tp / (2 * tp + fp + fn)


def test_bootstrap_of_two_images_spans_their_own_dice_from_summed_counts():
    """Resampling 2 images gives AA (1/4), AB or BA (1/2), BB (1/4): the 95 % interval runs from one
    image's Dice to the other's, and the middle of the distribution is the micro Dice of A+B
    (2*1 / (2*1 + 0 + 9) = 2/11), not the mean of per-image Dice (0.5)."""
    counts = _per_image([[1, 0, 0], [0, 0, 9]])  # A: Dice 1; B: Dice 0
    wide = bootstrap_intervals(counts, resamples=2000, seed=0)
    assert wide["polyp"] == pytest.approx((0.0, 1.0))
    middle = bootstrap_intervals(counts, resamples=2000, seed=0, level=0.2)  # 40th-60th percentile
    assert middle["polyp"] == pytest.approx((2 / 11, 2 / 11))


def test_bootstrap_interval_contains_the_estimate_and_repeats_with_its_seed():
    counts = _realistic_counts(40)
    point = _micro_dice(counts)
    first = bootstrap_intervals(counts, resamples=500, seed=7)
    lo, hi = first["polyp"]
    assert lo < point < hi and hi - lo > 0.01
    assert bootstrap_intervals(counts, resamples=500, seed=7) == first
    assert bootstrap_intervals(counts, resamples=500, seed=8)["polyp"] != first["polyp"]


def test_bootstrap_interval_narrows_with_more_images():
    few = _realistic_counts(20)
    many = np.concatenate([few] * 16)  # the same images, 16 times as many: the width shrinks ~4x
    lo_few, hi_few = bootstrap_intervals(few, resamples=1000, seed=0)["polyp"]
    lo_many, hi_many = bootstrap_intervals(many, resamples=1000, seed=0)["polyp"]
    assert _micro_dice(few) == pytest.approx(_micro_dice(many))
    assert (hi_many - lo_many) < 0.4 * (hi_few - lo_few)


def test_bootstrap_gives_none_without_images_or_defined_dice():
    assert bootstrap_intervals(np.zeros((0, 3, 3)), resamples=100)["polyp"] is None
    assert bootstrap_intervals(_per_image([[0, 0, 0], [0, 0, 0]]), resamples=100)["polyp"] is None
    assert bootstrap_intervals(_per_image([[1, 0, 0]]), resamples=0)["polyp"] is None


def test_image_counts_keep_each_images_counts():
    counter = ImageCounts()
    truth = np.full((4, 4), 2, np.uint8)
    truth[:2, :2] = 0  # 4 neoplastic pixels
    pred = np.full((4, 4), 2, np.uint8)
    pred[:1, :4] = 0  # 2 on the polyp, 2 beside it
    counter.update(pred, truth)
    counter.update(truth, truth)
    rows = counter.per_image()
    polyp = METRIC_CLASSES.index("polyp")
    assert rows[:, polyp].tolist() == [[2, 2, 2], [4, 0, 0]]
    assert rows.sum(axis=0)[polyp].tolist() == counter.counts["polyp"]


def test_eval_on_binary_masks_scores_the_polyp_and_reports_no_class_dice(tmp_path, capsys):
    """Kvasir-SEG-style white masks know a polyp but not its class: polyp Dice from the hand counts, the class
    Dice n/a (not 0: the model's red pixels on the background alone would make it 0), and the table says why."""
    root = tmp_path / "binary"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    white = (255, 255, 255)
    # predicted neo 16x16 inside a true polyp 16x24 (TP 256, FN 128); predicted non 8x8 on background (FP 64)
    _write_pair(root, "a", [(RED, 0, 16, 0, 16), (GREEN, 24, 32, 40, 48)], [(white, 0, 16, 0, 24)])
    out = tmp_path / "eval.json"
    assert main(["eval", str(_channel_model(tmp_path / "channels.onnx")), "--data", str(root), "--split", "all",
                 "--json", str(out), "--no-fps", "--no-progress"]) == 0
    micro = json.loads(out.read_text())["results"][0]["micro"]
    assert micro["polyp"]["dice"] == pytest.approx(2 * 256 / (2 * 256 + 64 + 128))
    assert micro["neoplastic"]["dice"] is None and micro["non_neoplastic"]["dice"] is None
    assert micro["non_neoplastic"]["fp"] == 64
    table = capsys.readouterr().out
    assert "Neo and Non-neo n/a: no pixel of that class in these masks" in table


def test_eval_writes_and_prints_the_hand_computed_intervals(fake_data, tmp_path, capsys):
    """Two images: every interval runs from one image's micro Dice to the other's (see above)."""
    model = _channel_model(tmp_path / "channels.onnx")
    out = tmp_path / "eval.json"
    assert main(["eval", str(model), "--data", str(fake_data), "--split", "all", "--json", str(out),
                 "--no-fps", "--no-progress", "--seed", "5"]) == 0
    result = json.loads(out.read_text())["results"][0]
    micro = result["micro"]
    # a: neo (256, 0, 128) -> 0.8, polyp the same; b: neo (0, 64, 0): no neoplastic pixel to find, so
    # resamples of b alone have no neoplastic Dice (a false alarm alone is not a Dice of 0), a and b
    # together 512 / 704; polyp (64, 64, 64) -> 0.5, non (64, 0, 64) -> 2/3 (a has no non-neoplastic
    # pixel: resamples of a alone have no Dice).
    assert micro["neoplastic"]["dice_ci95"] == pytest.approx([512 / 704, 0.8])
    assert micro["polyp"]["dice_ci95"] == pytest.approx([0.5, 0.8])
    assert micro["non_neoplastic"]["dice_ci95"] == pytest.approx([2 / 3, 2 / 3])
    assert result["micro_region"]["polyp"]["dice_ci95"] == pytest.approx([0.5, 0.8])
    assert result["bootstrap"] == {"resamples": 2000, "seed": 5, "level": 0.95, "unit": "image", "method": "percentile"}
    table = capsys.readouterr().out
    assert "72.7 [72.7-80.0]" in table and "bootstrap over the 2 images" in table and "95 %" in table


def test_eval_json_with_intervals_still_feeds_export_and_the_model_card(fake_data, tmp_path):
    from polypview.inference.training.export import read_eval
    from polypview.inference.training.modelcard import _metrics_table, _region_lines

    model = _channel_model(tmp_path / "channels.onnx")
    out = tmp_path / "eval.json"
    assert main(["eval", str(model), "--data", str(fake_data), "--split", "all", "--json", str(out),
                 "--no-fps", "--no-progress"]) == 0
    evaluation = read_eval(out)
    assert evaluation["split"] == "all" and evaluation["images"] == 2
    assert "| 72.7 |" in "\n".join(_metrics_table(evaluation))
    assert "72.7" in "\n".join(_region_lines(evaluation))
    assert "the true class under them" in "\n".join(_region_lines(evaluation))


def test_eval_without_bootstrap_prints_plain_dice(fake_data, tmp_path, capsys):
    model = _channel_model(tmp_path / "channels.onnx")
    out = tmp_path / "eval.json"
    assert main(["eval", str(model), "--data", str(fake_data), "--split", "all", "--json", str(out),
                 "--no-fps", "--no-progress", "--bootstrap", "0"]) == 0
    result = json.loads(out.read_text())["results"][0]
    assert result["micro"]["polyp"]["dice_ci95"] is None and result["bootstrap"] is None
    assert "[" not in capsys.readouterr().out.split("\n")[2]  # the model row


@pytest.mark.parametrize("option, value, words", [
    ("--bootstrap", "-1", "--bootstrap"),
    ("--bootstrap", "many", "--bootstrap"),
    ("--seed", "x", "--seed"),
    ("--video-fps", "0", "--video-fps"),
    ("--video-fps", "fast", "--video-fps"),
    ("--video-seconds-per-image", "1-0.5", "backwards"),
    ("--video-seconds-per-image", "0", "between"),
    ("--video-seconds-per-image", "a-b", "--video-seconds-per-image"),
])
def test_eval_bad_numbers_are_one_error_line(fake_data, tmp_path, capsys, option, value, words):
    model = _channel_model(tmp_path / "channels.onnx")
    code = main(["eval", str(model), "--data", str(fake_data), "--split", "all", "--json", str(tmp_path / "e.json"),
                 "--no-fps", "--no-progress", "--video", option, value])
    assert code == ConfigError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not (tmp_path / "e.json").exists()


def test_eval_video_with_unknown_split_or_missing_data_is_one_error_line(fake_data, tmp_path, capsys):
    model = _channel_model(tmp_path / "channels.onnx")
    base = ["eval", str(model), "--json", str(tmp_path / "e.json"), "--no-fps", "--video"]
    assert main(base + ["--data", str(fake_data), "--split", "tset"]) == ConfigError.exit_code
    assert main(base + ["--data", str(tmp_path / "nowhere")]) == DataError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "'tset'" in err[0] and "nowhere" in err[1]


def test_model_card_prints_intervals_and_video_figures():
    from types import SimpleNamespace

    from polypview.inference.training.modelcard import card_text

    def cls(d, lo, hi):
        return {"dice": d, "iou": d / (2 - d), "dice_ci95": [lo, hi]}

    micro = {"polyp": cls(0.9, 0.85, 0.93), "neoplastic": cls(0.88, 0.8, 0.92),
             "non_neoplastic": cls(0.6, 0.41, 0.75)}
    video = {"images": 90, "frames": 2090, "size": [1920, 1080], "fps": 30.0, "seconds": 69.7,
             "seconds_per_image": [0.5, 1.0], "seed": 0, "views": {"framed": 20, "away": 70}, "micro": micro,
             "missed_share": 0.05, "missed_frames": 80, "polyp_frames": 1600, "fp_regions_per_min": 12.5,
             "fp_regions": 3, "polyp_free_seconds": 14.4, "fp_frame_share": 0.02, "flips_per_polyp_second": 0.25,
             "by_view": {"framed": {"images": 20, "micro": micro, "missed_share": 0.01}}}
    evaluation = {"split": "test", "images": 90, "micro": micro, "bootstrap": {"resamples": 2000, "seed": 0,
                  "level": 0.95}, "video": video}
    info = SimpleNamespace(description="d", version="v", input_size=(256, 256), color_order="RGB", mean=(0, 0, 0),
                           std=(1, 1, 1), classes=("neoplastic", "non-neoplastic"), activation="softmax")
    report = SimpleNamespace(path="m.onnx", size_bytes=10, precision="fp32", max_abs_diff=0.0, tolerance=1e-3,
                             quant=None)
    text = card_text("m", {"recipe": {}}, info, report, evaluation)
    assert "| non-neoplastic | 60.0 | 41.0-75.0 |" in text
    assert "95 % percentile bootstrap over the 90 images (2000 resamples" in text
    assert "polyp 90.0 [85.0-93.0]" in text and "missed entirely: 5.0 % (80 of 1600)" in text
    assert "12 per minute (3 in 14.4 s" in text and "class flips per polyp-second: 0.25" in text
    assert "rates' intervals" not in text  # none computed, none claimed
    rated = card_text("m", {"recipe": {}}, info, report, {**evaluation, "video": {
        **video, "missed_share_ci95": [0.031, 0.072], "fp_regions_per_min_ci95": [4.0, 25.0],
        "flips_per_polyp_second_ci95": [0.1, 0.4]}})
    assert "missed entirely: 5.0 % [3.1-7.2] (80 of 1600)" in rated and "12 [4-25] per minute" in rated
    assert "class flips per polyp-second: 0.25 [0.10-0.40]" in rated and "rates' intervals: 95 % bootstrap" in rated
    assert "| framed | 20 | 90.0 | 88.0 | 60.0 | 1.0 |" in text
    assert "seed 0; views" in text and "| view | images |" in text
    three = card_text("m", {"recipe": {}}, info, report, {**evaluation, "video": {**video, "clips": 3}})
    assert "3 clips one after another (seeds 0-2); views" in three and "| view | views |" in three
    no_video = card_text("m", {"recipe": {}}, info, report, {**evaluation, "video": None})
    assert "Scores on video" not in no_video

    from polypview.inference.training.modelcard import RESCORED, scores_section, with_scores_section

    section = scores_section({**evaluation, "fps": 40.0, "latency_ms": 25.0, "threads": 1}, "polypview eval m")
    assert "| non-neoplastic | 60.0 | 41.0-75.0 |" in section and "missed entirely: 5.0 %" in section
    assert "`polypview eval m`" in section and "25.0 ms per frame" in section
    once = with_scores_section(no_video, section)
    assert once.startswith(no_video.rstrip()) and once.count(RESCORED) == 1
    assert with_scores_section(once, section) == once  # a second re-scoring replaces the first


def test_eval_takes_a_shipped_model_name_and_writes_json_only_when_asked(fake_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "nanonet-c-neo", "--data", str(fake_data), "--split", "all", "--no-fps",
                 "--no-progress", "--bootstrap", "0"]) == 0
    assert "nanonet-c-neo" in capsys.readouterr().out
    assert list(tmp_path.rglob("*.json")) == []
    assert main(["eval", "no-such-model", "--data", str(fake_data), "--split", "all"]) == 5
