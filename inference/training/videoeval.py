"""`polypview eval --video`: the evaluated images played as a tower shows them, scored as the app draws.

The clip (towerclip.py): every image of the evaluated split, in split order, shown for 0.5-1 s in a
1920x1080 frame with a slow pan and zoom, framed in a tower window, close on the polyp, on its edge
or away from it.

Each frame's ground truth is the image's mask warped with the same affine transform (nearest),
black (background) outside the picture. Frames go through the app's own code: the endoscope image
area is found with `roi.detect_roi` on each image's first frame and kept for its frames (as the
pipeline finds it when a stream starts), `Engine.predict` runs the model on that area, and the
mask is what `Overlay.draw` draws with the app's default `OverlaySettings` (threshold, minimum
region area, one class per connected region) and the model file's own region peak, if it has one:
drawn at opacity 1 with code colours (class k = k + 1) on a black canvas the size of the frame, so
every drawn pixel names its class. Every frame is
inferred and drawn with its own mask (the pipeline's sync mode). No file is written: frames stay
in memory, nothing made from the dataset lands in the repository.

Scoring is done at 480x270 (the drawn 1080p mask and the 1080p truth sampled with nearest):
micro Dice (with a 95 % bootstrap interval over source images), missed frames, false regions per
minute on polyp-free frames, and class flips per polyp-second (`video_metrics`). With
`VideoOptions.clips` > 1, several clips of the same images (other seeds, other views) are played one
after another and scored together; the bootstrap still resamples source images.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from polypview.inference.runtime.labels import BACKGROUND, NEOPLASTIC, NON_NEOPLASTIC, UNDEFINED
from polypview.inference.training.metrics import (
    METRIC_CLASSES,
    ImageCounts,
    bootstrap_intervals,
    micro_dice,
    micro_with_intervals,
    percentile_interval,
    resampled_sums,
)
from polypview.inference.training.towerclip import KINDS, TowerClip, VideoOptions

# ---------------------------------------------------------------- the app's drawn mask


class DrawnLabels:
    """The mask the app draws, as a label map: `Overlay.draw` with code colours at opacity 1.

    Class k is drawn in colour (k+1, k+1, k+1) on a black canvas the size of the frame, with the
    settings' threshold, minimum area and class vote, without the legend; the canvas then says
    for every pixel which class (if any) the overlay put there. Classes named neoplastic and
    non-neoplastic map to those labels, any other (a binary model's "polyp") to UNDEFINED.
    """

    def __init__(self, classes, settings=None):
        from polypview.overlay import Overlay, OverlaySettings

        settings = OverlaySettings() if settings is None else settings
        self.settings = replace(settings, enabled=True, style="fill", opacity=1.0, legend=False)
        code = len(classes) + 1  # "class uncertain" (the overlay's label len(classes)): a polyp of no class
        self.overlay = Overlay(tuple(classes), [(k + 1,) * 3 for k in range(len(classes))], unsure_rgb=(code,) * 3)
        self.lut = np.full(256, BACKGROUND, np.uint8)
        self.lut[code] = UNDEFINED
        for k, name in enumerate(classes):
            self.lut[k + 1] = {"neoplastic": NEOPLASTIC, "non-neoplastic": NON_NEOPLASTIC,
                               "non_neoplastic": NON_NEOPLASTIC}.get(str(name).lower(), UNDEFINED)

    def __call__(self, prediction, frame_shape, roi=None, size=None) -> np.ndarray:
        """uint8 label map of what is drawn on a frame of `frame_shape`, sampled (nearest) to `size` (w, h)."""
        canvas = np.zeros((frame_shape[0], frame_shape[1], 3), np.uint8)
        drawn = self.overlay.draw(canvas, prediction, self.settings, roi)[..., 0]
        if size is not None and (drawn.shape[1], drawn.shape[0]) != tuple(size):
            drawn = cv2.resize(drawn, tuple(size), interpolation=cv2.INTER_NEAREST)
        return cv2.LUT(drawn, self.lut)


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class FrameScore:
    """What the video metrics need of one scored frame."""

    segment: int
    true_pixels: int  # true polyp pixels
    hit: bool  # a drawn polyp pixel lies on the true polyp
    regions: int  # drawn connected regions (8-connected)
    drawn_class: int | None  # majority drawn class on the true polyp (NEOPLASTIC/NON_NEOPLASTIC), None if none
    true_class: int | None = None  # majority true class of the polyp (None: no class, or no polyp)


def score_frame(pred: np.ndarray, truth: np.ndarray, segment: int = 0) -> FrameScore:
    """Score one frame: drawn and true label maps of the same shape."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    drawn = pred != BACKGROUND
    true = truth != BACKGROUND
    on = drawn & true
    regions = cv2.connectedComponents(drawn.view(np.uint8), connectivity=8)[0] - 1 if drawn.any() else 0
    return FrameScore(segment, int(np.count_nonzero(true)), bool(on.any()), int(regions), _majority(pred[on]),
                      _majority(truth[true]))


def _majority(labels: np.ndarray) -> int | None:
    """NEOPLASTIC or NON_NEOPLASTIC, whichever more of `labels` are (ties: neoplastic); None when neither is."""
    neo, non = int(np.count_nonzero(labels == NEOPLASTIC)), int(np.count_nonzero(labels == NON_NEOPLASTIC))
    return None if neo + non == 0 else (NEOPLASTIC if neo >= non else NON_NEOPLASTIC)


def video_metrics(scores: list[FrameScore], fps: float, min_true_pixels: int = 1) -> dict:
    """Missed frames, false regions per minute and class flips per polyp-second of scored frames.

    * A polyp frame has at least `min_true_pixels` true polyp pixels; it is missed when no drawn
      pixel lies on the true polyp.
    * A polyp-free frame has no true polyp pixel; every drawn region on it is false. Rate: their
      count over the polyp-free frames' duration, per minute.
    * Per segment (one source image: one polyp track), the drawn majority class on the true polyp
      is followed over its polyp frames where something is drawn on it; each change between
      consecutive such frames is a flip. Rate: flips over the seconds of polyp frames.
    Frames with a few true pixels (fewer than `min_true_pixels`) count as neither kind.
    """
    polyp = [s for s in scores if s.true_pixels >= max(1, min_true_pixels)]
    free = [s for s in scores if s.true_pixels == 0]
    missed = sum(not s.hit for s in polyp)
    fp_regions = sum(s.regions for s in free)
    fp_frames = sum(s.regions > 0 for s in free)
    tracks = track_flips(polyp)
    flips = sum(tracks.values())
    rates = rates_of(np.array([len(polyp), missed, len(free), fp_regions, flips]), fps)
    found = [s for s in polyp if s.hit]
    shown = [s for s in found if s.drawn_class is not None]
    judged = [s for s in shown if s.true_class is not None]
    right = sum(s.drawn_class == s.true_class for s in judged)
    return {
        "frames": len(scores),
        "polyp_frames": len(polyp),
        "missed_frames": missed,
        "polyp_free_frames": len(free),
        "polyp_free_seconds": len(free) / fps,
        "fp_regions": fp_regions,
        "fp_frames": fp_frames,  # polyp-free frames with at least one drawn region
        "fp_frame_share": fp_frames / len(free) if free else None,
        "tracks": len(tracks),
        "polyp_seconds": len(polyp) / fps,
        "class_flips": flips,
        **{key: float(value) if np.isfinite(value) else None for key, value in rates.items()},
        "min_true_pixels": max(1, min_true_pixels),
        # The class as shown: on the polyp frames where a polyp is drawn on the true one, the share drawn in a
        # class (not "class uncertain"), and of those with a true class, the share drawn in the right one.
        "class_shown_share": len(shown) / len(found) if found else None,
        "class_right_share": right / len(judged) if judged else None,
        "class_right_frames": right, "class_judged_frames": len(judged),
    }


def track_flips(polyp: list[FrameScore]) -> dict[int, int]:
    """{segment: class flips} over polyp frames in order: changes of the drawn class where one is drawn."""
    tracks: dict[int, list] = {}
    for s in polyp:
        tracks.setdefault(s.segment, []).append(s.drawn_class)
    flips = {}
    for segment, classes in tracks.items():
        decided = [c for c in classes if c is not None]
        flips[segment] = sum(a != b for a, b in zip(decided, decided[1:]))
    return flips


def alert_metrics(scores: list[FrameScore], fps: float, min_true_pixels: int = 1, timing=None) -> dict:
    """How the window's alert tone (`polypview.alerts.AlertGate` with `timing`, default its own) would sound.

    * Each polyp track (one view of one image) is fed alone to a fresh gate, frame by frame over its polyp
      frames, as if the screen had been quiet before it: `tracks_alerted` of `tracks` would sound, the median
      `delay_s` after the track's first polyp frame.
    * Each run of consecutive polyp-free frames is fed alone to a fresh gate (as if quiet before it, so this
      counts a false region held `hold_s` that a polyp just before would have kept silent): `false_alerts`,
      per minute of polyp-free frames.
    """
    from polypview.alerts import AlertTiming, appearances

    timing = AlertTiming() if timing is None else timing
    least = max(1, min_true_pixels)
    tracks: dict[int, list[tuple[float, bool]]] = {}
    free_runs: list[list[tuple[float, bool]]] = []
    previous_free = False
    for i, s in enumerate(scores):
        t, drawn = i / fps, s.regions > 0
        if s.true_pixels >= least:
            tracks.setdefault(s.segment, []).append((t, s.hit))
        is_free = s.true_pixels == 0
        if is_free:
            if not previous_free:
                free_runs.append([])
            free_runs[-1].append((t, drawn))
        previous_free = is_free
    delays = []
    for frames in tracks.values():
        times = appearances(frames, timing)
        if times:
            delays.append(times[0] - frames[0][0])
    false_alerts = sum(len(appearances(run, timing)) for run in free_runs)
    free_minutes = sum(len(run) for run in free_runs) / fps / 60.0
    return {"tracks": len(tracks), "tracks_alerted": len(delays),
            "delay_s": float(np.median(delays)) if delays else None,
            "false_alerts": false_alerts,
            "false_alerts_per_min": false_alerts / free_minutes if free_minutes > 0 else None,
            "hold_s": timing.hold_s, "gap_s": timing.gap_s, "quiet_s": timing.quiet_s}


# The clip's rates, each a ratio of sums over source images (`rate_units` columns: polyp frames, missed frames,
# polyp-free frames, false regions, class flips).
RATE_KEYS = ("missed_share", "fp_regions_per_min", "flips_per_polyp_second")


def rate_units(scores: list[FrameScore], images: list[int], min_true_pixels: int = 1) -> np.ndarray:
    """int64 (source images, 5): each image's polyp frames, missed frames, polyp-free frames, false regions and
    class flips (`images[i]` is frame i's image; rows in sorted image order, as `np.unique`)."""
    _, unit = np.unique(np.asarray(images, dtype=np.int64), return_inverse=True)
    least = max(1, min_true_pixels)
    per = np.zeros((int(unit.max()) + 1 if unit.size else 0, 5), np.int64)
    segment_unit = {}
    for s, u in zip(scores, unit):
        if s.true_pixels >= least:
            per[u, 0] += 1
            per[u, 1] += not s.hit
            segment_unit[s.segment] = u
        elif s.true_pixels == 0:
            per[u, 2] += 1
            per[u, 3] += s.regions
    for segment, n in track_flips([s for s in scores if s.true_pixels >= least]).items():
        per[segment_unit[segment], 4] += n
    return per


def rates_of(sums: np.ndarray, fps: float) -> dict[str, np.ndarray]:
    """{RATE_KEYS: array} from summed `rate_units` columns (..., 5); NaN where a rate has no denominator."""
    polyp, missed, free, regions, flips = np.moveaxis(np.asarray(sums, dtype=np.float64), -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return dict(zip(RATE_KEYS, (missed / polyp, regions / (free / fps / 60.0), flips / (polyp / fps))))


def video_intervals(units: np.ndarray, fps: float, resamples: int = 0, seed: int = 0,
                    level: float = 0.95) -> dict[str, list[float] | None]:
    """95 % percentile bootstrap intervals of missed share, false regions per minute and flips per polyp-second.

    `units`: `rate_units`. The unit is the source image, as for the clip's Dice: an image's frames, its polyp-free
    ones and its tracks are drawn together, so a few hard images weigh as much as they do. Each resample's rate is
    a ratio of sums, as in `video_metrics`; a rate with no denominator in any resample is None.
    """
    if resamples <= 0 or len(units) == 0:
        return {f"{k}_ci95": None for k in RATE_KEYS}
    rates = rates_of(resampled_sums(np.asarray(units), resamples, seed), fps)
    return {f"{k}_ci95": percentile_interval(rates[k], level) for k in RATE_KEYS}


# ---------------------------------------------------------------- evaluation


@dataclass
class VideoRun:
    """Accumulates a clip's scores: per-frame counts (micro Dice) and FrameScores."""

    fps: float
    counts: ImageCounts = field(default_factory=ImageCounts)
    scores: list[FrameScore] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # each frame's kind of view
    images: list[int] = field(default_factory=list)  # each frame's source image (the bootstrap's unit)

    def add(self, pred: np.ndarray, truth: np.ndarray, segment: int, kind: str = "", image: int | None = None) -> None:
        """Score a frame of `segment` (one view of one image: a polyp track) of source `image` (default: segment)."""
        self.counts.update(pred, truth)
        self.scores.append(score_frame(pred, truth, segment))
        self.kinds.append(kind)
        self.images.append(segment if image is None else image)

    def units(self, min_true_pixels: int) -> tuple[np.ndarray, np.ndarray]:
        """Per source image (sorted): (images, classes, 3) TP/FP/FN summed over its frames, and its `rate_units`:
        what the bootstrap resamples, for one model's intervals or a paired comparison of two."""
        per_frame = self.counts.per_image()
        _, group = np.unique(np.array(self.images, dtype=np.int64), return_inverse=True)
        dice_units = np.zeros((group.max() + 1 if group.size else 0, *per_frame.shape[1:]), np.int64)
        np.add.at(dice_units, group, per_frame)
        return dice_units, rate_units(self.scores, self.images, min_true_pixels)

    def summary(self, min_true_pixels: int, resamples: int, seed: int, units: dict | None = None) -> dict:
        """Micro Dice/IoU with bootstrap intervals over source images, `video_metrics`, and both per kind of view;
        `units`, when given, receives what the intervals resampled (`units()`: "dice", "rates")."""
        per_frame = self.counts.per_image()
        dice_units, rates = self.units(min_true_pixels)
        if units is not None:
            units["dice"], units["rates"] = dice_units, rates
        intervals = bootstrap_intervals(dice_units, resamples, seed)
        by_view = {}
        for kind in sorted({k for k in self.kinds if k}, key=lambda k: (KINDS + (k,)).index(k)):
            picked = [i for i, k in enumerate(self.kinds) if k == kind]
            sums = per_frame[picked].sum(axis=0)
            micro = {c: {"dice": _dice(*sums[j]), **dict(zip(("tp", "fp", "fn"), map(int, sums[j])))}
                     for j, c in enumerate(METRIC_CLASSES)}
            scores = [self.scores[i] for i in picked]
            by_view[kind] = {"images": len({s.segment for s in scores}), "micro": micro,  # views, with several clips
                             **video_metrics(scores, self.fps, min_true_pixels)}
        return {"micro": micro_with_intervals(self.counts.as_dict()["micro"], intervals),
                **video_metrics(self.scores, self.fps, min_true_pixels),
                **video_intervals(rates, self.fps, resamples, seed),
                "alerts": alert_metrics(self.scores, self.fps, min_true_pixels),
                "by_view": by_view}


def _dice(tp: int, fp: int, fn: int) -> float | None:
    dice = float(micro_dice(np.array([tp, fp, fn])))
    return None if math.isnan(dice) else dice


def min_true_pixels(settings, score_size) -> int:
    """A true polyp smaller than the smallest region the overlay draws is not a polyp frame."""
    return max(1, int(math.ceil(settings.min_area * score_size[0] * score_size[1])))


def evaluate_video(model_path: Path, pairs, options: VideoOptions = VideoOptions(), threads: int | None = None,
                   progress: bool = False, resamples: int = 2000, units: dict | None = None) -> dict:
    """Play the clip of `pairs` through the app's engine and overlay; the scores as a JSON-ready dict.

    `units`, when given, receives what a paired comparison resamples (`VideoRun.units`: "dice", "rates")."""
    from tqdm import tqdm

    from polypview.inference.runtime.engine import load_engine
    from polypview.overlay import OverlaySettings

    given = {"threshold": options.threshold, "min_peak": options.min_peak, "class_memory": options.class_memory,
             "class_confidence": options.class_confidence}
    clip = TowerClip(pairs, options)
    engine = load_engine(model_path, backend="ort", threads=threads, provider="cpu")
    timings = {"make": 0.0, "roi": 0.0, "predict": 0.0, "draw": 0.0, "score": 0.0}
    try:  # as the app draws: the options given, then the model file's own defaults (its region peak), then the app's
        settings = OverlaySettings(**{**engine.info.overlay, "smoothing": options.smoothing,
                                      **{k: v for k, v in given.items() if v is not None}})
        lane = Lane.of(settings, engine.info.classes, options.fps)
        frames = tqdm(clip, total=len(clip), desc="video", disable=not progress, mininterval=5.0)
        roi_segments = play_clip(engine, clip, [lane], options.score_size, timings, frames)
    finally:
        engine.close()
    kinds = {k: sum(s.kind == k for s in clip.segments) for k in KINDS}
    return {
        "images": len(clip.pairs), "clips": options.clips, "frames": clip.frames, "fps": options.fps,
        "seconds": clip.seconds,
        "size": list(options.size), "score_size": list(options.score_size),
        "seconds_per_image": list(options.seconds), "seed": options.seed, "views": kinds,
        "framed_frames": sum(s.frames for s in clip.segments if s.kind == "framed"),
        "roi_images": roi_segments, "threads": engine.threads,
        "model_overlay": dict(engine.info.overlay),  # the drawing defaults the model file carries
        "overlay": {"threshold": settings.threshold, "min_area": settings.min_area, "min_peak": settings.min_peak,
                    "one_class_per_region": settings.one_class_per_region, "smoothing": settings.smoothing,
                    "class_memory": settings.class_memory, "class_confidence": settings.class_confidence},
        "bootstrap": {"resamples": resamples, "seed": options.seed, "level": 0.95, "unit": "source image"},
        "ms_per_frame": {k: 1000 * v / max(1, clip.frames) for k, v in timings.items()},
        **lane.run.summary(min_true_pixels(settings, options.score_size), resamples, options.seed, units),
    }


@dataclass
class Lane:
    """One way of drawing a played clip: overlay settings, their drawing and frame-to-frame steps, the scores."""

    settings: object  # OverlaySettings
    drawn: DrawnLabels
    steps: object  # runtime.temporal.TemporalSteps, fed the frames in order as the app's presenter
    run: VideoRun

    @classmethod
    def of(cls, settings, classes, fps: float) -> Lane:
        from polypview.inference.runtime.temporal import TemporalSteps

        return cls(settings, DrawnLabels(classes, settings), TemporalSteps(settings, len(classes)), VideoRun(fps))


def play_clip(engine, clip: TowerClip, lanes: list[Lane], score_size, timings: dict, frames=None) -> int:
    """Every frame of `clip` inferred once (image area found on each image's first frame, as the pipeline does),
    then drawn and scored by each lane; `timings` gathers seconds per step. Returns the images given an area."""
    from polypview.roi import detect_roi

    roi, roi_segments = None, 0
    t = time.perf_counter()
    for item in clip if frames is None else frames:
        t = _tick(timings, "make", t)
        if item.first:
            roi = detect_roi(item.image)
            roi_segments += roi is not None
            t = _tick(timings, "roi", t)
        prediction = engine.predict(item.image, roi)
        t = _tick(timings, "predict", t)
        truth = cv2.resize(item.truth, score_size, interpolation=cv2.INTER_NEAREST)
        kind = clip.segments[item.segment].kind
        for lane in lanes:
            pred = lane.drawn(lane.steps(prediction), item.image.shape, roi, score_size)
            t = _tick(timings, "draw", t)
            lane.run.add(pred, truth, item.segment, kind, clip.segments[item.segment].image)
            t = _tick(timings, "score", t)
    return roi_segments


def _tick(timings: dict, key: str, t: float) -> float:
    now = time.perf_counter()
    timings[key] = timings.get(key, 0.0) + now - t
    return now


# ---------------------------------------------------------------- output


def overlay_text(overlay: dict) -> str:
    """The overlay settings a clip was drawn with, in words (the table's footnote and the model cards)."""
    words = [f"threshold {overlay['threshold']:g}", f"min area {overlay['min_area']:g}"]
    peak, n, memory = overlay.get("min_peak", 0.0), overlay.get("smoothing", 0), overlay.get("class_memory", 0.0)
    if peak and peak > overlay["threshold"]:
        words.append(f"regions peaking >= {peak:g}")
    words.append("one class per region" if overlay.get("one_class_per_region", True) else "per-pixel classes")
    if n and n > 1:
        words.append(f"scores averaged over the last {n} frames")
    if memory:
        words.append(f"class memory {memory:g}")
    if overlay.get("class_confidence"):
        words.append(f"class uncertain below {overlay['class_confidence']:g} of the class probability")
    return ", ".join(words)


def seeds_text(video: dict) -> str:
    """How a scored clip was seeded, in words: "seed 0", or "3 clips one after another (seeds 0-2)"."""
    clips, seed = video.get("clips", 1), video["seed"]
    return f"seed {seed}" if clips == 1 else f"{clips} clips one after another (seeds {seed}-{seed + clips - 1})"


def view_unit(video: dict) -> str:
    """What a per-view row counts: source images for one clip, views when the images were played several times."""
    return "images" if video.get("clips", 1) == 1 else "views"


def _pct(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def _num(value, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _ci_note(v: dict) -> str:
    boot = v.get("bootstrap") or {}
    if not boot.get("resamples"):
        return ""
    return (f" [95 % percentile bootstrap over the {v['images']} source images, {boot['resamples']} resamples: "
            "an image's frames are resampled together]")


def _video_cells(name: str, v: dict, dice_cell) -> list[str]:
    from polypview.inference.training.metrics import TABLE_CLASSES

    cells = [name] + [dice_cell(v["micro"][key]) for key, _ in TABLE_CLASSES]
    cells.append("n/a" if v["missed_share"] is None else f"{_pct(v['missed_share'])} %"
                 + rate_interval(v, "missed_share", _pct) + f" ({v['missed_frames']}/{v['polyp_frames']})")
    cells.append("n/a" if v["fp_regions_per_min"] is None else
                 f"{v['fp_regions_per_min']:.1f}" + rate_interval(v, "fp_regions_per_min", lambda x: f"{x:.0f}")
                 + f" ({v['fp_regions']} in {v['polyp_free_seconds']:.1f} s; {_pct(v['fp_frame_share'])} % of frames)")
    cells.append(_num(v["flips_per_polyp_second"], ".2f")
                 + rate_interval(v, "flips_per_polyp_second", lambda x: f"{x:.2f}")
                 + f" ({v['class_flips']} in {v['polyp_seconds']:.1f} s)")
    return cells


def class_line(name: str, v: dict) -> str:
    """A model's class as shown on the clip, in words (`video_metrics`' class_shown_share, class_right_share)."""
    return (f"{name}: the class as shown: on {_pct(v['class_shown_share'])} % of the polyp frames with a polyp drawn "
            f"on the true one it is drawn in a class (not 'class uncertain'), and on {_pct(v['class_right_share'])} % "
            f"of those ({v['class_right_frames']} of {v['class_judged_frames']}) in the true one")


def alert_line(name: str, a: dict) -> str:
    """A model's alert-tone figures in words (`alert_metrics`)."""
    delay = "" if a["delay_s"] is None else f", median {a['delay_s']:.2f} s after the polyp came into view"
    rate = "n/a" if a["false_alerts_per_min"] is None else f"{a['false_alerts_per_min']:.1f}"
    return (f"{name}: alert tone (a polyp drawn {a['hold_s']:g} s, gaps under {a['gap_s']:g} s bridged) on "
            f"{a['tracks_alerted']} of {a['tracks']} polyp views{delay}; {a['false_alerts']} false alerts "
            f"({rate} per minute of polyp-free frames), each view and each polyp-free stretch taken as if the "
            "screen had been quiet before it")


def rate_interval(v: dict, key: str, fmt) -> str:
    """A clip rate's bootstrap interval (`video_intervals`) as " [low-high]", or "" where there is none."""
    ci = v.get(f"{key}_ci95")
    return "" if not ci else f" [{fmt(ci[0])}-{fmt(ci[1])}]"


def format_video_table(results) -> str:
    """The video rows (one per model with a `video` result) and a footnote saying what they mean."""
    from polypview.inference.training.metrics import TABLE_CLASSES, dice_cell, row_label, text_table

    rows = [r for r in results if getattr(r, "video", None)]
    if not rows:
        return ""
    head = ["Model"] + [f"{label} Dice" for _, label in TABLE_CLASSES]
    head += ["Missed frames", "FP regions/min", "Class flips/polyp-s"]
    lines = [head]
    for r in rows:
        lines.append(_video_cells(row_label(r, rows), r.video, dice_cell))
        for kind, part in r.video.get("by_view", {}).items():
            lines.append(_video_cells(f"  {kind} ({part['images']} {view_unit(r.video)})", part, dice_cell))
    text = (text_table(lines) + [class_line(row_label(r, rows), r.video) for r in rows if "class_shown_share" in r.video]
            + [alert_line(row_label(r, rows), r.video["alerts"]) for r in rows if "alerts" in r.video])
    v = rows[0].video
    lo, hi = v["seconds_per_image"]
    shown = f"{lo:g} s" if lo == hi else f"{lo:g}-{hi:g} s (seeded)"
    views = ", ".join(f"{n} {k}" for k, n in v["views"].items())
    ms = v["ms_per_frame"]
    timing = ", ".join(f"{k} {ms[k]:.1f}" for k in ("make", "predict", "draw", "score"))
    intro = (f"Video, as a tower shows the images: {v['images']} images as {v['frames']} frames of "
             f"{v['size'][0]}x{v['size'][1]} at {v['fps']:g} fps ({v['seconds']:.1f} s), each image {shown}, "
             f"{seeds_text(v)}; views: {views}")
    framed = (f"{v['roi_images']} of {v['images']} images" if v.get("clips", 1) == 1 else
              f"{v['roi_images']} of {sum(v['views'].values())} views")
    drawn = [(row_label(r, rows), overlay_text(r.video["overlay"])) for r in rows]
    overlay = (f"overlay: {drawn[0][1]}" if len({text for _, text in drawn}) == 1 else
               "overlay, each model with its file's own drawing defaults: "
               + "; ".join(f"{name}: {text}" for name, text in drawn))
    foot = (
        f"(every frame inferred and drawn as the app draws it ({overlay}), image "
        f"area detected on each view's first frame ({framed} framed by black); "
        f"scored at {v['score_size'][0]}x{v['score_size'][1]}. Dice: micro over all frames{_ci_note(v)}; "
        "the rates' intervals come from the same resamples. "
        f"Missed: frames with a true polyp of >= {v['min_true_pixels']} px where nothing drawn touches it. "
        "FP regions/min: drawn regions on frames without any true polyp pixel, per minute of them "
        "(and the share of those frames with any). "
        f"Class flips: changes of the drawn majority class on the true polyp between consecutive frames "
        f"of one image, per second of polyp frames. Indented rows: the same per kind of view (framed: whole "
        f"picture in a black tower frame; polyp: zoom 1-3 on the polyp; edge: polyp centre on the frame's edge; "
        f"away: zoom 1.5-3 away from the polyp). ms per frame, {rows[0].architecture}: {timing})"
    )
    return "\n".join([intro, *text, foot])
