"""`polypview export`: a training checkpoint -> one ONNX model file the app can run.

The graph maps ``image`` (N, 3, H, W, normalised) to ``probs`` = the foreground-class
probabilities of the model-file contract (``polypview.inference.runtime.modelfile``), with a dynamic
batch axis and the ``ModelInfo`` metadata. ``--fp16`` stores the weights as float16 with a
Cast back to float32 in front of each use, so the file halves while CPU inference stays fp32.
Every export is checked: ONNX Runtime must agree with PyTorch on random inputs, else the
file is removed and ModelFileError says by how much they differ. ``--int8`` quantizes the
checked fp32 graph with calibration on training images (``polypview.inference.training.quantize``) and
checks the labels it gives on validation images against the fp32 file.
"""

from __future__ import annotations

import dataclasses
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polypview.errors import ConfigError, ModelFileError, OutputError
from polypview.inference.runtime.modelfile import INPUT_NAME, OUTPUT_NAME

TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2}  # max |probs_ort - probs_torch|
PARITY_BATCH = 2  # exercise the dynamic batch axis
PARITY_TRIALS = 2


def add_arguments(parser) -> None:
    """Command-line options of `polypview export`."""
    parser.add_argument("checkpoint", type=Path,
                        help="training checkpoint (best.pt / last.pt), or a model file (.onnx) to copy with new "
                             "drawing defaults (--min-peak) or version; its weights stay as they are")
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="store weights as float16 (inference still fp32)")
    precision.add_argument("--int8", action="store_true",
                           help="int8 weights and activations (static QDQ, calibrated on NeoPolyp training images)")
    parser.add_argument("--calibration", type=int, default=None, metavar="N",
                        help="--int8: training images to calibrate on (default 64)")
    parser.add_argument("--data", type=Path, default=None,
                        help="--int8: NeoPolyp-Small folder (default: $POLYPVIEW_DATA or ../shared/data/neopolyp_small)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset of the exported graph (default 17)")
    parser.add_argument("--size", type=int, default=None, help="input size (default: the training size)")
    parser.add_argument("--version", default=None, help="model version string (default: package version + epoch)")
    parser.add_argument("--pt", action="store_true",
                        help="also write OUTPUT with .pt: fp16 inference weights for the torch backend")
    parser.add_argument("--card", type=Path, default=None, metavar="EVAL_JSON",
                        help="also write a model card (OUTPUT with .md) with the test results of `polypview eval`")
    parser.add_argument("--min-peak", type=float, default=None, metavar="P",
                        help="the model's own region peak, stored in the file: the viewer, batch and eval --video "
                             "draw a region only if its highest score reaches P unless told otherwise "
                             "(default: the --metadata-from file's, else none: the app's 0.9)")
    parser.add_argument("--metadata-from", type=Path, default=None, metavar="MODEL.onnx",
                        help="re-export with this model file's metadata (version, training data, metrics); "
                             "CHECKPOINT may then be a shipped weights file (export --pt), e.g. "
                             "`export assets/nanonet-a-neo.pt --metadata-from assets/nanonet-a-neo.onnx -o new.onnx --fp16`")


def run(args) -> int:
    """Entry point of `polypview export`."""
    from polypview.inference.training.checkpoints import load_checkpoint, model_from_checkpoint, training_view

    if Path(args.checkpoint).suffix.lower() == ".onnx":
        return relabel(args)
    if args.metadata_from is not None:
        if args.card:
            raise ConfigError("--card needs a training checkpoint (its run's history); "
                              "--metadata-from keeps the model card of the file it re-exports")
        ckpt = training_view(load_checkpoint(args.checkpoint, shipped_weights=True))
        info = info_from_model_file(args.metadata_from, ckpt["model"], args.size, args.version)
        evaluation = None
    else:
        ckpt = load_checkpoint(args.checkpoint)
        size = args.size or int(ckpt.get("input_size") or 0) or None
        evaluation = read_eval(args.card) if args.card else None
        info = info_from_checkpoint(ckpt, size, args.version, evaluation)
    info = with_overlay(info, args.min_peak)
    model = model_from_checkpoint(ckpt)
    if args.int8:
        report = export_int8(model, ckpt["model"], args.output, info=info, opset=args.opset, data=args.data,
                             calibration=args.calibration)
    else:
        report = export_model(model, ckpt["model"], args.output, info=info, fp16=args.fp16, opset=args.opset)
    print(f"wrote {args.output} ({report.size_bytes / 1e6:.2f} MB, {report.precision}, "
          f"parity max |diff| {report.max_abs_diff:.2e} <= {report.tolerance:g})")
    if report.quant is not None:
        q = report.quant
        print(f"int8 vs fp32 on {q.images} validation images: {100 * q.agreement:.2f} % of pixels same label, "
              f"mean |diff| of probs {q.mean_abs_diff:.2e} (calibrated on {q.calibration_images} training images)")
    if args.pt:
        weights = write_torch_weights(args.output.with_suffix(".pt"), ckpt)
        print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB)")
    if evaluation is not None:
        from polypview.inference.training.modelcard import write_card

        card = write_card(args.output.with_suffix(".md"), ckpt, info, report, evaluation)
        print(f"wrote {card}")
    return 0


def with_overlay(info, min_peak: float | None):
    """`info` with its own region peak set (None: unchanged); ConfigError outside [0, 1]."""
    if min_peak is None:
        return info
    if not 0.0 <= min_peak <= 1.0:
        raise ConfigError(f"--min-peak must lie in [0, 1], got {min_peak:g}")
    return dataclasses.replace(info, overlay={**info.overlay, "min_peak": float(min_peak)})


def relabel(args) -> int:
    """`export MODEL.onnx -o OUT.onnx`: the same graph and weights with new metadata (drawing defaults, version)."""
    from polypview.inference.runtime.modelfile import KEY_PREFIX, ModelInfo
    from polypview.inference.runtime.onnxweights import load_proto

    weights_options = [flag for flag, given in (("--fp16", args.fp16), ("--int8", args.int8), ("--pt", args.pt),
                                                ("--size", args.size), ("--metadata-from", args.metadata_from),
                                                ("--card", args.card)) if given]
    if weights_options:
        raise ConfigError(f"{args.checkpoint} is a model file, whose weights and card are copied as they are: "
                          f"{', '.join(weights_options)} need a training checkpoint")
    source = Path(args.checkpoint)
    if not source.is_file():
        raise ModelFileError(f"model file not found: {source}")
    proto = load_proto(source)
    props = {p.key: p.value for p in proto.metadata_props}
    info = ModelInfo.from_metadata(props, source=f"model file {source}")
    if args.version:
        info = dataclasses.replace(info, version=args.version)
    info = with_overlay(info, args.min_peak)
    _check_writable(args.output)
    _set_metadata(proto, {**{k: v for k, v in props.items() if not k.startswith(KEY_PREFIX)}, **info.to_metadata()})
    _save(proto, args.output)
    print(f"wrote {args.output} (the weights of {source}; drawing defaults {info.overlay or 'none'}, "
          f"version {info.version})")
    return 0


def read_eval(path: Path) -> dict:
    """The first result of a `polypview eval` JSON file (plus the data/split it was measured on)."""
    import json

    try:
        payload = json.loads(Path(path).read_text())
        return {**payload["results"][0], "data": payload.get("data"), "split": payload.get("split")}
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise ConfigError(f"--card {path}: not a `polypview eval` JSON file ({exc})") from None


def info_from_model_file(path: Path, architecture: str, size: int | None = None, version: str | None = None):
    """The ModelInfo of an existing model file, checked to describe `architecture` (for re-exports)."""
    from polypview.inference.runtime.backend_torch import read_onnx_header
    from polypview.inference.runtime.modelfile import ModelInfo

    if not Path(path).is_file():
        raise ModelFileError(f"--metadata-from {path}: model file not found")
    info = ModelInfo.from_metadata(read_onnx_header(Path(path))[0], source=f"model file {path}")
    if info.architecture != architecture:
        raise ConfigError(f"--metadata-from {path} describes {info.architecture}, the weights are {architecture}")
    changes = {"input_size": (size, size)} if size else {}
    if version:
        changes["version"] = version
    return dataclasses.replace(info, **changes) if changes else info


def write_torch_weights(path: Path, ckpt: dict) -> Path:
    """fp16 inference weights (no training-only aux branch) for the torch backend, beside the .onnx."""
    import torch

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()
             if not (k == "aux" or k.startswith("aux."))}
    options = {k: v for k, v in ckpt.get("model_kwargs", {}).items() if k != "aux"}
    # the commands that trained the weights, so a fine-tune started from this file (`train --init`) lists them
    commands = [c for c in (ckpt.get("commands") or [ckpt.get("command", "")]) if c]
    try:
        torch.save({"architecture": ckpt["model"], "state_dict": state, "model_options": options,
                    "commands": commands}, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how well ONNX Runtime agreed with PyTorch."""

    path: Path
    size_bytes: int
    precision: str
    max_abs_diff: float
    tolerance: float
    quant: object = None  # quantize.QuantReport of an int8 file (its fp32 graph passed the parity check)


def package_version() -> str:
    """The installed polypview version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("polypview")
    except PackageNotFoundError:
        return "0"


def info_from_checkpoint(ckpt: dict, size: int | None = None, version: str | None = None,
                         evaluation: dict | None = None):
    """ModelInfo for a checkpoint: the registry's fields plus training data, metrics and version.

    metrics = the checkpoint's stored validation eval, plus the test-split micro scores of a
    `polypview eval` result when given.
    """
    from polypview.inference.models import model_info

    metrics = _plain(ckpt.get("eval", {}))
    if evaluation is not None:
        metrics = {"val": metrics, "test": {"split": evaluation.get("split"), "images": evaluation.get("images"),
                                            **_plain(evaluation.get("micro", {}))}}
    overrides = dict(
        version=version or f"{package_version()}+{ckpt['model']}." + (
            f"blend{len(ckpt['blend'])}" if ckpt.get("blend") else f"e{ckpt.get('epoch', 0)}"),
        training_data=ckpt.get("training_data", ""),
        metrics=metrics,
    )
    if size:
        overrides["input_size"] = (size, size)
    description = checkpoint_description(ckpt)
    if description:
        overrides["description"] = description
    return model_info(ckpt["model"], **overrides)


def checkpoint_description(ckpt: dict) -> str:
    """The model file's description for a checkpoint: the network's, with the views it was trained on, or
    the one a blend took from its files; "" for the registry's own."""
    if ckpt.get("description"):
        return str(ckpt["description"])
    views = training_views(ckpt.get("recipe") or {})
    if not views:
        return ""
    from polypview.inference.models import get_spec

    return f"{get_spec(ckpt['model']).description}. {views}"


def training_views(recipe: dict) -> str:
    """What the network saw in training, for the model file: the app squeezes its frame (16:9, or the
    endoscope's area of it) into the square input, so a model trained on such views says so."""
    from polypview.inference.training.augment import EDGE_SHARE, SIZED_AUGMENTS, VideoCrop

    if recipe.get("augment") not in SIZED_AUGMENTS:  # the camera-like views
        return ""
    crop, size = VideoCrop(out=8), recipe.get("size")
    edge = (f"; {100 * EDGE_SHARE:g} % of the polyp views with the polyp cut by the frame's edge"
            if recipe["augment"] == "video_edge" else "")
    return (f"Trained on camera-like views at {size}x{size}: windows of aspect (w/h) {crop.aspect[0]:g}-"
            f"{crop.aspect[1]:g} and zoom {crop.zoom[0]:g}-{crop.zoom[1]:g}x squeezed to the square input, as the app "
            f"squeezes a 16:9 frame or the endoscope's area; rotation +-{crop.rotate:g} deg, flips, blur, colour "
            f"jitter; polyp-free close-ups included{edge}")


def _plain(value):
    """JSON-safe copy (tensors and numpy scalars become floats)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def inference_module(model):
    """The module to export: the model's inference graph (`SegmentationModel.for_inference`), else itself."""
    to_inference = getattr(model, "for_inference", None)
    return to_inference() if callable(to_inference) else model.eval()


class ProbsGraph:
    """Factory for the exported module: image -> foreground_probs(head, model(image))."""

    def __new__(cls, model, head: str):
        from torch import nn

        from polypview.inference.models import foreground_probs

        class _Probs(nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, image):
                return foreground_probs(head, self.model(image))

        return _Probs().eval()


def export_model(model, name: str, path: str | Path, info=None, fp16: bool = False, opset: int = 17,
                 size: int | None = None, tolerance: float | None = None) -> ExportReport:
    """Export `model` (registered as `name`) to `path`, check parity, return a report."""
    from polypview.inference.models import get_spec, model_info

    spec = get_spec(name)
    info = info or model_info(name, **({"input_size": (size, size)} if size else {}))
    height, width = (size, size) if size else info.input_size
    path = Path(path)
    _check_writable(path)
    graph = ProbsGraph(model.eval(), spec.head)
    # The file holds the model's inference graph (BNs folded, cheaper layout of the same function);
    # the parity check below compares it with the training-time module itself.
    proto = _to_onnx(ProbsGraph(inference_module(model), spec.head), (height, width), opset)
    if fp16:
        proto = weights_to_fp16(proto)
    _set_metadata(proto, info.to_metadata())
    _save(proto, path)
    precision = "fp16" if fp16 else "fp32"
    tol = TOLERANCE[precision] if tolerance is None else tolerance
    try:
        diff = check_parity(graph, path, (height, width), tol)
    except ModelFileError:
        path.unlink(missing_ok=True)
        raise
    return ExportReport(path, path.stat().st_size, precision, diff, tol)


def export_int8(model, name: str, path: str | Path, info=None, opset: int = 17, data: Path | None = None,
                calibration: int | None = None, check: int | None = None) -> ExportReport:
    """Export fp32 (parity-checked), then quantize to int8 at `path` with NeoPolyp calibration images."""
    import dataclasses
    import tempfile

    from polypview.inference.training import quantize
    from polypview.inference.training.data import neopolyp_dir

    path = Path(path)
    _check_writable(path)
    data = Path(data) if data else neopolyp_dir()
    calib = quantize.sample_images(data, "train", quantize.CALIBRATION_IMAGES if calibration is None else calibration)
    held_out = quantize.sample_images(data, "val", quantize.CHECK_IMAGES if check is None else check)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fp32 = export_model(model, name, Path(tmp) / "fp32.onnx", info=info, opset=opset)
        quant = quantize.quantize_file(fp32.path, path, calib, held_out)
    return dataclasses.replace(fp32, path=path, size_bytes=path.stat().st_size, precision="int8", quant=quant)


def _check_writable(path: Path) -> None:
    if not path.parent.is_dir():
        raise OutputError(f"output folder does not exist: {path.parent}")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"cannot write to {path.parent} (no permission)")


def _to_onnx(graph, hw: tuple[int, int], opset: int):
    """Trace `graph` to an in-memory ONNX ModelProto (TorchScript exporter, dynamic batch)."""
    import warnings

    import onnx
    import torch

    dummy = torch.randn(1, 3, *hw)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow on shapes
        torch.onnx.export(
            graph, (dummy,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def weights_to_fp16(proto):
    """Store every float32 initializer as float16, cast back to float32 by a node at the graph start."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    casts, keep = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            keep.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
        keep.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=init.name + "_cast"))
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return proto


def _set_metadata(proto, props: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _save(proto, path: Path) -> None:
    import onnx

    try:
        onnx.save(proto, str(path))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference of two equally shaped arrays (inf when shapes differ)."""
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, tolerance: float, what: str) -> float:
    """Max |diff|; ModelFileError when it exceeds `tolerance` or the shapes differ."""
    diff = max_abs_diff(reference, candidate)
    if not diff <= tolerance:
        raise ModelFileError(
            f"{what}: ONNX Runtime differs from PyTorch (max |diff| {diff:.3g} > {tolerance:g}; "
            f"shapes {reference.shape} vs {candidate.shape}); the export is not usable"
        )
    return diff


def check_parity(graph, path: Path, hw: tuple[int, int], tolerance: float, seed: int = 0) -> float:
    """Run PyTorch and ONNX Runtime on random inputs; return the max |diff| (raise above tolerance)."""
    import torch

    from polypview.inference.runtime.backend_ort import cpu_session

    session = cpu_session(path)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(PARITY_TRIALS):
        x = rng.standard_normal((PARITY_BATCH, 3, *hw)).astype(np.float32)
        with torch.no_grad():
            reference = graph(torch.from_numpy(x)).numpy()
        candidate = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        worst = max(worst, compare_outputs(reference, candidate, tolerance, str(path)))
    return worst
