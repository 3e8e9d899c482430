"""ONNX Runtime backend: TensorRT, CUDA or CPU execution provider, chosen automatically and quietly.

`onnxruntime.get_available_providers()` lists every provider the wheel was built with, even on
a machine without a GPU, and asking for one that cannot load prints pages of errors. So each
GPU provider is probed first (driver present, a device visible, the provider library and its
CUDA/cuDNN/TensorRT dependencies loadable) and only the ones that pass are requested.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from polypview.errors import ConfigError, ModelFileError
from polypview.inference.runtime.modelfile import INPUT_NAME, OUTPUT_NAME

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
PREFERENCE = (TENSORRT, CUDA, CPU)
# Short names accepted by `provider=`; each maps to the providers to try, best first.
PROVIDER_CHOICES = {"auto": PREFERENCE, "tensorrt": PREFERENCE, "cuda": (CUDA, CPU), "cpu": (CPU,)}
_EP_LIBRARY = {TENSORRT: "onnxruntime_providers_tensorrt", CUDA: "onnxruntime_providers_cuda"}
_QUIET = 4  # ORT log severity "fatal": a provider that fails to start logs at "error" level
_NORMAL = 2  # ORT's default ("warning")


def _ort():
    import onnxruntime

    return onnxruntime


# A model slower than this per frame on the default threads cannot keep up with 30 fps video: it gets
# every core instead (on 2 cores BlazeNeo-DHA 75 -> 48 ms, masks on 99 % of live frames instead of 64 %,
# video delay unchanged).
SLOW_MODEL_S = 1 / 30
TIMING_RUNS = 3  # timed runs (after one warm-up) that decide it; the fastest counts


def default_threads() -> int:
    """Intra-op threads: all cores but one, so decoding and display keep a core (min 1)."""
    return max(1, (os.cpu_count() or 1) - 1)


def all_threads() -> int:
    """Intra-op threads for a model too slow for the default: every core."""
    return max(1, os.cpu_count() or 1)


def cuda_device_count() -> int:
    """Number of CUDA devices the driver reports; 0 without a driver (checked without CUDA runtime)."""
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def _library_file(stem: str) -> Path:
    capi = Path(_ort().__file__).parent / "capi"
    return capi / (f"{stem}.dll" if sys.platform == "win32" else f"lib{stem}.so")


def _provider_library_loads(provider: str) -> bool:
    """True when the provider's shared library and everything it links against can be loaded."""
    lazy = getattr(os, "RTLD_LAZY", 0)
    try:
        ctypes.CDLL(str(_library_file("onnxruntime_providers_shared")), mode=lazy | getattr(os, "RTLD_GLOBAL", 0))
        ctypes.CDLL(str(_library_file(_EP_LIBRARY[provider])), mode=lazy)
    except OSError as exc:
        log.debug("%s cannot start: %s", provider, exc)
        return False
    return True


def _preload_cuda_libraries() -> None:
    """Let ORT load CUDA/cuDNN from the nvidia-* pip packages (`onnxruntime-gpu[cuda,cudnn]`), quietly."""
    preload = getattr(_ort(), "preload_dlls", None)  # onnxruntime >= 1.21
    if preload is None:
        return
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            preload(msvc=False)
    except Exception as exc:  # a failed preload only means the probe below decides without it
        log.debug("onnxruntime.preload_dlls failed: %s", exc)
    if printed.getvalue().strip():
        log.debug("onnxruntime.preload_dlls: %s", printed.getvalue().strip())


@functools.cache
def usable_providers(choice: str = "auto") -> tuple[str, ...]:
    """The providers to request, best first, after probing the GPU ones; always ends with CPU."""
    wanted = PROVIDER_CHOICES[choice]
    built = set(_ort().get_available_providers())
    gpu_ok = cuda_device_count() > 0
    if gpu_ok and CUDA in built:
        _preload_cuda_libraries()
    usable = tuple(p for p in wanted if p == CPU or (p in built and gpu_ok and _provider_library_loads(p)))
    skipped = [p for p in wanted if p not in usable]
    if skipped:
        reason = "no CUDA device" if not gpu_ok else "libraries missing"
        log.info("ONNX Runtime: skipping %s (%s)", ", ".join(skipped), reason)
    return usable


def _provider_options(provider: str) -> dict:
    if provider == TENSORRT:
        cache = Path(os.environ.get("POLYPVIEW_CACHE", Path.home() / ".cache" / "polypview")) / "tensorrt"
        # Building a TensorRT engine takes minutes: cache it across runs.
        return {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}
    return {}


def session_options(threads: int | None):
    """SessionOptions: errors-only logging, sequential execution, `threads` intra-op threads, no spinning."""
    ort = _ort()
    so = ort.SessionOptions()
    so.log_severity_level = 3  # this session's own log: errors only
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = default_threads() if threads is None else max(1, int(threads))
    so.inter_op_num_threads = 1
    # Spinning worker threads burn a core between frames that the decoder thread needs.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def cpu_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime session on the CPU provider, set up as the app's (for evaluation, export parity and
    quantisation checks); `threads` None: every core. The one way sessions are opened, with _open_session."""
    return _open_session(Path(path), session_options(threads or all_threads()), (CPU,))


def _open_session(path: Path, so, providers: tuple[str, ...]):
    ort = _ort()
    options = [(p, _provider_options(p)) for p in providers]
    ort.set_default_logger_severity(_QUIET)  # the provider bridge logs through the default logger
    try:
        return ort.InferenceSession(str(path), so, providers=options)
    except Exception as exc:  # ORT raises its own pybind classes (InvalidProtobuf, Fail, ...)
        detail = str(exc).split("failed:", 1)[-1].strip().splitlines()[0]
        raise ModelFileError(
            f"model file {path} cannot be loaded by ONNX Runtime ({detail}): "
            "check it is an .onnx file written by `polypview export`"
        ) from None
    finally:
        ort.set_default_logger_severity(_NORMAL)


class OrtBackend:
    """One ONNX Runtime session."""

    name = "onnxruntime"

    def __init__(self, session, threads: int | None = None):
        self._session = session
        self.threads = threads  # intra-op threads of the CPU provider
        self.provider = session.get_providers()[0]
        self.metadata = dict(session.get_modelmeta().custom_metadata_map)
        self.inputs = [(i.name, list(i.shape)) for i in session.get_inputs()]
        self.outputs = [(o.name, list(o.shape)) for o in session.get_outputs()]

    def run(self, blob: np.ndarray) -> np.ndarray:
        """probs (N, K, h, w) for a normalised blob (N, 3, h, w)."""
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: blob})[0]

    def close(self) -> None:
        self._session = None


def open_backend(path: Path, threads: int | None = None, provider: str = "auto") -> OrtBackend:
    """Open `path` with the best provider that starts; the choice is logged once per model load."""
    if provider not in PROVIDER_CHOICES:
        raise ConfigError(f"unknown ONNX Runtime provider {provider!r}; valid: {', '.join(PROVIDER_CHOICES)}")
    if not Path(path).is_file():
        raise ModelFileError(f"model file {path} not found: pass an existing .onnx file")
    requested = usable_providers(provider)
    so = session_options(threads)
    backend = OrtBackend(_open_session(Path(path), so, requested), so.intra_op_num_threads)
    if backend.provider != requested[0]:
        log.info("ONNX Runtime: %s did not start, fell back to %s", requested[0], backend.provider)
    if threads is None and backend.provider == CPU and all_threads() > backend.threads:
        seconds, timed_threads = model_seconds(backend), backend.threads
        if seconds is not None and seconds > SLOW_MODEL_S:
            so = session_options(all_threads())
            backend.close()
            backend = OrtBackend(_open_session(Path(path), so, requested), so.intra_op_num_threads)
            log.info("ONNX Runtime: %.0f ms per frame on %d thread(s) is slower than 30 fps: using all %d cores",
                     seconds * 1000, timed_threads, so.intra_op_num_threads)
    log.info("ONNX Runtime provider: %s (%d intra-op threads)", backend.provider, so.intra_op_num_threads)
    return backend


def model_seconds(backend: OrtBackend) -> float | None:
    """Fastest of TIMING_RUNS model calls on a batch of one (after a warm-up); None when the input
    size is not fixed in the file or the model fails on zeros (loading goes on: the first frame will say)."""
    shape = dict(backend.inputs).get(INPUT_NAME)
    if not shape or len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        return None
    blob = np.zeros((1, *shape[1:]), np.float32)
    times = []
    try:
        for i in range(TIMING_RUNS + 1):
            t0 = time.perf_counter()
            backend.run(blob)
            if i:
                times.append(time.perf_counter() - t0)
    except Exception as exc:  # ORT's own exception classes
        log.debug("timing the model failed: %s", exc)
        return None
    return min(times)
