"""int8 model files: static QDQ quantization with ONNX Runtime, calibrated on training images.

`polypview export --int8` first writes and checks the fp32 file as usual, then:

1. runs the fp32 model on `calibration` training images (the runtime's own pre-processing) to
   fix the activation ranges (percentile 99.99, so a few extreme pixels do not widen them);
2. stores weights as int8 per output channel and activations as uint8 (QDQ format, which
   ONNX Runtime's CPU provider runs with integer kernels: VNNI/AMX where the CPU has them);
3. checks the int8 file against the fp32 one on `check` validation images it was not
   calibrated on: the share of pixels given the same label must be at least MIN_AGREEMENT, else
   the file is removed and ModelFileError says by how much they differ.

Random inputs are no test of an int8 model (they fall outside the calibrated ranges), hence
real images. Whether int8 is faster depends on the CPU; `polypview eval` measures it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from polypview.errors import ConfigError, DataError, ModelFileError

MIN_AGREEMENT = 0.98  # share of pixels whose label the int8 model keeps
CALIBRATION_IMAGES = 64
CHECK_IMAGES = 16
PERCENTILE = 99.99
# Weights in 7 bits: on x86 CPUs without VNNI (most Intel desktops before 2021, common in tower PCs) ONNX Runtime
# multiplies u8 activations by s8 weights in pairs summed into 16 bits (VPMADDUBSW), which 8-bit weights can
# saturate (255 * 127 * 2 > 32767); with 7-bit weights they cannot (255 * 64 * 2 < 32767).
REDUCE_RANGE = True


@dataclass(frozen=True)
class QuantReport:
    """How the int8 file agrees with the fp32 one on held-out images."""

    agreement: float  # share of pixels with the same label
    mean_abs_diff: float  # mean |probs_int8 - probs_fp32|
    images: int
    calibration_images: int


def sample_images(data: Path, part: str, count: int) -> list[Path]:
    """The first `count` images of the packaged split `part` (train/val) of NeoPolyp-Small."""
    from polypview.inference.training.data import load_split, neopolyp_pairs

    if count <= 0:
        return []
    names = load_split(part)[:count]
    try:
        return [image for image, _ in neopolyp_pairs(data, names)]
    except DataError as exc:
        raise DataError(f"int8 calibration needs the NeoPolyp images: {exc}") from None


def _blobs(session_path: Path, images: list[Path]):
    """Normalised (1, 3, h, w) blobs of `images`, as the runtime prepares frames for this model file."""
    import cv2

    from polypview.inference.runtime.backend_ort import cpu_session
    from polypview.inference.runtime.engine import Preprocess
    from polypview.inference.runtime.modelfile import ModelInfo

    meta = cpu_session(session_path).get_modelmeta().custom_metadata_map
    preprocess = Preprocess(ModelInfo.from_metadata(meta, source=str(session_path)))
    for path in images:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"cannot decode calibration image {path}")
        yield preprocess(image)


def quantize_file(fp32_path: Path, out_path: Path, calibration: list[Path], check: list[Path],
                  min_agreement: float = MIN_AGREEMENT) -> QuantReport:
    """Write the int8 version of `fp32_path` to `out_path` (metadata kept); check it; report."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise DataError("int8 export needs at least one calibration image")
    fp32_path, out_path = Path(fp32_path), Path(out_path)

    class Reader(CalibrationDataReader):
        def __init__(self):
            from polypview.inference.runtime.modelfile import INPUT_NAME

            self._feeds = ({INPUT_NAME: blob} for blob in _blobs(fp32_path, calibration))

        def get_next(self):
            return next(self._feeds, None)

    # Percentile ranges; an activation with no spread (a constant channel) cannot be binned,
    # so such a model falls back to min/max ranges.
    methods = ((CalibrationMethod.Percentile, {"CalibPercentile": PERCENTILE}), (CalibrationMethod.MinMax, {}))
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        check_memory(len(calibration), activation_bytes(prepared), available_memory())
        for i, (method, extra) in enumerate(methods):
            try:
                quantize_static(str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                reduce_range=REDUCE_RANGE,
                                calibrate_method=method, extra_options=extra,
                                calibration_providers=["CPUExecutionProvider"])
                break
            except ValueError as exc:
                if i == len(methods) - 1:
                    raise ModelFileError(f"int8 quantization of {fp32_path.name} failed ({exc})") from None
    _copy_metadata(fp32_path, out_path)
    report = replace(compare_files(fp32_path, out_path, check or calibration[:CHECK_IMAGES]),
                     calibration_images=len(calibration))
    if not report.agreement >= min_agreement:
        out_path.unlink(missing_ok=True)
        raise ModelFileError(
            f"int8 model agrees with fp32 on only {100 * report.agreement:.1f} % of pixels "
            f"(< {100 * min_agreement:.0f} %) over {report.images} held-out images: keep the fp32/fp16 file"
        )
    return report


def activation_bytes(model_path: Path) -> int:
    """Bytes of the float tensors one image makes the graph compute (batch 1): what ONNX Runtime's
    calibrator keeps per calibration image until it has seen them all."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path)))
    total = 0
    for value in [*model.graph.value_info, *model.graph.output]:
        tensor = value.type.tensor_type
        if tensor.elem_type != onnx.TensorProto.FLOAT:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor.shape.dim]  # the batch axis: 1
        total += 4 * int(np.prod(dims, dtype=np.int64))
    return total


def available_memory() -> int | None:
    """Bytes of memory available to a new process (Linux MemAvailable), None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


MEMORY_SHARE = 0.5  # of the available memory that calibration may fill (the quantizer needs the rest)


def check_memory(images: int, per_image: int, available: int | None) -> None:
    """ConfigError when `images` calibration images would not fit in memory (instead of the process being killed)."""
    if available is None or per_image <= 0:
        return
    budget = MEMORY_SHARE * available
    if images * per_image > budget:
        fit = max(1, int(budget // per_image))
        raise ConfigError(f"--calibration {images}: the calibrator would hold about {images * per_image / 2**30:.1f} GiB "
                          f"of activations ({per_image / 2**20:.0f} MiB per image) and {available / 2**30:.1f} GiB is "
                          f"available; use --calibration {fit} or fewer")


@contextlib.contextmanager
def _quiet():
    """The quantizer prints calibration details and logs harmless warnings on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _copy_metadata(source: Path, target: Path) -> None:
    """The quantizer keeps most metadata; make the int8 file carry exactly the fp32 file's."""
    import onnx

    src, dst = onnx.load(str(source)), onnx.load(str(target))
    del dst.metadata_props[:]
    dst.metadata_props.extend(src.metadata_props)
    onnx.save(dst, str(target))


def compare_files(reference: Path, candidate: Path, images: list[Path]) -> QuantReport:
    """Label agreement and mean |diff| of probs between two model files on `images`."""
    from polypview.inference.runtime.backend_ort import cpu_session
    from polypview.inference.runtime.modelfile import INPUT_NAME, OUTPUT_NAME, ModelInfo
    from polypview.inference.training.metrics import labels_from_probs

    ref, cand = cpu_session(reference), cpu_session(candidate)
    info = ModelInfo.from_metadata(ref.get_modelmeta().custom_metadata_map, source=str(reference))
    same = total = 0
    diffs = []
    for blob in _blobs(reference, images):
        a = ref.run([OUTPUT_NAME], {INPUT_NAME: blob})[0][0]
        b = cand.run([OUTPUT_NAME], {INPUT_NAME: blob})[0][0]
        same += int((labels_from_probs(a, info.activation) == labels_from_probs(b, info.activation)).sum())
        total += a.shape[1] * a.shape[2]
        diffs.append(float(np.abs(a - b).mean()))
    return QuantReport(same / total if total else 0.0, float(np.mean(diffs)) if diffs else 0.0, len(images), 0)
