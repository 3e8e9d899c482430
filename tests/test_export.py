"""`polypview export`: ONNX parity for every registered model, fp16 storage, refusal on mismatch."""

import dataclasses

import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from polypview.cli import main
from polypview.errors import ModelFileError
from polypview.inference.models import HEAD_CHANNELS, create_model, get_spec, list_models
from polypview.inference.runtime.modelfile import INPUT_NAME, OUTPUT_NAME, ModelInfo
from polypview.inference.training.export import compare_outputs, export_model

SIZE = 64  # small, a multiple of 32 (HarDNet's s32 tap needs it)
N_CLASSES = {"trinary": 2, "binary": 1, "multilabel": 2}  # foreground classes in the model file


def _metadata(path) -> ModelInfo:
    proto = onnx.load(str(path))
    return ModelInfo.from_metadata({p.key: p.value for p in proto.metadata_props})


@pytest.mark.parametrize("name", list_models())
def test_export_parity_for_every_model(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name)
    path = tmp_path / f"{name}.onnx"
    report = export_model(model, name, path, size=SIZE)
    assert report.max_abs_diff <= 1e-3 and path.is_file()
    info = _metadata(path)
    assert info.architecture == name and info.input_size == (SIZE, SIZE)
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == (INPUT_NAME, OUTPUT_NAME)
    probs = session.run(None, {INPUT_NAME: torch.randn(3, 3, SIZE, SIZE).numpy()})[0]
    assert probs.shape == (3, N_CLASSES[get_spec(name).head], SIZE, SIZE)  # dynamic batch
    assert len(info.classes) == probs.shape[1]


def test_fp16_halves_the_file_and_keeps_parity(tmp_path):
    torch.manual_seed(0)
    model = create_model("nanonet-a-neo")
    fp32 = export_model(model, "nanonet-a-neo", tmp_path / "a32.onnx", size=SIZE)
    fp16 = export_model(model, "nanonet-a-neo", tmp_path / "a16.onnx", size=SIZE, fp16=True)
    assert fp16.precision == "fp16" and fp16.max_abs_diff <= 1e-2
    assert fp16.size_bytes < 0.6 * fp32.size_bytes
    proto = onnx.load(str(tmp_path / "a16.onnx"))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp32 in/out


class _Divergent(nn.Module):
    """Gives different probabilities once exported: what the parity check must catch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, HEAD_CHANNELS["trinary"], 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        if torch.onnx.is_in_onnx_export():
            y = y + torch.tensor([5.0, 0.0, 0.0]).view(1, 3, 1, 1)
        return y


def test_export_refuses_when_onnx_disagrees(tmp_path):
    path = tmp_path / "bad.onnx"
    with pytest.raises(ModelFileError, match="differs from PyTorch"):
        export_model(_Divergent(), "nanonet-c-neo", path, size=32)
    assert not path.exists()  # no unusable file left behind


def test_compare_outputs_tolerance():
    a = torch.zeros(1, 2, 4, 4).numpy()
    b = a.copy()
    b[0, 1, 2, 3] = 2e-3
    assert compare_outputs(a, b, 1e-2, "x") == pytest.approx(2e-3)
    with pytest.raises(ModelFileError):
        compare_outputs(a, b, 1e-3, "x")
    with pytest.raises(ModelFileError):
        compare_outputs(a, b[:, :1], 1.0, "x")  # shape mismatch never passes


def _checkpoint(tmp_path, name="nanonet-c-neo"):
    torch.manual_seed(0)
    model = create_model(name)
    path = tmp_path / "ckpt.pt"
    metrics = {"split": "val", "polyp": {"dice": 0.5, "iou": 0.33}}
    torch.save({"model": name, "state_dict": model.state_dict(), "input_size": 64, "epoch": 3,
                "training_data": "synthetic", "eval": metrics}, path)
    return path


def test_export_cli_writes_metadata_with_metrics(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(_checkpoint(tmp_path)), "-o", str(out), "--fp16"]) == 0
    info = _metadata(out)
    assert info.input_size == (64, 64) and info.training_data == "synthetic"
    assert info.metrics["polyp"]["dice"] == 0.5 and info.activation == "softmax"
    assert info.version.endswith(".e3")
    assert "parity" in capsys.readouterr().out


def test_torch_weights_run_in_the_torch_backend(tmp_path):
    import numpy as np

    out = tmp_path / "m.onnx"
    assert main(["export", str(_checkpoint(tmp_path)), "-o", str(out), "--pt"]) == 0
    state = torch.load(out.with_suffix(".pt"), weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert not any(k.startswith("aux.") for k in state)
    from polypview.inference.runtime.engine import load_engine

    frame = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
    ort_scores = load_engine(out, backend="ort").predict(frame).scores
    torch_scores = load_engine(out, backend="torch").predict(frame).scores
    assert np.abs(ort_scores - torch_scores).max() < 1e-2  # fp16-rounded weights, fp32 compute


def test_export_cli_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad), "-o", str(tmp_path / "x.onnx")]) != 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _textured_images(folder, count, size=96):
    """Endoscopy-ish PNGs: smooth reddish texture with a brighter blob (calibration needs real-looking input)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        noise = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 4)
        image = (noise * 120 + [40, 60, 150]).clip(0, 255).astype(np.uint8)
        cv2.circle(image, tuple(int(v) for v in rng.integers(20, size - 20, 2)), 15, (90, 120, 230), -1)
        path = folder / f"img{i}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def test_int8_quantization_keeps_metadata_and_refuses_a_poor_match(tmp_path):
    from polypview.inference.training.quantize import quantize_file

    torch.manual_seed(0)
    fp32 = export_model(create_model("nanonet-c-neo"), "nanonet-c-neo", tmp_path / "c32.onnx", size=SIZE)
    images = _textured_images(tmp_path, 6)
    report = quantize_file(fp32.path, tmp_path / "c8.onnx", images[:4], images[4:], min_agreement=0.0)
    assert report.images == 2 and report.calibration_images == 4 and 0.0 <= report.agreement <= 1.0
    proto = onnx.load(str(tmp_path / "c8.onnx"))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in proto.graph.node}
    assert _metadata(tmp_path / "c8.onnx") == _metadata(fp32.path)
    # 7-bit weights: u8 activations times weights, summed in pairs, fit 16 bits (2 * 255 * 64 < 32767) on CPUs
    # without VNNI
    weights = [numpy_helper.to_array(t) for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights and max(int(abs(w.astype(int)).max()) for w in weights) <= 64
    with pytest.raises(ModelFileError, match="agrees with fp32 on only"):
        quantize_file(fp32.path, tmp_path / "bad.onnx", images[:4], images[4:], min_agreement=1.01)
    assert not (tmp_path / "bad.onnx").exists()


def test_int8_export_of_the_shipped_model_agrees_with_fp32(tmp_path, neopolyp_dir):
    from polypview.assets import ASSETS_DIR
    from polypview.inference.runtime.engine import load_engine
    from polypview.inference.training.export import export_int8

    weights = torch.load(ASSETS_DIR / "nanonet-a-neo.pt", weights_only=True)
    model = create_model("nanonet-a-neo", aux=False)
    model.load_state_dict({k: v.float() for k, v in weights["state_dict"].items()})
    out = tmp_path / "a8.onnx"
    info = _metadata(ASSETS_DIR / "nanonet-a-neo.onnx")  # 192x192, as shipped
    report = export_int8(model, "nanonet-a-neo", out, info=info, data=neopolyp_dir, calibration=8, check=4)
    assert report.precision == "int8" and report.quant.agreement >= 0.98
    assert report.size_bytes < (ASSETS_DIR / "nanonet-a-neo.onnx").stat().st_size  # smaller than even fp16
    import numpy as np

    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    assert load_engine(out, backend="ort").predict(frame).scores.shape == (192, 192)


class _FastButWrong(nn.Module):
    """A model whose inference graph (for_inference) does not compute what forward does."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, HEAD_CHANNELS["trinary"], 3, padding=1)

    def forward(self, x):
        return self.conv(x)

    def for_inference(self):
        wrong = nn.Conv2d(3, HEAD_CHANNELS["trinary"], 3, padding=1)
        with torch.no_grad():
            wrong.weight.copy_(self.conv.weight * 2)
            wrong.bias.copy_(self.conv.bias)
        return wrong.eval()


def test_export_checks_the_inference_graph_against_the_model_itself(tmp_path):
    path = tmp_path / "wrong.onnx"
    with pytest.raises(ModelFileError, match="differs from PyTorch"):
        export_model(_FastButWrong(), "nanonet-c-neo", path, size=32)
    assert not path.exists()


def test_nanonet_file_holds_the_inference_graph(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "a.onnx"
    export_model(create_model("nanonet-a-neo"), "nanonet-a-neo", path, size=SIZE)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "BatchNormalization" not in ops and "Softmax" not in ops and "ReduceMean" not in ops
    assert ops.count("Resize") == 3 and ops.count("GlobalAveragePool") == 4


def _shipped_weights(tmp_path):
    """A model file with metadata and its shipped-style weights file (export --pt), as in assets/."""
    out = tmp_path / "m.onnx"
    assert main(["export", str(_checkpoint(tmp_path)), "-o", str(out), "--fp16", "--pt"]) == 0
    return out, out.with_suffix(".pt")


def test_reexport_of_shipped_weights_keeps_metadata_and_outputs(tmp_path, capsys):
    import numpy as np
    import onnxruntime as ort

    model_file, weights = _shipped_weights(tmp_path)
    again = tmp_path / "again.onnx"
    assert main(["export", str(weights), "--metadata-from", str(model_file), "-o", str(again), "--fp16"]) == 0
    assert "parity" in capsys.readouterr().out
    assert _metadata(again) == _metadata(model_file)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    old, new = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: x})[0]
                for p in (model_file, again))
    assert np.abs(old - new).max() < 2e-3  # the same weights, rounded to fp16 after folding instead of before


def test_reexport_refuses_other_architecture_and_card(tmp_path, capsys):
    model_file, weights = _shipped_weights(tmp_path)
    capsys.readouterr()
    other = tmp_path / "other.onnx"
    torch.manual_seed(0)
    export_model(create_model("nanonet-b-neo"), "nanonet-b-neo", other, size=SIZE)
    assert main(["export", str(weights), "--metadata-from", str(other), "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nanonet-b-neo" in err[0] and "nanonet-c-neo" in err[0]
    assert main(["export", str(weights), "--metadata-from", str(model_file), "--card", "e.json",
                 "-o", str(tmp_path / "x.onnx")]) == 2
    assert "--card" in capsys.readouterr().err
    assert main(["export", str(weights), "-o", str(tmp_path / "x.onnx")]) != 0  # shipped weights need the metadata
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("name", ["nanonet-a-neo", "nanonet-c-neo", "nanonet-lite0-neo"])
def test_shipped_nanonet_files_hold_the_inference_graph_of_their_weights(name):
    import numpy as np
    import onnxruntime as ort

    from polypview.assets import ASSETS_DIR
    from polypview.inference.models import foreground_probs

    path = ASSETS_DIR / f"{name}.onnx"
    if not path.is_file():
        pytest.skip(f"{name} is not shipped in assets/")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert not ops & {"Softmax", "BatchNormalization", "ReduceMean"}  # as NanoNet.for_inference exports
    weights = torch.load(ASSETS_DIR / f"{name}.pt", weights_only=True)
    model = create_model(name, aux=False)
    model.load_state_dict({k: v.float() for k, v in weights["state_dict"].items()})
    size = _metadata(path).input_size
    x = np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32)
    with torch.no_grad():
        reference = foreground_probs("trinary", model.eval()(torch.from_numpy(x))).numpy()
    probs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: x})[0]
    assert np.abs(probs - reference).max() < 1e-2  # fp16- or int8-stored folded weights against the training module


def test_a_model_file_takes_its_own_region_peak_with_its_weights_untouched(tmp_path, capsys):
    from onnx_models import make_color_model

    source = make_color_model(tmp_path / "color.onnx")
    out = tmp_path / "peaked.onnx"
    assert main(["export", str(source), "-o", str(out), "--min-peak", "0.8", "--version", "v2"]) == 0
    assert "min_peak" in capsys.readouterr().out
    before, after = onnx.load(str(source)), onnx.load(str(out))
    assert after.graph == before.graph  # same nodes and weights, byte for byte
    info = _metadata(out)
    assert info.overlay == {"min_peak": 0.8} and info.version == "v2"
    assert info == dataclasses.replace(_metadata(source), overlay={"min_peak": 0.8}, version="v2")  # nothing else
    # a checkpoint export keeps a --metadata-from file's drawing defaults, and --min-peak sets them
    model_file, weights = _shipped_weights(tmp_path)
    assert main(["export", str(model_file), "-o", str(model_file), "--min-peak", "0.95"]) == 0  # in place
    again = tmp_path / "again.onnx"
    assert main(["export", str(weights), "--metadata-from", str(model_file), "-o", str(again)]) == 0
    assert _metadata(again).overlay == {"min_peak": 0.95}
    assert main(["export", str(_checkpoint(tmp_path)), "-o", str(again), "--min-peak", "0"]) == 0
    assert _metadata(again).overlay == {"min_peak": 0.0}
    capsys.readouterr()


@pytest.mark.parametrize("args, word", [(["--min-peak", "1.5"], "--min-peak"), (["--fp16"], "--fp16"),
                                         (["--card", "e.json"], "--card"), (["--size", "96"], "--size")])
def test_a_model_file_copy_refuses_what_needs_a_checkpoint_in_one_line(tmp_path, capsys, args, word):
    from onnx_models import make_color_model

    source = make_color_model(tmp_path / "color.onnx")
    out = tmp_path / "out.onnx"
    assert main(["export", str(source), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0] and not out.exists()


def test_int8_calibration_that_would_not_fit_in_memory_is_refused_in_one_line(tmp_path):
    from polypview.errors import ConfigError
    from polypview.inference.training.quantize import activation_bytes, check_memory

    small, large = tmp_path / "s.onnx", tmp_path / "l.onnx"
    net = create_model("nanonet-c-neo")
    export_model(net, "nanonet-c-neo", small, size=64)
    export_model(net, "nanonet-c-neo", large, size=128)
    per_small, per_large = activation_bytes(small), activation_bytes(large)
    assert per_small > 0 and 3.5 < per_large / per_small < 4.5  # activations grow with the pixels
    check_memory(10, per_small, 100 * per_small)  # fits
    check_memory(10**6, per_small, None)  # memory unknown: no guess
    with pytest.raises(ConfigError, match=r"--calibration 1000: .* use --calibration 50 or fewer"):
        check_memory(1000, per_small, 100 * per_small)


def test_model_file_says_what_views_it_was_trained_on():
    from polypview.inference.training.export import training_views

    views = training_views({"augment": "video", "size": 256})
    assert views.startswith("Trained on camera-like views at 256x256") and "cut by the frame's edge" not in views
    assert "50 % of the polyp views with the polyp cut by the frame's edge" in training_views(
        {"augment": "video_edge", "size": 256})
    assert training_views({"augment": "default", "size": 256}) == ""
