"""The runtime: model-file validation, ONNX Runtime provider choice, pre/post-processing, smoothing."""

import subprocess
import sys
import threading
import warnings

import cv2
import numpy as np
import pytest

from polypview.errors import ConfigError, ModelFileError
from polypview.inference.runtime import engine as runtime
from polypview.inference.runtime.engine import Prediction, Preprocess, TemporalSmoother, load_engine, postprocess

from onnx_models import GREEN_BGR, GREY_BGR, RED_BGR, color_info, make_bad_models, make_color_model, paint_frame


@pytest.fixture(scope="module")
def color_model(tmp_path_factory):
    return make_color_model(tmp_path_factory.mktemp("models") / "color.onnx")


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    return make_bad_models(tmp_path_factory.mktemp("bad"))


BAD_MESSAGES = {
    "no_metadata": "lacks polypview metadata",
    "k_mismatch": "probs has 2 channels, expected 1",
    "size_mismatch": "metadata input_size is 96x96",
    "one_channel": "image has 1 channels, expected 3",
    "wrong_input_name": "needs input 'image'",
    "garbage": "cannot be loaded by ONNX Runtime",
    "empty": "cannot be loaded by ONNX Runtime",
    "bad_json": "'classes' is not valid JSON",
}


@pytest.mark.parametrize("kind", sorted(BAD_MESSAGES))
def test_bad_model_file_gives_one_clear_error(bad_models, kind, capfd):
    with pytest.raises(ModelFileError) as err:
        load_engine(bad_models[kind])
    message = str(err.value)
    assert BAD_MESSAGES[kind] in message
    assert str(bad_models[kind]) in message and "\n" not in message
    assert capfd.readouterr() == ("", "")  # the message is the only output: no ONNX Runtime log


def test_missing_file_and_unknown_name(tmp_path, monkeypatch, color_model):
    with pytest.raises(ModelFileError, match="not found"):
        load_engine(tmp_path / "nope.onnx")
    monkeypatch.setattr(runtime, "find_models", lambda folder=None: {"color": color_model})
    with pytest.raises(ModelFileError, match=r"shipped name \(color\)"):
        load_engine("nanonet-z")


def test_default_model_needs_a_shipped_one(monkeypatch, tmp_path, color_model):
    monkeypatch.setattr(runtime, "find_models", lambda folder=None: {})
    with pytest.raises(ModelFileError, match="--model FILE.*polypview export"):
        load_engine(None)
    monkeypatch.setattr(runtime, "find_models", lambda folder=None: {"color": color_model})
    with load_engine(None) as engine:
        assert engine.name == "color"


def test_find_models_lists_onnx_stems(tmp_path, color_model):
    make_color_model(tmp_path / "b.onnx")
    make_color_model(tmp_path / "a.onnx")
    (tmp_path / "notes.md").write_text("not a model")
    assert list(runtime.find_models(tmp_path)) == ["a", "b"]


def test_unknown_backend_lists_valid_ones(color_model):
    with pytest.raises(ConfigError, match=r"valid: ort, torch \(also: auto, onnxruntime, pytorch\)"):
        load_engine(color_model, backend="tensorflow")


def test_cpu_provider_is_chosen_and_reported(color_model, caplog):
    caplog.set_level("INFO")
    with load_engine(color_model) as engine:
        assert engine.backend == "onnxruntime"
        assert engine.provider in ("CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider")
        if runtime.backend_module("ort").cuda_device_count() == 0:
            assert engine.provider == "CPUExecutionProvider"
    assert any(engine.provider in r.getMessage() for r in caplog.records)


def test_a_model_too_slow_for_30_fps_gets_every_core(monkeypatch, color_model, caplog):
    ort_backend = runtime.backend_module("ort")
    if ort_backend.all_threads() == ort_backend.default_threads():
        pytest.skip("one core: no more threads to give")
    caplog.set_level("INFO")
    monkeypatch.setattr(ort_backend, "SLOW_MODEL_S", 0.0)  # every model is "too slow"
    with load_engine(color_model) as engine:
        assert engine.threads == ort_backend.all_threads()
        assert engine.predict(np.zeros((48, 64, 3), np.uint8)).scores.shape == (64, 64)
    assert any("slower than 30 fps" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(ort_backend, "SLOW_MODEL_S", 1e9)  # a fast model keeps a core for the video
    with load_engine(color_model) as engine:
        assert engine.threads == ort_backend.default_threads()


def test_threads_given_are_kept_without_timing_the_model(monkeypatch, color_model):
    ort_backend = runtime.backend_module("ort")
    monkeypatch.setattr(ort_backend, "SLOW_MODEL_S", 0.0)
    monkeypatch.setattr(ort_backend, "model_seconds", lambda backend: pytest.fail("timed although --threads was given"))
    with load_engine(color_model, threads=1) as engine:
        assert engine.threads == 1


def test_model_timing_needs_a_fixed_input_size(color_model):
    ort_backend = runtime.backend_module("ort")
    backend = ort_backend.open_backend(color_model, threads=1)
    assert 0 < ort_backend.model_seconds(backend) < 5
    backend.inputs = [(backend.inputs[0][0], ["batch", 3, "height", "width"])]
    assert ort_backend.model_seconds(backend) is None


def test_gpu_provider_with_missing_libraries_is_skipped_quietly(monkeypatch, capfd, color_model):
    ort_backend = runtime.backend_module("ort")
    if ort_backend._provider_library_loads(ort_backend.CUDA):
        pytest.skip("the CUDA provider's libraries load on this machine")
    monkeypatch.setattr(ort_backend, "cuda_device_count", lambda: 1)  # pretend a GPU is present
    ort_backend.usable_providers.cache_clear()
    try:
        assert ort_backend.usable_providers("auto") == (ort_backend.CPU,)
        assert ort_backend.usable_providers("cuda") == (ort_backend.CPU,)
        with load_engine(color_model, provider="cuda") as engine:
            assert engine.provider == "CPUExecutionProvider"
    finally:
        ort_backend.usable_providers.cache_clear()
    assert capfd.readouterr() == ("", "")


def test_unknown_provider_lists_valid_ones(color_model):
    with pytest.raises(ConfigError, match="auto, tensorrt, cuda, cpu"):
        load_engine(color_model, provider="rocm")


def test_loading_prints_nothing_from_onnxruntime(color_model, tmp_path):
    """A fresh process (so the provider probe really runs) must not spam stdout/stderr."""
    code = f"from polypview.inference.runtime.engine import load_engine; load_engine({str(color_model)!r}).close()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


def test_loading_prints_nothing_in_process(color_model, capfd):
    load_engine(color_model, threads=1).close()
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def _numpy_reference(frame_bgr, info):
    h, w = info.input_size
    small = cv2.resize(frame_bgr, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    if info.color_order == "RGB":
        small = small[..., ::-1]
    x = (small - np.array(info.mean)) / np.array(info.std)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_preprocess_matches_numpy_reference(order):
    info = color_info(input_size=(48, 64), color_order=order, mean=(0.1, 0.5, 0.9), std=(0.2, 0.3, 0.4))
    frame = np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    blob = Preprocess(info)(frame)
    assert blob.shape == (1, 3, 48, 64) and blob.dtype == np.float32
    np.testing.assert_allclose(blob, _numpy_reference(frame, info), atol=1e-4)


def test_argmax_channels_matches_numpy():
    probs = np.random.default_rng(2).random((3, 20, 30)).astype(np.float32)
    probs[:, 0, :5] = 0.5  # ties go to the first channel, as with numpy
    assert np.array_equal(runtime.argmax_channels(probs), probs.argmax(axis=0))


def test_fast_shrink_stays_close_to_area_averaging():
    """Large frames are halved first (fast path); the result must stay near a single INTER_AREA."""
    noise = np.random.default_rng(1).integers(0, 256, (540, 960, 3), dtype=np.uint8)
    frame = cv2.GaussianBlur(noise, (0, 0), 3)  # texture at the scale of endoscopy video
    fast = runtime.shrink(frame, (64, 80)).astype(int)
    exact = cv2.resize(frame, (80, 64), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(fast - exact).mean() < 0.2 * frame.std()
    assert np.abs(fast - exact).max() < 12


def test_postprocess_sum_for_softmax_max_for_sigmoid():
    probs = np.array([[[0.3, 0.1]], [[0.4, 0.05]]], np.float32)  # K=2, 1x2
    scores, labels = postprocess(probs, "softmax")
    np.testing.assert_allclose(scores, [[0.7, 0.15]], rtol=1e-6)
    assert labels.tolist() == [[1, 0]] and labels.dtype == np.uint8
    scores, _ = postprocess(probs, "sigmoid")
    np.testing.assert_allclose(scores, [[0.4, 0.1]], rtol=1e-6)


FRAME_BOXES = [((16, 16, 48, 40), RED_BGR), ((100, 60, 40, 40), GREEN_BGR)]


@pytest.mark.parametrize("kw", [
    {},
    {"color_order": "BGR", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    {"classes": 2, "activation": "sigmoid"},
    {"dynamic_hw": True},
], ids=["plain", "imagenet-bgr", "sigmoid", "dynamic-hw"])
def test_color_model_marks_the_painted_boxes(tmp_path, kw):
    path = make_color_model(tmp_path / "m.onnx", input_size=(60, 80), **kw)
    frame = paint_frame((120, 160), FRAME_BOXES, GREY_BGR)
    with load_engine(path) as engine:
        p = engine.predict(frame)
    assert p.scores.shape == (60, 80) and p.scores.dtype == np.float32 and p.labels.dtype == np.uint8
    assert set(p.timings) == {"preprocess", "inference", "postprocess"}
    # Model resolution is half the frame: box interiors, away from resampled edges.
    red, green = (slice(10, 26), slice(10, 30)), (slice(32, 48), slice(52, 68))
    assert (p.scores[red] > 0.9).all() and (p.labels[red] == 0).all()
    assert (p.scores[green] > 0.9).all() and (p.labels[green] == 1).all()
    background = np.ones_like(p.scores, bool)
    background[6:30, 6:34] = background[28:52, 48:72] = False
    assert (p.scores[background] < 0.1).all()


def test_single_class_model(tmp_path):
    path = make_color_model(tmp_path / "polyp.onnx", classes=1, activation="sigmoid")
    frame = paint_frame((64, 64), [((0, 0, 32, 64), RED_BGR), ((32, 0, 32, 64), GREEN_BGR)])
    with load_engine(path) as engine:
        p = engine.predict(frame)
    assert engine.info.classes == ("polyp",)
    assert p.scores[:, :28].min() > 0.9 and p.scores[:, 36:].max() < 0.1 and not p.labels.any()


def test_predict_on_roi_crop(color_model):
    frame = paint_frame((120, 160), [((0, 0, 80, 120), RED_BGR)], GREY_BGR)
    with load_engine(color_model) as engine:
        whole = engine.predict(frame)
        right = engine.predict(frame, roi=(80, 0, 80, 120))
        with pytest.raises(ConfigError, match="outside"):
            engine.predict(frame, roi=(100, 0, 80, 120))
    assert whole.roi is None and right.roi == (80, 0, 80, 120)
    assert whole.scores[:, :28].min() > 0.9 and right.scores.max() < 0.1


def _prediction(value, shape=(4, 4), roi=None):
    return Prediction(np.full(shape, value, np.float32), np.zeros(shape, np.uint8), {"inference": 0.01}, roi)


def test_smoother_averages_last_n_and_resets_on_shape_change():
    smooth = TemporalSmoother(3)
    outs = [smooth(_prediction(v)) for v in (0.0, 0.3, 0.6, 0.9)]
    assert [round(float(o.scores[0, 0]), 4) for o in outs] == [0.0, 0.15, 0.3, 0.6]
    assert outs[-1].timings == {"inference": 0.01}
    fresh = smooth(_prediction(0.2, shape=(8, 8)))
    assert np.allclose(fresh.scores, 0.2)
    moved = smooth(_prediction(0.4, shape=(8, 8), roi=(1, 1, 5, 5)))
    assert np.allclose(moved.scores, 0.4)


def test_smoother_off_returns_prediction_unchanged():
    p = _prediction(0.7)
    assert TemporalSmoother(0)(p) is p and TemporalSmoother(1)(p) is p


def test_runtime_import_does_not_import_torch():
    code = ("import sys, polypview.inference.runtime.engine, polypview.inference.runtime.backend_ort\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# ---- torch backend (skipped when torch or the model zoo is unavailable) ----------------------


def _torch_and_zoo():
    torch = pytest.importorskip("torch", reason="the torch backend needs PyTorch")
    models = pytest.importorskip("polypview.inference.models", reason="needs the model zoo")
    if "nanonet-a-neo" not in models.list_models():
        pytest.skip("nanonet-a-neo is not registered")
    return torch, models


def _export_with_checkpoint(folder, torch, models, arch="nanonet-a-neo", size=64):
    """An exported ONNX file of a random `arch` with metadata, and its checkpoint beside it."""
    import onnx

    torch.manual_seed(0)
    net = models.create_model(arch).eval()  # with the aux branch, as training saves it
    head = models.get_spec(arch).head

    class Probs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return models.foreground_probs(head, self.net(x))

    onnx_path, pt_path = folder / f"{arch}.onnx", folder / f"{arch}.pt"
    torch.onnx.export(Probs(), torch.zeros(1, 3, size, size), str(onnx_path), input_names=["image"],
                      output_names=["probs"], opset_version=17, dynamo=False)
    proto = onnx.load(str(onnx_path))
    onnx.helper.set_model_props(proto, models.model_info(arch, input_size=(size, size)).to_metadata())
    onnx.save(proto, str(onnx_path))
    torch.save({"state_dict": net.state_dict()}, str(pt_path))
    return onnx_path, pt_path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(torch, onnx path, checkpoint path) of a random nanonet-a-neo exported once per module."""
    torch, models = _torch_and_zoo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter announces its retirement
        onnx_path, pt_path = _export_with_checkpoint(tmp_path_factory.mktemp("torch"), torch, models)
    return torch, onnx_path, pt_path


def test_torch_backend_matches_onnxruntime(exported):
    _, onnx_path, _ = exported
    frame = np.random.default_rng(3).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    with load_engine(onnx_path, backend="torch", device="cpu") as t, load_engine(onnx_path) as o:
        assert t.backend == "torch" and t.provider == "cpu fp32"
        pt, po = t.predict(frame), o.predict(frame)
    np.testing.assert_allclose(pt.scores, po.scores, atol=1e-4)
    assert (pt.labels == po.labels).mean() > 0.99


def test_torch_backend_missing_or_mismatched_checkpoint(exported, tmp_path):
    torch, onnx_path, _ = exported
    with pytest.raises(ModelFileError, match="checkpoint .*other.pt not found"):
        load_engine(onnx_path, backend="torch", checkpoint=tmp_path / "other.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}}, str(wrong))
    with pytest.raises(ModelFileError, match="does not fit nanonet-a-neo"):
        load_engine(onnx_path, backend="torch", checkpoint=wrong, device="cpu")
    unknown = make_color_model(tmp_path / "u.onnx", architecture="no-such-net")
    torch.save({}, str(tmp_path / "u.pt"))
    with pytest.raises(ModelFileError, match="unknown model 'no-such-net'"):
        load_engine(unknown, backend="torch", device="cpu")


def test_torch_backend_takes_the_weights_from_an_onnx_file_alone(exported, tmp_path):
    _, onnx_path, _ = exported  # exported from the trained module (no inference graph), as older versions did
    alone = tmp_path / onnx_path.name
    alone.write_bytes(onnx_path.read_bytes())
    frame = np.random.default_rng(4).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    with load_engine(alone, backend="torch", device="cpu") as t, load_engine(alone) as o:
        pt, po = t.predict(frame), o.predict(frame)
    np.testing.assert_allclose(pt.scores, po.scores, atol=1e-4)


def _shipped_copy(tmp_path, name="nanonet-c-neo", edit=None):
    """A shipped model file copied alone (no .pt beside it), optionally edited (onnx proto -> None)."""
    import onnx

    from polypview.inference.runtime.engine import assets_dir

    source = assets_dir() / f"{name}.onnx"
    if not source.is_file():
        pytest.skip(f"{name} is not shipped")
    proto = onnx.load(str(source))
    if edit is not None:
        edit(proto)
    path = tmp_path / f"{name}.onnx"
    onnx.save(proto, str(path))
    return path


def test_a_shipped_model_runs_on_torch_from_its_onnx_file(tmp_path):
    _torch_and_zoo()
    path = _shipped_copy(tmp_path)
    frame = np.random.default_rng(5).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    with load_engine(path, backend="torch", device="cpu") as t, load_engine(path) as o:
        pt, po = t.predict(frame), o.predict(frame)
    np.testing.assert_allclose(pt.scores, po.scores, atol=1e-4)
    assert (pt.labels == po.labels).mean() > 0.999


def test_onnx_weights_of_another_architecture_or_graph_are_refused(tmp_path):
    _torch_and_zoo()

    def other_architecture(proto):
        for prop in proto.metadata_props:
            if prop.key == "polypview.architecture":
                prop.value = '"nanonet-a-neo"'

    (tmp_path / "a").mkdir()
    path = _shipped_copy(tmp_path / "a", edit=other_architecture)
    with pytest.raises(ModelFileError, match="not an export of this architecture|convolutions"):
        load_engine(path, backend="torch", device="cpu")

    def sigmoid_for_relu(proto):  # the same weights in a graph computing something else
        next(n for n in proto.graph.node if n.op_type == "Relu").op_type = "Sigmoid"

    path = _shipped_copy(tmp_path, edit=sigmoid_for_relu)
    with pytest.raises(ModelFileError, match="other outputs than ONNX Runtime"):
        load_engine(path, backend="torch", device="cpu")


def test_input_size_runs_the_network_at_another_size_on_torch_only(tmp_path):
    _torch_and_zoo()
    path = _shipped_copy(tmp_path)
    frame = np.random.default_rng(6).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    with load_engine(path, backend="torch", device="cpu", input_size=(256, 320)) as engine:
        assert engine.info.input_size == (256, 320)
        assert engine.predict(frame).scores.shape == (256, 320)
    with pytest.raises(ConfigError, match="takes 192x192 inputs only on onnxruntime"):
        load_engine(path, input_size=(256, 256))
    with load_engine(path, input_size=(192, 192)) as engine:  # its own size is fine anywhere
        assert engine.predict(frame).scores.shape == (192, 192)
    from polypview.settings import parse_input_size

    assert parse_input_size("352") == (352, 352) and parse_input_size("256x320") == (256, 320)
    for bad in ("350", "0", "x", "256x320x3", "-32"):
        with pytest.raises(ConfigError, match="multiples of 32"):
            parse_input_size(bad)


def _cuda_torch():
    torch, _ = _torch_and_zoo()
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (run on the device machine: see tools/gpu_check.sh)")
    return torch


def test_cuda_graph_replay_matches_the_eager_module(tmp_path):
    _cuda_torch()
    from polypview.inference.runtime import backend_torch

    path = _shipped_copy(tmp_path)
    graphs = backend_torch.open_backend(path, device="cuda")
    eager = backend_torch.open_backend(path, device="cuda", cuda_graphs=False)
    assert graphs.provider == "cuda fp16 CUDA graph" and eager.provider == "cuda fp16"
    rng = np.random.default_rng(7)
    for shape in ((1, 3, 192, 192), (1, 3, 192, 192), (1, 3, 256, 256)):  # a second shape: a second graph
        blob = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(graphs.run(blob), eager.run(blob), atol=2e-3)
    assert len(graphs._captured) == 2
    results = []
    blobs = [rng.standard_normal((1, 3, 192, 192)).astype(np.float32) for _ in range(8)]
    workers = [threading.Thread(target=lambda b=b: results.append((b, graphs.run(b)))) for b in blobs]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for blob, out in results:  # callers from several threads each get their own input's output
        np.testing.assert_allclose(out, eager.run(blob), atol=2e-3)
