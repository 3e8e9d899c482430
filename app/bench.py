"""`polypview bench`: the cost of every stage and of the whole pipeline, on the same clips, in one run.

    polypview bench                                   # 720p30 and 1080p30 demo clips, 10 s each
    polypview bench --sizes 1080p --fps 30,60 --json bench.json
    polypview bench --clip case.mp4 --model nanonet-a-neo
    polypview bench --realistic                       # NeoPolyp images drifting like an endoscope
    polypview bench --quick                           # a few seconds: smoke test
    polypview bench --soak 30 [--soak-window]         # one clip in a loop for 30 min, sampled (benchsoak.py)

For each clip it measures, one after another on an otherwise idle pipeline:
  stages     decode, colour conversion, pre-processing, inference, post-processing, overlay,
             display conversion, BGR->I420, encode: median and p95 per frame, one thread;
  live       the Pipeline in live mode, display only (a sink that counts), file paced at its rate;
  live+rec   the same while recording;
  sync+rec   every-frame mode with recording, as fast as possible;
  I/O floor  the same Pipeline in sync mode with no model (decode, I420, encode, same threads);
  naive      decode -> infer -> draw -> encode in one thread, the structure of published demos;
and, once, the window's time to its first frame (a subprocess, QT offscreen). Prints a table
with the live targets beside the figures and writes everything to JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from polypview.benchclips import ClipSpec, make_clip, parse_fps, parse_list, parse_size
from polypview.benchreport import evaluate_targets, format_report
from polypview.benchruns import STAGE_FRAMES, naive_loop, run_pipeline, stage_costs
from polypview.errors import ConfigError, OutputError
from polypview.inference.training.data import neopolyp_dir
from polypview.registry import Registry

DEFAULT_SIZES = "720p,1080p"
DEFAULT_FPS = "30"
DEFAULT_SECONDS = 10.0
QUICK = {"sizes": "360p", "fps": "30", "seconds": 1.0, "stage_frames": 15}
GUI_TIMEOUT_S = 60.0




# ------------------------------------------------------------------------------------ arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from polypview.settings import add_model_arguments

    add_model_arguments(parser)
    """The bench options."""
    parser.add_argument("--clip", metavar="FILE", help="benchmark this video instead of generated clips")
    parser.add_argument("--sizes", default=None, help=f"generated clip sizes (default {DEFAULT_SIZES}; names or WxH)")
    parser.add_argument("--fps", default=None, help=f"generated clip frame rates (default {DEFAULT_FPS}), e.g. 30,60")
    parser.add_argument("--seconds", type=float, default=None,
                        help=f"length of each generated clip (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--json", metavar="OUT.json", type=Path, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="a tiny clip and few frames (a smoke test of a few seconds)")
    parser.add_argument("--realistic", action="store_true", help="clips from NeoPolyp images (needs ../shared/data)")
    parser.add_argument("--data", type=Path, default=None,
                        help="NeoPolyp-Small folder for --realistic (default: $POLYPVIEW_DATA or ../shared/data/neopolyp_small)")
    parser.add_argument("--stage-frames", type=int, default=None, help=f"frames in the per-stage pass (default {STAGE_FRAMES})")
    parser.add_argument("--only", default=None, help="comma-separated runs to do (default all): " + ", ".join(RUN_NAMES))
    parser.add_argument("--no-gui", action="store_true", help="skip the window's time-to-first-frame probe")
    parser.add_argument("--keep", metavar="DIR", type=Path, help="keep the clips and recordings in DIR (default: a temp dir)")
    parser.add_argument("--soak", metavar="MINUTES", type=float, default=None,
                        help="instead of the runs: play one clip (1080p30 unless --sizes/--fps/--clip say) in a loop, "
                             "live and recording, for MINUTES, sampling memory, threads, open files, drops and delay")
    parser.add_argument("--soak-window", action="store_true",
                        help="with --soak: play it in the window (a child process; Qt offscreen unless QT_QPA_PLATFORM "
                             "says), through its bridge and paints")


# ------------------------------------------------------------------------------------ the runs


@dataclass
class BenchContext:
    """What every run of one clip needs."""

    path: Path
    spec: ClipSpec
    engine: object
    settings: object
    folder: Path
    stage_frames: int

    @property
    def timeout_s(self) -> float:
        # Live runs take the clip's length; sync runs at worst a few fps: generous, never endless.
        return 60.0 + 4.0 * self.spec.frames / 5.0


RUNS: Registry[Callable[[BenchContext], dict]] = Registry("run", {
    "stages": lambda c: stage_costs(c.path, c.engine, c.settings, c.spec, c.stage_frames, c.folder),
    "io_floor": lambda c: run_pipeline(c.path, None, "sync", c.folder / f"floor-{c.spec.label}.mp4", c.settings, c.timeout_s),
    "naive": lambda c: naive_loop(c.path, c.engine, c.settings, c.spec, c.folder / f"naive-{c.spec.label}.mp4"),
    "sync_record": lambda c: run_pipeline(c.path, c.engine, "sync", c.folder / f"sync-{c.spec.label}.mp4", c.settings,
                                          c.timeout_s),
    "live": lambda c: run_pipeline(c.path, c.engine, "live", None, c.settings, c.timeout_s),
    "live_record": lambda c: run_pipeline(c.path, c.engine, "live", c.folder / f"live-{c.spec.label}.mp4", c.settings,
                                          c.timeout_s),
})
RUN_NAMES = tuple(RUNS)


def ratios(clip: dict) -> dict:
    """sync throughput over the I/O floor's and the naive loop's."""
    sync = (clip.get("sync_record") or {}).get("throughput_fps")
    floor = (clip.get("io_floor") or {}).get("throughput_fps")
    naive = (clip.get("naive") or {}).get("throughput_fps")
    return {"sync_over_io_floor": sync / floor if sync and floor else None,
            "sync_over_naive": sync / naive if sync and naive else None}


def _load() -> float | None:
    """The 1-minute load average (other processes share the cores: read the figures with it)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def bench_clip(context: BenchContext, runs: list[str], log: Callable[[str], None]) -> dict:
    """Every requested run on one clip."""
    clip = {"label": context.spec.label, "path": str(context.path), "size": list(context.spec.size),
            "fps": context.spec.fps, "frames": context.spec.frames}
    for name in runs:
        log(f"  {context.spec.label}: {name} ...")
        t0 = time.perf_counter()
        clip[name] = RUNS[name](context)
        clip[name]["load_average"] = _load()
        log(f"  {context.spec.label}: {name} done in {time.perf_counter() - t0:.1f} s")
    clip["ratios"] = ratios(clip)
    return clip


# ---------------------------------------------------------------------------------- GUI probe

# The probe (ui/probe.py) runs in a child process: the bench itself must not import Qt.


def gui_first_frame(model: str | None, timeout_s: float = GUI_TIMEOUT_S) -> dict:
    """Time from launching `python` to the window's first painted frame (demo input, offscreen Qt)."""
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    t0 = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "polypview.ui.probe", model or "", str(timeout_s)], env=env,
                              capture_output=True, text=True, timeout=timeout_s + 30)
    except subprocess.TimeoutExpired:
        return {"error": f"the window did not close within {timeout_s + 30:.0f} s"}
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("GUIPROBE ")), None)
    if done.returncode != 0 or line is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"probe failed (exit {done.returncode}): {tail}"}
    probe = json.loads(line[len("GUIPROBE "):])
    first = probe.get("t_first_frame")
    return {
        "first_frame_s": first - t0 if first else None,
        "python_start_s": probe["t_main"] - t0,
        "imports_s": probe["t_import"] - probe["t_main"],
        "window_s": probe["t_window"] - probe["t_import"],
        "paint_ms": probe.get("paint_ms"),
        "paint_1080p_ms": probe.get("paint_1080p_ms"),
        "shrink_1080p_ms": probe.get("shrink_1080p_ms"),
        "paint_1080p_qt_scaled_ms": probe.get("paint_1080p_qt_scaled_ms"),
        "view_size": probe.get("view_size"),
        "torch_imported": probe["torch"],
    }


# -------------------------------------------------------------------------------- machine info


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str:
    try:
        mod = __import__(module)
    except ImportError:
        return "absent"
    return str(getattr(mod, "__version__", "?"))


def git_commit() -> str | None:
    """The repository's HEAD commit (short), when run from a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parents[1],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def machine_info(engine, threads: int | None) -> dict:
    """CPU, cores, load, ORT provider and threads, library versions, date."""
    import av

    from polypview import recorder

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_start": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in ("numpy", "cv2", "av", "onnxruntime")},
        "ffmpeg_libavcodec": ".".join(str(v) for v in av.library_versions.get("libavcodec", ())),
        "encoder": f"{recorder.ENCODER} {recorder.PRESET} crf {recorder.CRF}",
        "model": engine.name if engine else None,
        "architecture": engine.info.architecture if engine else None,
        "input_size": list(engine.info.input_size) if engine else [],
        "backend": engine.backend if engine else None,
        "provider": engine.provider if engine else None,
        "intra_op_threads": threads if threads is not None else _engine_threads(engine),
        "sync_workers": _sync_workers(),
        "commit": git_commit(),
    }


def _sync_workers() -> int:
    """Inference workers of every-frame mode (the pipeline's default)."""
    from polypview.pipeline import PipelineConfig

    return PipelineConfig().sync_workers


def _engine_threads(engine) -> int | None:
    """The engine's intra-op threads (ORT picks more for a slow model, see backend_ort.SLOW_MODEL_S)."""
    if engine is None or engine.backend != "onnxruntime":
        return None
    return engine.threads


# ------------------------------------------------------------------------------------------ run


def clip_specs(args) -> list[ClipSpec]:
    """The generated clips to make: every size x every frame rate."""
    sizes = parse_list(args.sizes or (QUICK["sizes"] if args.quick else DEFAULT_SIZES), parse_size, "sizes")
    rates = parse_list(args.fps or (QUICK["fps"] if args.quick else DEFAULT_FPS), parse_fps, "frame rates")
    seconds = args.seconds if args.seconds is not None else (QUICK["seconds"] if args.quick else DEFAULT_SECONDS)
    if seconds <= 0:
        raise ConfigError(f"--seconds must be positive, got {seconds}")
    return [ClipSpec(size, fps, seconds) for size in sizes for fps in rates]


def selected_runs(args) -> list[str]:
    if not args.only:
        return list(RUN_NAMES)
    names = parse_list(args.only, str, "runs")
    for name in names:
        RUNS.resolve(name)  # ConfigError naming the valid runs
    return names


def given_clip(path: Path) -> tuple[ClipSpec, str]:
    """The spec of a clip given with --clip (size, rate and length read from the file)."""
    from polypview.sources import open_source

    source = open_source(str(path), kind="file")
    try:
        frames = source.frame_count or 1
        return ClipSpec(tuple(source.size), source.fps, frames / source.fps), "file"
    finally:
        source.close()


def prepare_clips(args, folder: Path, log) -> list[tuple[Path, ClipSpec, str]]:
    """(path, spec, kind) for each clip: the given file, or generated ones."""
    if args.clip:
        spec, kind = given_clip(Path(args.clip))
        return [(Path(args.clip), spec, kind)]
    kind = "realistic" if args.realistic else "demo"
    options = {"data_dir": args.data or neopolyp_dir()} if args.realistic else {}
    clips = []
    for spec in clip_specs(args):
        log(f"making the {kind} clip {spec.label} ({spec.frames} frames) ...")
        clips.append((make_clip(kind, spec, folder, **options), spec, kind))
    return clips


def run(args) -> int:
    """Benchmark, print the table, write the JSON."""
    from polypview.inference.runtime.engine import load_engine

    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731 (progress goes to stderr)
    runs = selected_runs(args)
    if args.soak_window and args.soak is None:
        raise ConfigError("--soak-window goes with --soak MINUTES")
    stage_frames = args.stage_frames or (QUICK["stage_frames"] if args.quick else STAGE_FRAMES)
    if args.json:
        from polypview.recorder import check_output_path

        check_output_path(args.json, what="JSON")
    from polypview.settings import overlay_settings, parse_input_size

    input_size = parse_input_size(args.input_size) if args.input_size else None
    engine = load_engine(args.model, backend=args.backend, threads=args.threads, input_size=input_size)
    info = machine_info(engine, args.threads)
    settings = overlay_settings({}, engine.info)  # as the app draws: the model file's region peak, else the app's
    if args.soak is not None:
        return _soak(args, engine, settings, info, log)
    with _work_folder(args.keep) as folder:
        clips = []
        for path, spec, kind in prepare_clips(args, folder, log):
            context = BenchContext(path, spec, engine, settings, folder, stage_frames)
            clip = bench_clip(context, runs, log)
            clip["kind"] = "generated demo" if kind == "demo" else ("NeoPolyp drift" if kind == "realistic" else "file")
            clips.append(clip)
    gui = None if args.no_gui else gui_first_frame(str(args.model) if args.model else None)
    info["load_average_end"] = _load_averages()
    report = {"machine": info, "command": _command(),
              "clips": clips, "gui": gui, "targets": evaluate_targets(clips, gui, info)}
    engine.close()
    print(format_report(report))
    _write_json(args.json, report)
    return 0


def _soak(args, engine, settings, info: dict, log) -> int:
    """`--soak MINUTES`: one clip, live and recording, for that long (benchsoak.py)."""
    from polypview.benchreport import LIVE_P99_MS, header_lines
    from polypview.benchsoak import format_soak, soak, window_soak

    if not args.soak > 0:
        raise ConfigError(f"--soak must be a positive number of minutes, got {args.soak:g}")
    if args.sizes is None and not args.quick:
        args.sizes = "1080p"
    with _work_folder(args.keep) as folder:
        path, spec, _ = prepare_clips(args, folder, log)[0]
        log(f"soak: {spec.label} in a loop for {args.soak:g} min ...")
        record = folder / f"soak-{spec.label}.mp4"
        if args.soak_window:
            engine.close()  # the window loads its own
            result = window_soak(path, str(args.model) if args.model else None, args.soak, record, folder, log)
        else:
            result = soak(path, engine, settings, args.soak, record, log)
            engine.close()
    info["load_average_end"] = _load_averages()
    result["clip"] = {"label": spec.label, "path": str(path)}
    print("\n".join(header_lines(info, None)))
    print(format_soak(result, LIVE_P99_MS))
    _write_json(args.json, {"machine": info, "command": _command(), "soak": result})
    return 0


def _load_averages() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _command() -> str:
    return "polypview bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:])


def _write_json(path: Path | None, report: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {path}")


class _work_folder:
    """A temporary folder (removed at the end), or the --keep folder (created, kept)."""

    def __init__(self, keep: Path | None):
        self.keep = keep
        self._tmp = None

    def __enter__(self) -> Path:
        if self.keep is not None:
            try:
                Path(self.keep).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create {self.keep}: {exc.strerror or exc}") from None
            return Path(self.keep)
        self._tmp = tempfile.TemporaryDirectory(prefix="polypview-bench-")
        return Path(self._tmp.name)

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
