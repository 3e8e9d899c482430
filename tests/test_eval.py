"""`polypview eval` on a tiny hand-made dataset and model file: Dice/IoU equal the hand counts."""

import json

import cv2
import numpy as np
import pytest

from polypview.cli import main
from polypview.errors import DataError
from polypview.inference.modelfile import ModelInfo

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
    from polypview.inference.evaluate import EvalResult, format_table

    counts = {"dice": 0.5, "iou": 0.33}
    micro = {k: counts for k in ("polyp", "neoplastic", "non_neoplastic")}

    def result(arch, threads):
        return EvalResult(model=arch, architecture=arch, input_size=(192, 192), micro=micro, macro=micro,
                          images=3, fps=10.0, threads=threads)

    assert format_table([result("a", 1), result("b", 1)]).endswith("batch 1, 1 intra-op thread(s))")
    assert "intra-op threads: a 1, b 2)" in format_table([result("a", 1), result("b", 2)])
    assert "intra-op" not in format_table([result("a", None)])


def test_eval_missing_data_is_a_clear_error(tmp_path, capsys):
    model = _channel_model(tmp_path / "channels.onnx")
    code = main(["eval", str(model), "--data", str(tmp_path / "nowhere"), "--json", str(tmp_path / "e.json")])
    assert code == DataError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]


def test_eval_also_scores_one_class_per_polyp_region(tmp_path, capsys):
    """A true neoplastic polyp predicted 10 columns red + 6 green: per pixel it splits, voted it is all red."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    _write_pair(root, "c", [(RED, 8, 24, 8, 18), (GREEN, 8, 24, 18, 24)], [(RED, 8, 24, 8, 24)])
    _write_pair(root, "d", [(GREEN, 0, 8, 32, 48)], [(GREEN, 0, 8, 32, 48)])  # a separate region keeps its class
    model = _channel_model(tmp_path / "channels.onnx")
    out = tmp_path / "eval.json"
    assert main(["eval", str(model), "--data", str(root), "--split", "all",
                 "--json", str(out), "--no-fps", "--no-progress"]) == 0
    result = json.loads(out.read_text())["results"][0]
    pixel, region = result["micro"], result["micro_region"]
    assert (pixel["neoplastic"]["tp"], pixel["neoplastic"]["fn"]) == (160, 96)
    assert (pixel["non_neoplastic"]["tp"], pixel["non_neoplastic"]["fp"]) == (128, 96)
    assert (region["neoplastic"]["tp"], region["neoplastic"]["fp"], region["neoplastic"]["fn"]) == (256, 0, 0)
    assert (region["non_neoplastic"]["tp"], region["non_neoplastic"]["fp"]) == (128, 0)
    assert region["polyp"] == pixel["polyp"]  # voting never moves the polyp outline
    assert "one class/polyp" in capsys.readouterr().out
