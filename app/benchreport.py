"""The report of `polypview bench`: the live targets, which stage holds each one back, and the table.

Pure functions of the results dictionary that `polypview.bench` builds (and writes as JSON).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DISC_FRACTION = 0.04  # the synthetic polyp mask of the overlay stage covers this share of the frame

# Stage name -> what is timed (the table's wording).
STAGES = {
    "decode": "decode (PyAV, threads auto)",
    "colour": "colour conversion YUV->BGR (to_ndarray)",
    "preprocess": "pre-processing (ROI crop, resize, blob)",
    "inference": "inference (the model alone)",
    "postprocess": "post-processing (scores, labels)",
    "overlay": "overlay, the model's mask",
    "overlay_disc": f"overlay, a polyp mask ({DISC_FRACTION:.0%} of frame)",
    "display": "display conversion (contiguous array)",
    "i420": "BGR->I420 (OpenCV)",
    "encode": "encode (libx264, I420 in)",
}


# ------------------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """One of the live goals: a figure taken from a clip's results, compared with a bound."""

    key: str
    text: str
    applies: Callable[[dict], bool]  # to which clip (by its results)
    value: Callable[[dict], float | None]
    op: str  # "<=" | ">=" | "=="
    bound: float

    def check(self, clip: dict) -> bool | None:
        value = self.value(clip)
        if value is None:
            return None
        return {"<=": value <= self.bound, ">=": value >= self.bound, "==": value == self.bound}[self.op]


def _is(label_size: tuple[int, int], fps: float | None = None) -> Callable[[dict], bool]:
    return lambda c: tuple(c["size"]) == label_size and (fps is None or abs(c["fps"] - fps) < 0.5)


def _get(*keys) -> Callable[[dict], float | None]:
    def value(clip: dict):
        node = clip
        for key in keys:
            if not isinstance(node, dict) or node.get(key) is None:
                return None
            node = node[key]
        return node
    return value


HD = (1920, 1080)
LIVE_P99_MS = 80  # the live annotation delay's p99 target (also the soak's, per sample)
TARGETS = (
    Target("live_drops", "live 1080p30: display drops = 0", _is(HD, 30), _get("live", "display_drops"), "==", 0),
    Target("live_mask", "live 1080p30: mask on >= 95 % of shown frames", _is(HD, 30),
           lambda c: None if _get("live", "mask_share")(c) is None else 100 * c["live"]["mask_share"], ">=", 95),
    Target("live_p50", "live 1080p30: annotation delay p50 <= 40 ms", _is(HD, 30),
           _get("live", "annotation_delay_ms", "p50"), "<=", 40),
    Target("live_p99", f"live 1080p30: annotation delay p99 <= {LIVE_P99_MS} ms", _is(HD, 30),
           _get("live", "annotation_delay_ms", "p99"), "<=", LIVE_P99_MS),
    Target("live_rec_lost", "live 1080p30 + recording: no recorded frame lost", _is(HD, 30),
           _get("live_record", "recorded_lost"), "==", 0),
    Target("sync_floor", "sync 1080p + recording: >= 0.9x the I/O floor", _is(HD),
           _get("ratios", "sync_over_io_floor"), ">=", 0.9),
    Target("sync_naive", "sync 1080p + recording: >= 1.5x the naive loop", _is(HD),
           _get("ratios", "sync_over_naive"), ">=", 1.5),
)
# Issue 4's GPU part: checked when the model ran on a GPU (torch CUDA, or ONNX Runtime's CUDA/TensorRT).
GPU_TARGETS = (
    Target("gpu_live_p99", "GPU live 1080p60: annotation delay p99 <= 16.7 ms", _is(HD, 60),
           _get("live", "annotation_delay_ms", "p99"), "<=", 16.7),
)
GPU_MODEL = ("blazeneo-dha", [352, 352], 1.5)  # architecture, input size, ms per frame (median, model alone)
GUI_TARGET_S = 1.5


def on_gpu(machine: dict | None) -> bool:
    """Whether the bench's model ran on a GPU (from the provider it reported)."""
    provider = str((machine or {}).get("provider") or "")
    return provider.startswith("cuda") or "CUDAExecution" in provider or "Tensorrt" in provider


def evaluate_targets(clips: list[dict], gui: dict | None, machine: dict | None = None) -> list[dict]:
    """Every target on every clip it applies to, plus the window's first frame (and the GPU's on a GPU)."""
    out = []
    gpu = on_gpu(machine)
    targets = TARGETS + (GPU_TARGETS if gpu else ())
    arch, size, bound = GPU_MODEL
    if gpu and machine.get("architecture") == arch and list(machine.get("input_size") or []) == size:
        for clip in clips:
            value = _get("stages", "stages", "inference", "median_ms")(clip)
            if value is not None:
                out.append({"target": "gpu_model", "text": f"GPU: {arch} <= {bound} ms per frame at {size[0]}x{size[1]}",
                            "clip": clip["label"], "value": value, "passed": value <= bound, "held_back_by": None})
    for target in targets:
        for clip in clips:
            if target.applies(clip):
                passed = target.check(clip)
                out.append({"target": target.key, "text": target.text, "clip": clip["label"],
                            "value": target.value(clip), "passed": passed,
                            "held_back_by": holdback(target.key, clip) if passed is False else None})
    if gui is not None:
        first = gui.get("first_frame_s")
        passed = None if first is None else (first <= GUI_TARGET_S and not gui.get("torch_imported"))
        out.append({"target": "gui_first_frame", "text": f"window: first frame <= {GUI_TARGET_S} s, no torch",
                    "clip": "demo", "value": first, "passed": passed})
    return out


# ------------------------------------------------------------------------------ what holds back

# The pipeline's threads and the stages each runs per frame (see polypview.pipeline).
THREADS = {
    "source thread": ("decode", "colour"),
    "inference worker": ("preprocess", "inference", "postprocess"),
    "presenter": ("overlay", "display", "i420"),
    "recorder": ("encode",),
}
FLOOR_THREADS = {"source thread": ("decode", "colour"), "presenter": ("i420",), "recorder": ("encode",)}


def thread_costs(stages: dict, threads: dict = THREADS) -> dict[str, dict]:
    """Per thread: its stages' summed wall median and mean CPU per frame (ms), and the biggest stage."""
    out = {}
    for thread, names in threads.items():
        present = [n for n in names if (stages.get(n) or {}).get("count")]
        if not present:
            continue
        biggest = max(present, key=lambda n: stages[n]["median_ms"])
        out[thread] = {"wall_ms": sum(stages[n]["median_ms"] for n in present),
                       "cpu_ms": sum(stages[n]["cpu_ms"] or 0.0 for n in present), "stage": biggest,
                       "stage_wall_ms": stages[biggest]["median_ms"], "stage_cpu_ms": stages[biggest]["cpu_ms"]}
    return out


def cpu_budget(stages: dict, cores: int, workers: int = 1) -> dict | None:
    """A projection from the stages' CPU costs (not a measurement): what idle cores would allow.

    Every-frame mode is capped by all cores' CPU and by its busiest stage thread (the inference
    stage runs in `workers` threads side by side); the naive loop pays every stage in one thread.
    """
    threads = thread_costs(stages)
    total = sum(c["cpu_ms"] for c in threads.values())
    if not threads or total <= 0:
        return None
    per_frame = {t: c["cpu_ms"] / (workers if t == "inference worker" else 1) for t, c in threads.items()}
    busiest = max(per_frame, key=per_frame.get)
    sync = min(1000.0 * cores / total, 1000.0 / per_frame[busiest])
    naive = 1000.0 / total
    return {"cpu_ms_per_frame": total, "busiest_thread": busiest, "busiest_cpu_ms": threads[busiest]["cpu_ms"],
            "cores": cores, "sync_workers": workers, "sync_ceiling_fps": sync, "naive_fps": naive,
            "ratio_ceiling": sync / naive, "capped_by": "cores" if sync < 1000.0 / per_frame[busiest] else busiest}


def _cost(thread: str, c: dict) -> str:
    return (f"{thread} {c['wall_ms']:.1f} ms/frame (CPU {c['cpu_ms']:.1f}), mostly {c['stage']} "
            f"{c['stage_wall_ms']:.1f} ms (CPU {c['stage_cpu_ms'] or 0:.1f})")


def holdback(key: str, clip: dict) -> dict | None:
    """The stage that holds target `key` back on this clip, with its measured cost; None without stage costs."""
    stages = (clip.get("stages") or {}).get("stages") or {}
    threads = thread_costs(stages)
    if not threads:
        return None
    interval = 1000.0 / clip["fps"]
    if key in ("live_mask", "live_p50", "live_p99"):
        name = "inference worker"
        why = "a mask is drawn one frame after its inference ends; staleness limit 150 ms"
    elif key == "live_drops":
        name = max(("source thread", "presenter"), key=lambda t: threads.get(t, {}).get("wall_ms", 0.0))
        why = f"frame interval {interval:.1f} ms"
    elif key == "live_rec_lost":
        name = "recorder"
        alone = (clip.get("stages") or {}).get("encode_alone") or {}
        why = f"frame interval {interval:.1f} ms; encode alone {alone.get('fps', 0):.0f} fps"
    else:
        name = max(threads, key=lambda t: threads[t]["cpu_ms"])
        floor = thread_costs(stages, FLOOR_THREADS)
        slowest = max(floor, key=lambda t: floor[t]["cpu_ms"]) if floor else None
        total = sum(t["cpu_ms"] for t in threads.values())
        if key == "sync_floor" and slowest:
            floor_total = sum(t["cpu_ms"] for t in floor.values())
            why = (f"the I/O floor needs {floor_total:.1f} ms CPU/frame in all (its slowest thread: {slowest} "
                   f"{floor[slowest]['cpu_ms']:.1f} ms)")
            budget = model_budget(clip, stages, total)
            if budget is not None:
                why += (f"; {budget['fps']:.0f} fps on the {budget['cores']:.2f} cores sync obtained leaves "
                        f"{budget['model_cpu_ms']:.1f} ms CPU/frame for the model (it takes {budget['inference_cpu_ms']:.1f})")
        else:
            why = f"the naive loop pays every stage in turn, {total:.1f} ms CPU/frame"
        cores = {run: (clip.get(run) or {}).get("cpu_cores") for run in ("sync_record", "naive")}
        if all(cores.values()):
            why += f"; cores obtained: sync {cores['sync_record']:.2f}, naive {cores['naive']:.2f}"
    if name not in threads:
        return None
    c = threads[name]
    return {"thread": name, "stage": c["stage"], "stage_wall_ms": c["stage_wall_ms"], "stage_cpu_ms": c["stage_cpu_ms"],
            "thread_wall_ms": c["wall_ms"], "thread_cpu_ms": c["cpu_ms"], "text": f"{_cost(name, c)}; {why}"}


def model_budget(clip: dict, stages: dict, total_cpu_ms: float) -> dict | None:
    """What the sync/floor target leaves the model: at the target's ratio of the measured floor, on the cores the
    sync run obtained, the CPU per frame minus every other stage's (a projection from measured costs)."""
    bound = next(t.bound for t in TARGETS if t.key == "sync_floor")
    floor_fps = (clip.get("io_floor") or {}).get("throughput_fps")
    cores = (clip.get("sync_record") or {}).get("cpu_cores")
    inference = (stages.get("inference") or {}).get("cpu_ms")
    if not floor_fps or not cores or inference is None:
        return None
    fps = bound * floor_fps
    return {"fps": fps, "cores": cores, "inference_cpu_ms": inference,
            "model_cpu_ms": 1000.0 * cores / fps - (total_cpu_ms - inference)}


# ---------------------------------------------------------------------------------------- table


def _ms(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _mark(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "n/a"}[passed]


def _delays(p: dict) -> str:
    if not p or not p.get("count"):
        return "n/a"
    low = f"{p['min']:.0f} / " if p.get("min") is not None else "- / "
    return low + f"{p['p50']:.0f} / {p['p95']:.0f} / {p['p99']:.0f} / {p['max']:.0f} ms"


def header_lines(info: dict, gui: dict | None) -> list[str]:
    load = info.get("load_average_start")
    v = info["versions"]
    lines = [
        f"polypview bench  {info['date']}  {info['cpu']}, {info['cores']} cores"
        + (f", load average {load[0]:.1f} at start" if load else ""),
        f"model {info['model']} ({info['architecture']}, {'x'.join(map(str, info['input_size']))}) on "
        f"{info['backend']} {info['provider']}, "
        + (f"{info['intra_op_threads']} intra-op thread(s), " if info.get("intra_op_threads") else "")
        + f"{info.get('sync_workers', 1)} sync inference worker(s); encoder {info['encoder']}",
        f"python {info['python']}, onnxruntime {v['onnxruntime']}, av {v['av']} (libavcodec {info['ffmpeg_libavcodec']}),"
        f" opencv {v['cv2']}, numpy {v['numpy']}; commit {info.get('commit') or '?'}",
    ]
    return lines


def stage_lines(result: dict, cores: int = 2, workers: int = 1) -> list[str]:
    stages = result.get("stages") or {}
    lines = [f"  {'stage, per frame, one at a time':44s} {'median':>7s} {'p95':>7s} {'cpu':>7s}  ms"]
    for name, text in STAGES.items():
        s = stages.get(name)
        if s:
            lines.append(f"  {text:44s} {_ms(s['median_ms']):>7s} {_ms(s['p95_ms']):>7s} {_ms(s['cpu_ms']):>7s}")
    threads = thread_costs(stages)
    if threads:
        lines.append("  per thread, wall (CPU) ms/frame: " + ", ".join(
            f"{name} {c['wall_ms']:.1f} ({c['cpu_ms']:.1f})" for name, c in threads.items()))
    budget = cpu_budget(stages, cores, workers)
    if budget:
        busiest = f"{budget['busiest_thread']} {budget['busiest_cpu_ms']:.1f} ms"
        cap = "all cores busy" if budget["capped_by"] == "cores" else busiest
        lines.append(f"  CPU budget {budget['cpu_ms_per_frame']:.1f} ms/frame; on {cores} idle cores every-frame mode "
                     f"({workers} inference workers) could reach {budget['sync_ceiling_fps']:.0f} fps ({cap}), the naive loop "
                     f"{budget['naive_fps']:.0f} fps: ratio <= {budget['ratio_ceiling']:.2f} (projection, not measured)")
    dec, enc = result.get("decode_alone") or {}, result.get("encode_alone") or {}
    if dec and enc:
        lines.append(f"  decode alone {dec['fps']:.0f} fps ({dec['cpu_cores']:.2f} cores); "
                     f"encode alone {enc['fps']:.0f} fps ({enc['cpu_cores']:.2f} cores)")
    return lines


def _titled(title: str, run: dict) -> str:
    load = run.get("load_average")
    return f"{title} [load {load:.1f}]" if load is not None else title


def run_rows(clip: dict, checks: dict[str, dict]) -> list[tuple[str, str, str, str]]:
    """(run, figure, target, mark) rows for one clip."""
    rows = []

    def mark(key: str) -> tuple[str, str]:
        check = checks.get(key)
        target = next(t for t in TARGETS if t.key == key)
        return (f"{target.op} {target.bound:g}", _mark(check["passed"])) if check else ("", "")

    for name, title in (("live", "live, display only"), ("live_record", "live + recording")):
        r = clip.get(name)
        if not r:
            continue
        prefix = "live" if name == "live" else "live_rec"
        shown = f"display {r['display_fps']:.1f} fps, {r['frames_shown']} of {r['frames_read']} shown"
        rows.append((_titled(title, r), shown, "", ""))
        rows.append(("", f"display drops {r['display_drops']}", *(mark("live_drops") if name == "live" else ("", ""))))
        masked = f"frames shown with a mask {100 * r['mask_share']:.1f} %"
        rows.append(("", masked, *(mark("live_mask") if name == "live" else ("", ""))))
        if r.get("frames_reshown"):
            again = 100 * r["frames_reshown"] / max(r["frames_shown"], 1)
            rows.append(("", f"  shown again with their own mask {again:.1f} %", "", ""))
        rows.append(("", f"annotation delay min/p50/p95/p99/max {_delays(r['annotation_delay_ms'])}", "", ""))
        parts = r.get("annotation_parts_ms") or {}
        if parts.get("inference_worker", {}).get("count"):
            rows.append(("", "  = wait for worker + worker + wait for display, p50: " + " + ".join(
                f"{parts[k]['p50']:.0f}" for k in ("wait_for_worker", "inference_worker", "wait_for_display")) + " ms", "", ""))
        if name == "live":
            rows.append(("", "  annotation delay p50", *mark("live_p50")))
            rows.append(("", "  annotation delay p99", *mark("live_p99")))
        rows.append(("", f"video delay min/p50/p95/p99/max {_delays(r['video_delay_ms'])}", "", ""))
        if name == "live_record":
            rows.append(("", f"recorded {r['frames_in_file']} of {r['frames_shown']} shown "
                             f"(lost {r['recorded_lost']}, recorder drops {r['record_dropped']})", *mark(f"{prefix}_lost")))
    for name, title in (("sync_record", "every-frame (sync) + recording"), ("io_floor", "I/O floor (no model, same threads)"),
                        ("naive", "naive single loop")):
        r = clip.get(name)
        if r:
            rows.append((_titled(title, r), f"throughput {r['throughput_fps']:.1f} fps ({r['cpu_cores']:.2f} cores)", "", ""))
    ratio = clip.get("ratios") or {}
    if ratio.get("sync_over_io_floor") is not None:
        rows.append(("ratios", f"sync / I/O floor {ratio['sync_over_io_floor']:.2f}x", *mark("sync_floor")))
    if ratio.get("sync_over_naive") is not None:
        rows.append(("", f"sync / naive {ratio['sync_over_naive']:.2f}x", *mark("sync_naive")))
    return rows


def clip_lines(clip: dict, checks: dict[str, dict], cores: int = 2, workers: int = 1) -> list[str]:
    lines = [f"clip {clip['label']}: {clip.get('kind', '')} {clip['size'][0]}x{clip['size'][1]} "
             f"@ {clip['fps']:g} fps, {clip['frames']} frames"]
    if clip.get("stages"):
        lines += stage_lines(clip["stages"], cores, workers)
    rows = run_rows(clip, checks)
    if rows:
        lines.append(f"  {'run [1-min load average at its end]':46s} {'figure':66s} {'target':>8s}  mark")
        lines += [f"  {run:46s} {fig:66s} {tgt:>8s}  {mk}" for run, fig, tgt, mk in rows]
    return lines


def format_report(report: dict) -> str:
    """The table printed at the end of the bench."""
    lines = header_lines(report["machine"], report.get("gui"))
    for clip in report["clips"]:
        checks = {t["target"]: t for t in report["targets"] if t["clip"] == clip["label"]}
        machine = report["machine"]
        lines += [""] + clip_lines(clip, checks, machine.get("cores") or 1, machine.get("sync_workers") or 1)
    gui = report.get("gui")
    if gui:
        lines.append("")
        if gui.get("error"):
            lines.append(f"window first frame: {gui['error']}")
        else:
            lines.append(f"window first frame {gui['first_frame_s']:.2f} s (python {gui['python_start_s']:.2f} s, imports "
                         f"{gui['imports_s']:.2f} s, window {gui['window_s']:.2f} s); torch imported: {gui['torch_imported']}")
            line = (f"window paint (GUI thread, {gui['view_size'][0]}x{gui['view_size'][1]} view): "
                    f"{_ms(gui['paint_ms'])} ms per demo frame, {_ms(gui.get('paint_1080p_ms'))} ms per 1080p frame")
            if gui.get("shrink_1080p_ms") is not None:
                line += (f" shrunk beforehand on the pipeline's thread in {_ms(gui['shrink_1080p_ms'])} ms "
                         f"({_ms(gui.get('paint_1080p_qt_scaled_ms'))} ms when Qt scales it)")
            lines.append(line)
    lines += ["", "targets (live 1080p30 on this machine)"]
    if not report["targets"]:
        lines.append("  none measured (the targets are defined at 1080p30 and 1080p)")
    for t in report["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        lines.append(f"  {_mark(t['passed']):4s}  {t['text']:52s} [{t['clip']}] {value}")
        if t.get("held_back_by"):
            lines.append(f"        held back by: {t['held_back_by']['text']}")
    return "\n".join(lines)

