"""`polypview export`: ONNX parity for every registered model, fp16 storage, refusal on mismatch."""

import onnx
import pytest
import torch
from torch import nn

from polypview.cli import main
from polypview.errors import ModelFileError
from polypview.inference.export import compare_outputs, export_model
from polypview.inference.modelfile import INPUT_NAME, OUTPUT_NAME, ModelInfo
from polypview.inference.models import HEAD_CHANNELS, create_model, get_spec, list_models

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
    from polypview.inference.runtime import load_engine

    frame = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
    ort_scores = load_engine(out, backend="ort").predict(frame).scores
    torch_scores = load_engine(out, backend="torch").predict(frame).scores
    assert np.abs(ort_scores - torch_scores).max() < 1e-2  # fp16-rounded weights, fp32 compute


def test_export_cli_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad), "-o", str(tmp_path / "x.onnx")]) != 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
