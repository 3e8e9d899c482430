"""Paired comparison of models scored on the same images: `polypview eval A B ...` prints B - A with intervals.

Models evaluated in one run are scored on the same images, and with `--video` on the same clip (the clip
depends on the images, the seed and the clip options only). Their difference is far better known than
either figure alone: an image that is hard for one model is mostly hard for the other too, and the two
separate intervals hide that. Each resample draws the images with replacement once for both models,
recomputes both figures from the drawn images' summed counts (micro Dice from TP/FP/FN; the clip's rates as
ratios of sums over source images, as `videoeval.video_metrics`), and keeps the difference; the interval
is the 95 % percentile interval of those differences. An interval that excludes 0 says the models differ
on this data; one that straddles 0 says the split cannot tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from polypview.inference.training.metrics import (
    CI_LEVEL,
    METRIC_CLASSES,
    TABLE_CLASSES,
    micro_dice,
    percentile_interval,
    resampled_sums,
    text_table,
)
from polypview.inference.training.videoeval import RATE_KEYS, rates_of


@dataclass
class Units:
    """What a paired bootstrap resamples of one model's evaluation (kept in memory, not in the JSON)."""

    images: np.ndarray | None  # (images, classes, 3) still images' TP/FP/FN (ImageCounts.per_image); None: no stills
    video: np.ndarray | None = None  # (source images, classes, 3) the clip's TP/FP/FN per source image
    video_rates: np.ndarray | None = None  # (source images, 5) videoeval.rate_units
    fps: float | None = None  # the clip's frame rate (for the per-minute and per-second rates)


def paired_differences(a: Units, b: Units, resamples: int, seed: int = 0, level: float = CI_LEVEL) -> dict:
    """{"images": {class: diff}, "video": {class or rate: diff}} of b - a; each diff {"diff", "ci95"}.

    Still images are compared when both have the same number of images; the clip when both have one with
    the same source images. A missing or undefined figure gives None."""
    out: dict = {}
    if a.images is not None and b.images is not None and a.images.shape == b.images.shape:
        out["images"] = _dice_differences(a.images, b.images, resamples, seed, level)
    if (a.video is not None and b.video is not None and a.video.shape == b.video.shape
            and a.video_rates is not None and b.video_rates is not None and a.fps is not None and a.fps == b.fps):
        out["video"] = {**_dice_differences(a.video, b.video, resamples, seed, level),
                        **_rate_differences(a.video_rates, b.video_rates, a.fps, resamples, seed, level)}
    return out


def _difference(point_a, point_b, resampled_a, resampled_b, level: float) -> dict:
    diff = None if not (np.isfinite(point_a) and np.isfinite(point_b)) else float(point_b - point_a)
    ci = None if resampled_a is None else percentile_interval(resampled_b - resampled_a, level)
    return {"diff": diff, "ci95": ci}


def _dice_differences(a: np.ndarray, b: np.ndarray, resamples: int, seed: int, level: float) -> dict:
    both = np.stack([np.asarray(a, np.int64), np.asarray(b, np.int64)], axis=1)  # (units, 2, classes, 3)
    point = micro_dice(both.sum(axis=0))  # (2, classes)
    drawn = micro_dice(resampled_sums(both, resamples, seed)) if resamples > 0 and len(both) else None
    return {name: _difference(point[0, k], point[1, k], None if drawn is None else drawn[:, 0, k],
                              None if drawn is None else drawn[:, 1, k], level)
            for k, name in enumerate(METRIC_CLASSES)}


def _rate_differences(a: np.ndarray, b: np.ndarray, fps: float, resamples: int, seed: int, level: float) -> dict:
    both = np.stack([np.asarray(a, np.int64), np.asarray(b, np.int64)], axis=1)  # (units, 2, 5)
    point = rates_of(both.sum(axis=0), fps)
    drawn = rates_of(resampled_sums(both, resamples, seed), fps) if resamples > 0 and len(both) else None
    return {key: _difference(point[key][0], point[key][1], None if drawn is None else drawn[key][:, 0],
                             None if drawn is None else drawn[key][:, 1], level)
            for key in RATE_KEYS}


# ---------------------------------------------------------------- output


def _cell(d: dict | None, scale: float, fmt: str) -> str:
    if d is None or d["diff"] is None:
        return "n/a"
    text = format(scale * d["diff"], "+" + fmt)
    ci = d["ci95"]
    return text if not ci else f"{text} [{scale * ci[0]:{'+' + fmt}} to {scale * ci[1]:{'+' + fmt}}]"


def format_paired(names: list[str], paired: list[dict], images: int, resamples: int) -> str:
    """The comparison's text: one row per model after the first (its figures minus the first model's).

    `names`: the models' row labels, the first being the reference; `paired[i]`: `paired_differences` of the
    first model and model i + 1."""
    if not paired:
        return ""
    parts = [f"Paired with {names[0]} (each row: that model minus it on the same {images} images, Dice in points; "
             f"[95 % interval of the difference: the images resampled together for both models, {resamples} "
             "times]; an interval that holds 0 means this split cannot tell the two apart)"]
    if any("images" in p for p in paired):
        head = ["Model"] + [f"{label} Dice" for _, label in TABLE_CLASSES]
        rows = [head] + [[name] + [_cell(p.get("images", {}).get(key), 100, ".1f") for key, _ in TABLE_CLASSES]
                         for name, p in zip(names[1:], paired)]
        parts.append(_table(rows))
    if any("video" in p for p in paired):
        head = (["Model"] + [f"clip {label} Dice" for _, label in TABLE_CLASSES]
                + ["Missed frames (points)", "FP regions/min", "Class flips/polyp-s"])
        rows = [head]
        for name, p in zip(names[1:], paired):
            v = p.get("video", {})
            rows.append([name] + [_cell(v.get(key), 100, ".1f") for key, _ in TABLE_CLASSES]
                        + [_cell(v.get("missed_share"), 100, ".1f"), _cell(v.get("fp_regions_per_min"), 1, ".0f"),
                           _cell(v.get("flips_per_polyp_second"), 1, ".2f")])
        parts += ["The tower clip as drawn, paired the same way (source images resampled with all their frames):",
                  _table(rows)]
    return "\n".join(parts)


def _table(rows: list[list[str]]) -> str:
    return "\n".join(text_table(rows))
