"""Tiny polypview model files for tests, built with onnx.helper (no torch).

`make_color_model` writes a model whose output depends only on each pixel's colour, so a test
can paint a frame and know where each mask must appear:
  * red pixels (R high, G and B low)   -> class 0 ("neoplastic")
  * green pixels (G high, R and B low) -> class 1 ("non-neoplastic")
  * anything else (grey, black, white) -> background (all foreground probabilities ~0)
The model undoes the metadata's normalisation and colour order inside its 1x1 convolution, so
it only gives the right answer when the app pre-processes exactly as the metadata says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from polypview.inference.runtime.modelfile import (
    INPUT_NAME,
    NEOPLASTIC_RGB,
    NON_NEOPLASTIC_RGB,
    OUTPUT_NAME,
    POLYP_RGB,
    ModelInfo,
)

OPSET = 17
GAIN = 20.0  # logit per unit of colour difference: makes the colour model's probabilities crisp
RED_BGR = (0, 0, 255)
GREEN_BGR = (0, 255, 0)
GREY_BGR = (128, 128, 128)


def color_info(classes: int = 2, activation: str = "softmax", input_size=(64, 64), **kw) -> ModelInfo:
    """Metadata of a colour model with 1 ("polyp") or 2 (neoplastic, non-neoplastic) classes."""
    names, colors = {
        1: (("polyp",), (POLYP_RGB,)),
        2: (("neoplastic", "non-neoplastic"), (NEOPLASTIC_RGB, NON_NEOPLASTIC_RGB)),
    }[classes]
    fields = dict(architecture="test-color", classes=names, colors=colors, activation=activation,
                  input_size=tuple(input_size), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    fields.update(kw)
    return ModelInfo(**fields)


def _color_logits(info: ModelInfo) -> tuple[np.ndarray, np.ndarray]:
    """1x1 conv weights (C,3) and bias (C,) from the model's normalised input to class logits."""
    # Logits on plain RGB in [0, 1]: red -> neo, green -> non-neo, background logit fixed at 0.
    w_rgb = GAIN * np.array([[1, -1, -1], [-1, 1, -1], [0, 0, 0]], np.float64)
    b = GAIN * np.array([-0.25, -0.25, 0.0])
    if info.activation == "sigmoid":
        w_rgb, b = w_rgb[: len(info.classes)], b[: len(info.classes)]
    if info.color_order == "BGR":
        w_rgb = w_rgb[:, ::-1]
    # The input is x = (rgb - mean) / std, so rgb = x * std + mean: fold that into the conv.
    std, mean = np.array(info.std), np.array(info.mean)
    return (w_rgb * std).astype(np.float32), (b + w_rgb @ mean).astype(np.float32)


def _io(name: str, channels, size, dynamic_hw: bool):
    h, w = ("height", "width") if dynamic_hw else size
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", channels, h, w])


def _save(graph_nodes, inits, inputs, outputs, path, metadata: dict | None) -> Path:
    graph = helper.make_graph(graph_nodes, "polypview_test", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _color_graph(info: ModelInfo, in_channels: int = 3):
    """Nodes and initialisers: 1x1 conv -> softmax (drop background) or sigmoid."""
    w, b = _color_logits(info)
    if in_channels != 3:
        w = np.resize(w, (w.shape[0], in_channels)).astype(np.float32)
    inits = [numpy_helper.from_array(w[:, :, None, None], "W"), numpy_helper.from_array(b, "B")]
    nodes = [helper.make_node("Conv", [INPUT_NAME, "W", "B"], ["logits"])]
    if info.activation == "softmax":
        inits += [numpy_helper.from_array(np.array([v], np.int64), n)
                  for n, v in (("start", 0), ("end", len(info.classes)), ("axis", 1))]
        nodes += [
            helper.make_node("Softmax", ["logits"], ["all_probs"], axis=1),
            helper.make_node("Slice", ["all_probs", "start", "end", "axis"], [OUTPUT_NAME]),
        ]
    else:
        nodes.append(helper.make_node("Sigmoid", ["logits"], [OUTPUT_NAME]))
    return nodes, inits


def make_color_model(path, input_size=(64, 64), classes: int = 2, activation: str = "softmax",
                     dynamic_hw: bool = False, **info_kw) -> Path:
    """Write a colour model (see the module docstring); info_kw override metadata (mean, std, color_order...)."""
    info = color_info(classes, activation, input_size, **info_kw)
    nodes, inits = _color_graph(info)
    k = len(info.classes)
    return _save(nodes, inits, [_io(INPUT_NAME, 3, info.input_size, dynamic_hw)],
                 [_io(OUTPUT_NAME, k, info.input_size, dynamic_hw)], path, info.to_metadata())


def make_conv_model(path, input_size=(256, 256), width: int = 16, layers: int = 4, seed: int = 0) -> Path:
    """Write a small random 3x3-conv network (2 classes, softmax) whose cost resembles a light CNN."""
    rng = np.random.default_rng(seed)
    info = color_info(2, "softmax", input_size, architecture="test-conv")
    nodes, inits, prev, cin = [], [], INPUT_NAME, 3
    for i in range(layers):
        w = rng.normal(0, (2.0 / (9 * cin)) ** 0.5, (width, cin, 3, 3)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(width, np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        prev, cin = f"r{i}", width
    w = rng.normal(0, 0.1, (3, cin, 1, 1)).astype(np.float32)
    inits += [numpy_helper.from_array(w, "wh"), numpy_helper.from_array(np.zeros(3, np.float32), "bh"),
              numpy_helper.from_array(np.array([0], np.int64), "s0"),
              numpy_helper.from_array(np.array([2], np.int64), "s1"),
              numpy_helper.from_array(np.array([1], np.int64), "ax")]
    nodes += [helper.make_node("Conv", [prev, "wh", "bh"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["p3"], axis=1),
              helper.make_node("Slice", ["p3", "s0", "s1", "ax"], [OUTPUT_NAME])]
    return _save(nodes, inits, [_io(INPUT_NAME, 3, info.input_size, False)],
                 [_io(OUTPUT_NAME, 2, info.input_size, False)], path, info.to_metadata())


def make_bad_models(tmpdir) -> dict[str, Path]:
    """Broken model files, name -> path: each must make load_engine raise ModelFileError."""
    d = Path(tmpdir)
    info = color_info(2, "softmax", (64, 64))
    nodes, inits = _color_graph(info)
    ok_in, ok_out = _io(INPUT_NAME, 3, (64, 64), False), _io(OUTPUT_NAME, 2, (64, 64), False)
    bad = {
        "no_metadata": _save(nodes, inits, [ok_in], [ok_out], d / "no_metadata.onnx", None),
        "k_mismatch": _save(nodes, inits, [ok_in], [ok_out], d / "k_mismatch.onnx",
                            color_info(1, "softmax", (64, 64)).to_metadata()),
        "size_mismatch": _save(nodes, inits, [ok_in], [ok_out], d / "size_mismatch.onnx",
                               color_info(2, "softmax", (96, 96)).to_metadata()),
    }
    gray_nodes, gray_inits = _color_graph(info, in_channels=1)
    bad["one_channel"] = _save(gray_nodes, gray_inits, [_io(INPUT_NAME, 1, (64, 64), False)], [ok_out],
                               d / "one_channel.onnx", info.to_metadata())
    renamed = [helper.make_node("Identity", ["input"], [INPUT_NAME])] + nodes
    bad["wrong_input_name"] = _save(renamed, inits, [_io("input", 3, (64, 64), False)], [ok_out],
                                    d / "wrong_input_name.onnx", info.to_metadata())
    bad["garbage"] = d / "garbage.onnx"
    bad["garbage"].write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    bad["empty"] = d / "empty.onnx"
    bad["empty"].write_bytes(b"")
    bad["bad_json"] = _save(nodes, inits, [ok_in], [ok_out], d / "bad_json.onnx",
                            {**info.to_metadata(), "polypview.classes": "[not json"})
    return bad


def paint_frame(size=(120, 160), boxes=(), background=GREY_BGR) -> np.ndarray:
    """A BGR frame (h, w) filled with `background` and boxes ((x, y, w, h), bgr) painted on it."""
    frame = np.empty((*size, 3), np.uint8)
    frame[:] = background
    for (x, y, w, h), bgr in boxes:
        frame[y:y + h, x:x + w] = bgr
    return frame
