"""`polypview eval`: Dice/IoU on the test split, FPS, parameters and GMACs, as BlazeNeo's Table 4.

Every model is evaluated as the app runs it: through its ONNX model file (a checkpoint is
first exported to a temporary fp32 file), with the runtime's pre-processing, on each test
image at its stored resolution. The predicted label map (argmax for softmax models, as the
papers decide) is brought back to the mask's resolution with nearest resize, and TP/FP/FN
are summed over the whole test set (micro Dice/IoU, models.md §9). The same pass also scores
the app's default display, where each connected polyp region takes its majority class
(`labels.one_class_per_region`); the table prints it as a second row ("one class/polyp").

Each micro Dice comes with a 95 % percentile bootstrap interval over images: the images are
resampled with replacement (2000 times, seeded), and micro Dice is recomputed from the summed
per-image TP/FP/FN of each resample (`bootstrap_intervals`). The JSON keeps the point estimate
under "dice" and adds the interval as "dice_ci95": [low, high].

`--video` also plays the split as a tower would show it and scores what the app draws
(`videoeval.py`).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from polypview.errors import ConfigError, DataError, ModelFileError
from polypview.inference.training.metrics import (  # noqa: F401 (re-exported: eval's results and tables)
    BOOTSTRAP_RESAMPLES,
    CI_KEY,
    CI_LEVEL,
    METRIC_CLASSES,
    TABLE_CLASSES,
    ConfusionCounter,
    ImageCounts,
    bootstrap_intervals,
    dice_cell,
    micro_with_intervals,
    pct_text,
    row_label,
    text_table,
)
from polypview.inference.training.paired import Units, format_paired, paired_differences

# BlazeNeo Table 4 figures that models.md states (§3.2, §10): parameters and GMACs at 352².
# models.md does not give the paper's Dice/IoU, so none are printed ("paper: n/a").
PAPER = {
    "blazeneo-dha": {"params": 17_143_324, "gmacs": 11.06},
    "hardnet-mseg3": {"params": 17_424_031, "gmacs": 11.38},
    "neounet": {"params": 38_288_397, "gmacs": 39.88},
}
GMAC_SIZE = 352
FPS_WARMUP, FPS_MIN_RUNS, FPS_MIN_SECONDS = 3, 10, 2.0


def add_arguments(parser) -> None:
    """Command-line options of `polypview eval`."""
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="shipped model names (as --model takes them), model files (.onnx) or checkpoints (.pt)")
    parser.add_argument("--data", type=Path, default=None,
                        help="NeoPolyp-Small folder (default: $POLYPVIEW_DATA or ../shared/data/neopolyp_small)")
    parser.add_argument("--split", default="test",
                        help="test | val | train (the packaged split), all (every pair), a file of names, or a "
                             "split folder (`polypview split`: its test.txt)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                        help="also write the results here (model cards read it: export --card)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: its own)")
    parser.add_argument("--no-fps", dest="fps", action="store_false", help="skip the speed measurement")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument("--bootstrap", default=str(BOOTSTRAP_RESAMPLES), metavar="N",
                        help=f"bootstrap resamples for the 95 %% intervals (default {BOOTSTRAP_RESAMPLES}; 0: none)")
    parser.add_argument("--seed", default="0", help="seed of the bootstrap and of the --video clip (default 0)")
    parser.add_argument("--video", action="store_true",
                        help="also play the split as a tower shows it (1920x1080, pan and zoom, black-framed views) "
                             "and score the masks as the app draws them")
    parser.add_argument("--video-fps", default="30", metavar="FPS", help="frame rate of the --video clip (default 30)")
    parser.add_argument("--video-threshold", default=None, metavar="T",
                        help="draw the --video masks at this score threshold, as the viewer's --threshold (default: "
                             "the overlay's, 0.5): trades missed frames against false regions on normal mucosa")
    parser.add_argument("--video-min-peak", default=None, metavar="P",
                        help="draw a --video region only if its highest score reaches P, as the viewer's --min-peak "
                             "(default: the model file's own, else the overlay's)")
    parser.add_argument("--video-class-memory", default=None, metavar="W",
                        help="keep each --video polyp's class steady over frames, as the viewer's --class-memory "
                             "(default: the overlay's; 0: off)")
    parser.add_argument("--video-class-confidence", default=None, metavar="C",
                        help="draw a --video polyp 'class uncertain' when less than C of its class probability is on "
                             "its class, as the viewer's --class-confidence (default: the overlay's, 0: off)")
    parser.add_argument("--video-smoothing", default="0", metavar="N",
                        help="average the --video masks' scores over the last N frames, as the viewer's --smoothing "
                             "(default 0: off)")
    parser.add_argument("--video-seconds-per-image", default="0.5-1", metavar="S",
                        help="how long each image is shown: a range MIN-MAX (seeded) or a number (default 0.5-1)")
    parser.add_argument("--video-clips", default="1", metavar="N",
                        help="play N clips one after another (seeds SEED, SEED+1, ...: every image again from "
                             "other views) and score them together: N times the polyp-free time for the false-region "
                             "rate (default 1)")


def run(args) -> int:
    """Entry point of `polypview eval`."""
    from polypview.inference.training.data import neopolyp_dir

    resamples, seed, video = _parse_options(args)
    data = args.data or neopolyp_dir()
    pairs = eval_pairs(data, args.split)
    paths = [model_path(m) for m in args.models]
    results = [evaluate_path(p, pairs, threads=args.threads, fps=args.fps, progress=args.progress,
                             resamples=resamples, seed=seed, video=video)
               for p in paths]
    pair_with_first(results, resamples, seed)
    print(format_table(results, args.split))
    if video is not None:
        from polypview.inference.training.videoeval import format_video_table

        print()
        print(format_video_table(results))
    if len(results) > 1:
        print()
        print(format_paired([row_label(r, results) for r in results], [r.paired or {} for r in results[1:]],
                            results[0].images, resamples))
    if args.json is not None:
        write_json(args.json, results, data, args.split)
        print(f"wrote {args.json}")
    return 0


def model_path(model: str) -> Path:
    """A shipped model's file, or the given checkpoint or model file (ModelFileError when neither)."""
    from polypview.inference.runtime.engine import resolve_model

    path = Path(model).expanduser()
    if path.suffix.lower() == ".pt" and path.is_file():
        return path
    return resolve_model(model)


def _parse_options(args):
    """(bootstrap resamples, seed, VideoOptions or None) from the command line; ConfigError when bad."""
    from polypview.inference.training.towerclip import parse_int

    resamples = parse_int(getattr(args, "bootstrap", BOOTSTRAP_RESAMPLES), "--bootstrap")
    seed = parse_int(getattr(args, "seed", 0), "--seed")
    if not getattr(args, "video", False):
        return resamples, seed, None
    from polypview.benchclips import parse_fps
    from polypview.inference.training.towerclip import VideoOptions, parse_seconds

    try:
        fps = parse_fps(args.video_fps)
    except ConfigError as exc:
        raise ConfigError(f"--video-fps: {exc}") from None
    return resamples, seed, VideoOptions(fps=fps, seconds=parse_seconds(args.video_seconds_per_image), seed=seed,
                                         threshold=_threshold(getattr(args, "video_threshold", None)),
                                         min_peak=_threshold(getattr(args, "video_min_peak", None), "--video-min-peak"),
                                         smoothing=_smoothing(getattr(args, "video_smoothing", 0)),
                                         class_memory=_memory(getattr(args, "video_class_memory", None)),
                                         class_confidence=_threshold(getattr(args, "video_class_confidence", None),
                                                                     "--video-class-confidence"),
                                         clips=parse_int(getattr(args, "video_clips", 1), "--video-clips", minimum=1))


def _threshold(text, name: str = "--video-threshold") -> float | None:
    """A score option (--video-threshold, --video-min-peak): a number in [0, 1], or None for the overlay's own."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a number between 0 and 1, got {text!r}")
    return value


def _smoothing(text) -> int:
    """--video-smoothing: a whole number of frames >= 0."""
    from polypview.inference.training.towerclip import parse_int

    return parse_int(text, "--video-smoothing")


def _memory(text) -> float | None:
    """--video-class-memory: a number in [0, 1), or None for the overlay's own."""
    value = _threshold(text, "--video-class-memory")
    if value is not None and value >= 1.0:
        raise ConfigError(f"--video-class-memory must be at least 0 and below 1, got {text!r}")
    return value


# ---------------------------------------------------------------- data


def eval_pairs(data: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of the evaluation split."""
    from polypview.inference.training.data import SPLIT_PARTS, folder_pairs, load_split, neopolyp_pairs

    data = Path(data)
    if not data.is_dir():
        raise DataError(f"dataset folder not found: {data} (pass --data or set POLYPVIEW_DATA)")
    if split == "all":
        return folder_pairs(data)
    if split in SPLIT_PARTS:
        return neopolyp_pairs(data, load_split(split))
    names_file = Path(split)
    if names_file.is_dir():  # a split folder (`polypview split`, train --split): its test part
        names_file = names_file / "test.txt"
    if not names_file.is_file():
        raise ConfigError(f"--split {split!r} is neither test/val/train/all, a file of names nor a split folder "
                          "with test.txt")
    names = [n.strip() for n in names_file.read_text().splitlines() if n.strip()]
    return neopolyp_pairs(data, names)


# ---------------------------------------------------------------- predictors


class OnnxPredictor:
    """A model file run as the app runs it: runtime pre-processing, ONNX Runtime on the CPU."""

    def __init__(self, path: Path, threads: int | None = None):
        self.path = Path(path)
        self.session, self.info, self.threads = _open(self.path, threads)
        self.preprocess = _preprocessor(self.info)

    def probs(self, image_bgr: np.ndarray) -> np.ndarray:
        """(K, h, w) foreground probabilities at model resolution."""
        return self.run(self.preprocess(image_bgr))[0]

    def run(self, blob: np.ndarray) -> np.ndarray:
        """Raw model call on a normalised blob (N, 3, h, w)."""
        return self.session(blob)

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray:
        """uint8 label map at model resolution (metrics.labels_from_probs)."""
        from polypview.inference.training.metrics import labels_from_probs

        return labels_from_probs(self.probs(image_bgr), self.info.activation)


def _open(path: Path, threads: int | None):
    """(blob -> probs callable, ModelInfo, intra-op threads): the runtime's ONNX Runtime backend on the CPU, as the
    app opens it (a slow model may get more threads), with the runtime's input/output checks."""
    from polypview.inference.runtime.engine import backend_module, check_io
    from polypview.inference.runtime.modelfile import ModelInfo

    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    backend = backend_module("ort").open_backend(path, threads=threads, provider="cpu")
    info = ModelInfo.from_metadata(backend.metadata, source=f"model file {path}")
    check_io(info, backend.inputs, backend.outputs, f"model file {path}")
    return backend.run, info, backend.threads


def _preprocessor(info) -> Callable[[np.ndarray], np.ndarray]:
    """BGR frame -> (1, 3, h, w) blob: the runtime's own pre-processing."""
    from polypview.inference.runtime.engine import Preprocess

    return Preprocess(info)


# ---------------------------------------------------------------- evaluation


@dataclass
class EvalResult:
    """One model's row of the table."""

    model: str
    architecture: str
    input_size: tuple[int, int]
    micro: dict
    macro: dict
    images: int
    fps: float | None = None
    latency_ms: float | None = None
    params: int | None = None
    gmacs: float | None = None
    paper: dict = field(default_factory=dict)
    provider: str = "CPUExecutionProvider"
    threads: int | None = None  # ONNX Runtime intra-op threads the FPS was measured with
    micro_region: dict | None = None  # micro Dice/IoU with one class per connected polyp region
    micro_true_class: dict | None = None  # the same regions with their true majority class (the class ceiling)
    bootstrap: dict | None = None  # how the intervals (micro[...]["dice_ci95"]) were computed
    video: dict | None = None  # `--video`: the scores of the tower clip (videoeval.evaluate_video)
    paired: dict | None = None  # this model minus the run's first model (paired.paired_differences)
    units: Units | None = field(default=None, repr=False, compare=False)  # what the pairing resamples; not in the JSON


def evaluate_predictor(predict: Callable[[np.ndarray], np.ndarray], pairs, progress: bool = False,
                       region_counter=None, true_class_counter=None):
    """Micro/macro counts of `predict(BGR image) -> label map` over (image, mask) pairs.

    With `region_counter` (a ConfusionCounter), also count the same predictions with one class
    per connected polyp region; with `true_class_counter`, with each predicted region given its
    true majority class (`labels.true_class_per_region`). The returned counter is an ImageCounts
    (per-image counts kept).
    """
    import cv2
    from tqdm import tqdm

    from polypview.inference.runtime.labels import one_class_per_region, polyp_mask, true_class_per_region
    from polypview.inference.training.data import read_neopolyp_mask, resize_labels

    counter = ImageCounts()
    for image_path, mask_path in tqdm(pairs, desc="eval", disable=not progress, mininterval=5.0):
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"cannot decode image {image_path}")
        truth = read_neopolyp_mask(mask_path)
        labels = predict(image)
        counter.update(resize_labels(labels, truth.shape[:2]), truth)
        if region_counter is not None:
            voted = one_class_per_region(labels, polyp_mask(labels))
            region_counter.update(resize_labels(voted, truth.shape[:2]), truth)
        if true_class_counter is not None:
            true_class_counter.update(true_class_per_region(resize_labels(labels, truth.shape[:2]), truth), truth)
    return counter


def measure_fps(run: Callable[[np.ndarray], np.ndarray], input_size) -> tuple[float, float]:
    """(frames per second, median ms) of the bare model call at batch 1."""
    blob = np.random.default_rng(0).standard_normal((1, 3, *input_size)).astype(np.float32)
    for _ in range(FPS_WARMUP):
        run(blob)
    times, start = [], time.perf_counter()
    while len(times) < FPS_MIN_RUNS or time.perf_counter() - start < FPS_MIN_SECONDS:
        t = time.perf_counter()
        run(blob)
        times.append(time.perf_counter() - t)
    median = float(np.median(times))
    return 1.0 / median, median * 1e3


def complexity(architecture: str) -> tuple[int | None, float | None]:
    """(inference parameters, GMACs at 352²) of a registered architecture; (None, None) otherwise
    (also without torch: a model file is evaluated without it)."""
    try:
        from polypview.inference.models import create_model, inference_params, list_models
        from polypview.inference.models.flops import count_macs
    except ImportError:
        return None, None

    if architecture not in list_models():
        return None, None
    model = create_model(architecture)
    return inference_params(model), count_macs(model, GMAC_SIZE) / 1e9


def evaluate_path(path: Path, pairs, threads: int | None = None, fps: bool = True,
                  progress: bool = False, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                  video=None) -> EvalResult:
    """Evaluate a checkpoint or a model file on `pairs` (and on the tower clip with `video`, a VideoOptions)."""
    path = Path(path)
    options = dict(resamples=resamples, seed=seed, video=video)
    if path.suffix.lower() == ".onnx":
        return evaluate_model_file(path, pairs, threads, fps, progress, **options)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = _export_checkpoint(path, Path(tmp))
        result = evaluate_model_file(onnx_path, pairs, threads, fps, progress, **options)
    result.model = str(path)
    return result


def _export_checkpoint(path: Path, folder: Path) -> Path:
    from polypview.inference.training.checkpoints import load_checkpoint, model_from_checkpoint
    from polypview.inference.training.export import export_model, info_from_checkpoint

    ckpt = load_checkpoint(path)
    info = info_from_checkpoint(ckpt, int(ckpt.get("input_size") or 0) or None)
    target = folder / "model.onnx"
    export_model(model_from_checkpoint(ckpt), ckpt["model"], target, info=info)
    return target


def evaluate_model_file(path: Path, pairs, threads: int | None = None, fps: bool = True,
                        progress: bool = False, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                        video=None) -> EvalResult:
    """Evaluate one ONNX model file; `video` (a videoeval.VideoOptions) adds the tower clip's scores."""
    predictor = OnnxPredictor(path, threads)
    regions, true_class = ImageCounts(), ImageCounts()
    counter = evaluate_predictor(predictor, pairs, progress, region_counter=regions, true_class_counter=true_class)
    summary = counter.as_dict()
    micro = micro_with_intervals(summary["micro"], bootstrap_intervals(counter.per_image(), resamples, seed))
    micro_region = micro_with_intervals(regions.as_dict()["micro"],
                                        bootstrap_intervals(regions.per_image(), resamples, seed))
    arch = predictor.info.architecture
    params, gmacs = complexity(arch)
    speed = measure_fps(predictor.run, predictor.info.input_size) if fps else (None, None)
    video_scores: dict | None = None
    video_units: dict = {}  # filled by evaluate_video
    if video is not None:
        from polypview.inference.training.videoeval import evaluate_video

        video_scores = evaluate_video(path, pairs, video, threads=threads, progress=progress, resamples=resamples,
                                      units=video_units)
    return EvalResult(
        model=str(path), architecture=arch, input_size=tuple(predictor.info.input_size),
        micro=micro, macro=summary["macro"], images=summary["images"],
        fps=speed[0], latency_ms=speed[1], params=params, gmacs=gmacs, paper=PAPER.get(arch, {}),
        micro_region=micro_region, micro_true_class=true_class.as_dict()["micro"], threads=predictor.threads,
        bootstrap={"resamples": resamples, "seed": seed, "level": CI_LEVEL, "unit": "image",
                   "method": "percentile"} if resamples > 0 else None,
        video=video_scores,
        units=Units(counter.per_image(), video_units.get("dice"), video_units.get("rates"),
                    None if video is None else video.fps),
    )


def pair_with_first(results: list[EvalResult], resamples: int, seed: int) -> None:
    """Give every result after the first its paired difference from the first (same images, same clip)."""
    for r in results[1:]:
        if results[0].units is not None and r.units is not None:
            r.paired = paired_differences(results[0].units, r.units, resamples, seed)


# ---------------------------------------------------------------- output


def format_table(results: list[EvalResult], split: str = "test") -> str:
    """A text table shaped like BlazeNeo's Table 4 (Dice/IoU in %), a paper row under each model.

    Dice cells carry their 95 % bootstrap interval when the results have one.
    """
    head = ["Model", "Size"] + [f"{label} {m}" for _, label in TABLE_CLASSES for m in ("Dice", "IoU")]
    head += ["FPS", "Params (M)", "GMACs@352"]
    rows = [head]
    for r in results:
        rows.append(_row(r, row_label(r, results)))
        if r.micro_region is not None:
            rows.append(_region_row(r))
        if r.micro_true_class is not None:
            rows.append(_region_row(r, "  true class/polyp", r.micro_true_class))
        rows.append(_paper_row(r))
    lines = text_table(rows)
    n = results[0].images if results else 0
    return "\n".join(lines) + (
        f"\n(micro-averaged over {n} images of split {split!r} at mask resolution, per-pixel argmax as the papers; "
        "'one class/polyp': each connected polyp region takes its majority class, as the app shows it; "
        "'true class/polyp': the same regions given the true class under them, the ceiling of a better "
        "class decision (not a model's score); "
        f"{_ci_note(results, n)}{_no_truth_note(results)}FPS: ONNX Runtime CPU, batch 1{_threads_note(results)})")


def _no_truth_note(results: list[EvalResult]) -> str:
    """Why a class Dice reads n/a: its class has no pixel in the truth (metrics.micro_dice; '' when every class
    has one)."""
    absent = [label for key, label in TABLE_CLASSES if any(r.micro[key]["dice"] is None for r in results)]
    if not absent:
        return ""
    return (f"{' and '.join(absent)} n/a: no pixel of that class in these masks (a dataset without classes, "
            "such as Kvasir-SEG's binary masks, scores the polyp only); ")


def _ci_note(results: list[EvalResult], images: int) -> str:
    """What the bracketed intervals are, '' when no result has one."""
    boot = next((r.bootstrap for r in results if r.bootstrap), None)
    if boot is None:
        return ""
    return (f"Dice [95 % CI]: percentile bootstrap over the {images} images ({boot['resamples']} resamples "
            f"with replacement, seed {boot['seed']}, micro Dice recomputed from the resampled images' TP/FP/FN); ")


def _threads_note(results: list[EvalResult]) -> str:
    """', N intra-op threads' (or per model when they differ), '' when unknown."""
    known = [(r.architecture, r.threads) for r in results if r.fps is not None and r.threads]
    if not known:
        return ""
    if len({t for _, t in known}) == 1:
        return f", {known[0][1]} intra-op thread(s)"
    return ", intra-op threads: " + ", ".join(f"{arch} {t}" for arch, t in known)


def _row(r: EvalResult, name: str) -> list[str]:
    cells = [name, f"{r.input_size[0]}"]
    for key, _ in TABLE_CLASSES:
        cells += [dice_cell(r.micro[key]), pct_text(r.micro[key]["iou"])]
    cells += ["n/a" if r.fps is None else f"{r.fps:.1f}",
              "n/a" if r.params is None else f"{r.params / 1e6:.3f}",
              "n/a" if r.gmacs is None else f"{r.gmacs:.2f}"]
    return cells


def _region_row(r: EvalResult, name: str = "  one class/polyp", micro: dict | None = None) -> list[str]:
    micro = r.micro_region if micro is None else micro
    cells = [name, ""]
    for key, _ in TABLE_CLASSES:
        cells += [dice_cell(micro[key]), pct_text(micro[key]["iou"])]
    return cells + [""] * 3


def _paper_row(r: EvalResult) -> list[str]:
    cells = ["  paper", ""] + ["n/a"] * (2 * len(TABLE_CLASSES)) + ["n/a"]
    params, gmacs = r.paper.get("params"), r.paper.get("gmacs")
    cells += ["n/a" if params is None else f"{params / 1e6:.3f}", "n/a" if gmacs is None else f"{gmacs:.2f}"]
    return cells


def write_json(path: Path, results: list[EvalResult], data: Path, split: str) -> None:
    """Write the results (and what they were measured on) as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"data": str(data), "split": split, "gmac_size": GMAC_SIZE,
               "results": [{k: v for k, v in asdict(replace(r, units=None)).items() if k != "units"} for r in results]}
    path.write_text(json.dumps(payload, indent=1))
