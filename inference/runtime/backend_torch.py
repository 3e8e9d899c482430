"""PyTorch backend (development and GPU benchmarking): a registered architecture plus a checkpoint.

The ONNX model file still supplies the metadata (pre-processing, classes); the weights come from
a PyTorch checkpoint, by default the ``.pt`` file beside it (``model.onnx`` -> ``model.pt``), or,
when there is none, from the ONNX file itself (see onnxweights.py; checked against ONNX Runtime
on a random input before use).
A checkpoint is a state dict, or a dict holding one under ``"state_dict"`` or ``"model"``, with
optional ``"model_options"`` (keyword arguments of the architecture's builder) and ``"metadata"``
(ONNX-style metadata props, used when no ONNX file is given). On CUDA it runs in fp16,
channels-last, and replays a CUDA graph captured per input shape (one launch instead of one per
layer: the small networks here are launch-bound on a GPU); on CPU in fp32.
"""

from __future__ import annotations

import inspect
import logging
import threading
from pathlib import Path

import numpy as np

from polypview.errors import ConfigError, ModelFileError
from polypview.inference.runtime.modelfile import INPUT_NAME, OUTPUT_NAME, ModelInfo

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ConfigError(
            "the torch backend needs PyTorch: install polypview[train], or use --backend ort"
        ) from None
    return torch


def _import_models():
    try:
        from polypview.inference import models
    except ImportError as exc:
        raise ModelFileError(f"the torch backend needs polypview.inference.models ({exc})") from None
    return models


def read_onnx_header(path: Path) -> tuple[dict, list, list]:
    """(metadata props, inputs, outputs) of an ONNX file, without loading its weights."""
    try:
        import onnx  # noqa: F401 (load_proto needs it)
    except ImportError:
        raise ConfigError("reading model metadata for the torch backend needs onnx: install polypview[train]") from None
    from polypview.inference.runtime.onnxweights import load_proto

    proto = load_proto(path, load_external_data=False)
    weights = {init.name for init in proto.graph.initializer}
    return ({p.key: p.value for p in proto.metadata_props},
            [(v.name, _shape(v)) for v in proto.graph.input if v.name not in weights],
            [(v.name, _shape(v)) for v in proto.graph.output])


def _shape(value_info) -> list:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]


def _checkpoint_path(model_path: Path, checkpoint) -> Path | None:
    """The checkpoint to load; None when the weights are to come from the ONNX file itself."""
    path = Path(checkpoint) if checkpoint is not None else model_path.with_suffix(".pt")
    if checkpoint is None and not path.is_file() and model_path.suffix == ".onnx" and model_path.is_file():
        return None
    if not path.is_file():
        raise ModelFileError(
            f"checkpoint {path} not found: the torch backend needs the PyTorch weights "
            "(pass checkpoint=FILE.pt, or use --backend ort)"
        )
    return path


def _load_checkpoint(torch, path: Path) -> dict:
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"checkpoint {path} cannot be read by PyTorch ({exc})") from None
    if not isinstance(ckpt, dict):
        raise ModelFileError(f"checkpoint {path} holds a {type(ckpt).__name__}, expected a state dict")
    return ckpt


def _state_dict(ckpt: dict) -> dict:
    for key in ("state_dict", "model"):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    return ckpt


def build_network(models, info: ModelInfo, ckpt: dict, source: str):
    """The registered architecture of `info` with the checkpoint's weights loaded (strictly)."""
    try:
        spec = models.get_spec(info.architecture)
    except ConfigError as exc:
        raise ModelFileError(f"{source}: {exc}") from None
    expected = len(models.model_info(info.architecture).classes)
    if expected != len(info.classes):
        raise ModelFileError(f"{source}: {info.architecture} predicts {expected} classes, metadata lists {len(info.classes)}")
    options = dict(ckpt.get("model_options") or {})
    if "aux" in _builder_params(spec.builder):
        options.setdefault("aux", False)  # the training-only branch is not needed to infer
    net = models.create_model(info.architecture, **options)
    state = {k: v for k, v in _state_dict(ckpt).items() if not k.startswith("aux.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFileError(
            f"{source}: checkpoint does not fit {info.architecture} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}): was it trained with another architecture?"
        )
    return net.for_inference(), spec.head  # the same function, BNs folded (see SegmentationModel.for_inference)


PARITY_LIMIT = 1e-3  # max |probs difference| between the rebuilt module and ONNX Runtime (same fp32 weights)


def network_from_onnx(torch, models, info: ModelInfo, path: Path):
    """The registered architecture's inference module with the weights of model file `path`, checked."""
    from polypview.inference.runtime.onnxweights import load_onnx_weights

    source = f"model file {path}"
    try:
        spec = models.get_spec(info.architecture)
    except ConfigError as exc:
        raise ModelFileError(f"{source}: {exc}") from None
    options = {"aux": False} if "aux" in _builder_params(spec.builder) else {}
    model = models.create_model(info.architecture, **options)
    # files exported by this version hold the inference module; older ones the trained module itself
    net = model.for_inference()
    try:
        load_onnx_weights(torch, net, path, tuple(info.input_size), info.architecture)
    except ModelFileError as first:
        if net is model:
            raise
        net = model.eval()
        try:
            load_onnx_weights(torch, net, path, tuple(info.input_size), info.architecture)
        except ModelFileError:
            raise first from None
    diff = _parity(torch, net, spec.head, models.foreground_probs, path, info)
    if diff > PARITY_LIMIT:
        raise ModelFileError(f"{source}: its weights loaded into PyTorch give other outputs than ONNX Runtime "
                             f"(max |diff| {diff:.2g}): pass the .pt checkpoint")
    log.info("torch backend: weights of %s taken from the ONNX file (max |diff| vs ONNX Runtime %.1e)", path.name, diff)
    return net, spec.head


def _parity(torch, net, head: str, foreground_probs, path: Path, info: ModelInfo) -> float:
    """Max |difference| of the probabilities of `net` and ONNX Runtime (CPU) on one random input."""
    from polypview.inference.runtime.backend_ort import cpu_session

    x = np.random.default_rng(0).standard_normal((1, 3, *info.input_size)).astype(np.float32)
    session = cpu_session(path)
    expected = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    with torch.no_grad():
        got = foreground_probs(head, net(torch.from_numpy(x))).numpy()
    return float(np.abs(got - expected).max())


def _builder_params(builder) -> set:
    return set(inspect.signature(builder).parameters)


class TorchBackend:
    """A PyTorch module on CPU (fp32) or CUDA (fp16, channels-last, CUDA graphs)."""

    name = "torch"

    def __init__(self, torch, net, head: str, foreground_probs, device: str, half: bool, header,
                 cuda_graphs: bool = True):
        self.metadata, self.inputs, self.outputs = header
        # the module is fully convolutional: it takes any height and width (runtime.load_engine's input_size)
        self.inputs = [(name, [*shape[:2], None, None]) if len(shape) == 4 else (name, shape)
                       for name, shape in self.inputs]
        self._torch = torch
        self._head, self._probs = head, foreground_probs
        self._device = torch.device(device)
        self._dtype = torch.float16 if half else torch.float32
        self._format = torch.channels_last if device == "cuda" else torch.contiguous_format
        self._net = net.to(self._device, dtype=self._dtype, memory_format=self._format)
        self._graphs = bool(cuda_graphs) and self._device.type == "cuda"
        self._captured: dict[tuple, tuple] = {}  # input shape -> (graph, static input, static output)
        self._graph_lock = threading.Lock()  # a graph's static buffers serve one caller at a time (sync workers)
        self.provider = f"{device} {'fp16' if half else 'fp32'}" + (" CUDA graph" if self._graphs else "")

    def _forward(self, x):
        return self._probs(self._head, self._net(x).float())

    def run(self, blob: np.ndarray) -> np.ndarray:
        """probs (N, K, h, w) float32 for a normalised blob (N, 3, h, w)."""
        torch = self._torch
        if self._graphs:
            with self._graph_lock:
                captured = self._captured.get(blob.shape) or self._capture(blob.shape)
                if captured is not None:
                    graph, static_in, static_out = captured
                    static_in.copy_(torch.from_numpy(blob))  # host -> device, cast and layout in one copy
                    graph.replay()
                    return static_out.cpu().numpy()  # .cpu() waits for the GPU, so timings are honest
        x = torch.from_numpy(blob).to(self._device, dtype=self._dtype, memory_format=self._format)
        with torch.inference_mode():
            probs = self._forward(x)
        return probs.cpu().numpy()

    def _capture(self, shape: tuple):
        """Capture the forward pass for this input shape as a CUDA graph; None (eager from now on) if it fails."""
        torch = self._torch
        try:
            static_in = torch.zeros(shape, device=self._device, dtype=self._dtype).contiguous(memory_format=self._format)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.no_grad():
                for _ in range(3):  # warm-up outside the graph (cuDNN picks its algorithms here)
                    self._forward(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.no_grad(), torch.cuda.graph(graph):
                static_out = self._forward(static_in)
        except Exception as exc:  # an op that cannot be captured: run eagerly, say so once
            log.warning("torch backend: CUDA graph capture failed (%s); running without graphs", exc)
            self._graphs = False
            self.provider = self.provider.replace(" CUDA graph", "")
            return None
        self._captured[tuple(shape)] = (graph, static_in, static_out)
        return self._captured[tuple(shape)]

    def close(self) -> None:
        self._net = None
        self._captured.clear()
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()


def _pick_device(torch, device: str) -> str:
    if device not in DEVICES:
        raise ConfigError(f"unknown torch device {device!r}; valid: {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("torch device 'cuda' requested but PyTorch sees no CUDA GPU; use device='cpu'")
    return device


def open_backend(path: Path, threads: int | None = None, checkpoint=None, device: str = "auto",
                 half: bool | None = None, cuda_graphs: bool = True):
    """Open the torch backend for model file `path` (.onnx, or a .pt checkpoint carrying metadata)."""
    torch = _import_torch()
    models = _import_models()
    path = Path(path)
    if path.suffix == ".pt" and checkpoint is None:
        checkpoint, onnx_path = path, path.with_suffix(".onnx")
    else:
        onnx_path = path
    ckpt_path = _checkpoint_path(path, checkpoint)
    if ckpt_path is None:  # an ONNX file alone: rebuild the module from its weights
        header = read_onnx_header(onnx_path)
        info = ModelInfo.from_metadata(header[0], source=f"model file {path}")
        net, head = network_from_onnx(torch, models, info, onnx_path)
    else:
        ckpt = _load_checkpoint(torch, ckpt_path)
        header = _header(onnx_path, ckpt)
        info = ModelInfo.from_metadata(header[0], source=f"model file {path}")
        net, head = build_network(models, info, ckpt, f"model file {path}")
    if threads:
        torch.set_num_threads(int(threads))
    device = _pick_device(torch, device)
    half = (device == "cuda") if half is None else bool(half)
    backend = TorchBackend(torch, net, head, models.foreground_probs, device, half, header, cuda_graphs)
    log.info("torch backend: %s on %s", info.architecture, backend.provider)
    return backend


def _header(onnx_path: Path, ckpt: dict) -> tuple[dict, list, list]:
    """Metadata and I/O shapes from the ONNX file, else from the checkpoint's "metadata"."""
    if onnx_path.is_file():
        return read_onnx_header(onnx_path)
    if isinstance(ckpt.get("metadata"), dict):
        metadata = ckpt["metadata"]
        io = [(INPUT_NAME, [None, 3, None, None])], [(OUTPUT_NAME, [None, None, None, None])]
        return metadata, *io
    raise ModelFileError(
        f"model file {onnx_path} not found and the checkpoint carries no metadata: "
        "pass the exported .onnx file"
    )
