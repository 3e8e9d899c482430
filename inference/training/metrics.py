"""Evaluation metrics as the BlazeNeo paper defines them (models.md section 9), numpy only.

Predictions and truths are label maps of the same size (``labels.py``: 0 neo, 1 non,
2 background, 3 undefined); bring predictions to the truth's resolution first (nearest).

* Micro (the papers' headline numbers): TP/FP/FN summed over all pixels of all images, then
  Dice = 2TP / (2TP + FP + FN) and IoU = TP / (TP + FP + FN), for neoplastic, non-neoplastic
  and polyp (= neo or non or undefined).
* Undefined truth pixels are removed from the two class metrics (NeoUNet's rule; they are
  polyp of unknown class) but kept in the polyp metric. A predicted undefined pixel (a binary
  model's "polyp") is a polyp, and neither class.
* Macro: per-image Dice/IoU with smooth 1, averaged over images (BlazeNeo's eval.py; an image
  where a class is absent from both truth and prediction scores 1).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from polypview.inference.runtime.labels import BACKGROUND, NEOPLASTIC, NON_NEOPLASTIC, UNDEFINED

METRIC_CLASSES = ("neoplastic", "non_neoplastic", "polyp")
MACRO_SMOOTH = 1.0


def _class_masks(pred: np.ndarray, truth: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Per metric class: (predicted mask, true mask, valid mask or None)."""
    defined = truth != UNDEFINED
    return {
        "neoplastic": (pred == NEOPLASTIC, truth == NEOPLASTIC, defined),
        "non_neoplastic": (pred == NON_NEOPLASTIC, truth == NON_NEOPLASTIC, defined),
        "polyp": (pred != BACKGROUND, truth != BACKGROUND, None),
    }


def confusion(pred_mask: np.ndarray, true_mask: np.ndarray, valid: np.ndarray | None = None) -> tuple[int, int, int]:
    """(TP, FP, FN) pixel counts of two boolean masks, restricted to `valid` when given."""
    if valid is not None:
        pred_mask, true_mask = pred_mask & valid, true_mask & valid
    tp = int(np.count_nonzero(pred_mask & true_mask))
    return tp, int(np.count_nonzero(pred_mask)) - tp, int(np.count_nonzero(true_mask)) - tp


def dice_score(tp: float, fp: float, fn: float, smooth: float = 0.0) -> float:
    """(2TP + s) / (2TP + FP + FN + s); NaN when that is 0/0."""
    den = 2 * tp + fp + fn + smooth
    return (2 * tp + smooth) / den if den else math.nan


def iou_score(tp: float, fp: float, fn: float, smooth: float = 0.0) -> float:
    """(TP + s) / (TP + FP + FN + s); NaN when that is 0/0."""
    den = tp + fp + fn + smooth
    return (tp + smooth) / den if den else math.nan


class ConfusionCounter:
    """Accumulate micro TP/FP/FN and per-image (macro) scores over a test set."""

    def __init__(self) -> None:
        self.counts = {c: [0, 0, 0] for c in METRIC_CLASSES}
        self.macro_sums = {c: [0.0, 0.0] for c in METRIC_CLASSES}
        self.images = 0

    def update(self, pred: np.ndarray, truth: np.ndarray) -> None:
        """Add one image: predicted and true label maps of the same shape."""
        if pred.shape != truth.shape:
            raise ValueError(
                f"prediction {pred.shape} and truth {truth.shape} differ in shape; resize the prediction (nearest)"
            )
        for name, masks in _class_masks(pred, truth).items():
            tp, fp, fn = confusion(*masks)
            total = self.counts[name]
            total[0] += tp
            total[1] += fp
            total[2] += fn
            self.macro_sums[name][0] += dice_score(tp, fp, fn, MACRO_SMOOTH)
            self.macro_sums[name][1] += iou_score(tp, fp, fn, MACRO_SMOOTH)
        self.images += 1

    def dice(self) -> dict[str, float]:
        """Micro Dice per class (NaN for a class of which the truth holds no pixel: `micro_dice`)."""
        return {c: float(micro_dice(np.asarray(self.counts[c]))) for c in METRIC_CLASSES}

    def iou(self) -> dict[str, float]:
        """Micro IoU per class (NaN where the Dice is)."""
        dice = self.dice()
        return {c: math.nan if math.isnan(dice[c]) else iou_score(*self.counts[c]) for c in METRIC_CLASSES}

    def macro_dice(self) -> dict[str, float]:
        """Mean per-image Dice (smooth 1) per class."""
        return {c: self.macro_sums[c][0] / self.images if self.images else math.nan for c in METRIC_CLASSES}

    def macro_iou(self) -> dict[str, float]:
        """Mean per-image IoU (smooth 1) per class."""
        return {c: self.macro_sums[c][1] / self.images if self.images else math.nan for c in METRIC_CLASSES}

    def as_dict(self) -> dict:
        """JSON-ready summary (NaN becomes None)."""
        clean = lambda x: None if isinstance(x, float) and math.isnan(x) else x  # noqa: E731
        dice, iou, mdice, miou = self.dice(), self.iou(), self.macro_dice(), self.macro_iou()
        return {
            "images": self.images,
            "micro": {
                c: {"dice": clean(dice[c]), "iou": clean(iou[c]), **dict(zip(("tp", "fp", "fn"), self.counts[c]))}
                for c in METRIC_CLASSES
            },
            "macro": {c: {"dice": clean(mdice[c]), "iou": clean(miou[c])} for c in METRIC_CLASSES},
        }


def labels_from_probs(probs: np.ndarray, activation: str, threshold: float = 0.5) -> np.ndarray:
    """Model-file probabilities (K, H, W) of the K foreground classes -> uint8 label map.

    K = 2 means [neoplastic, non-neoplastic]; K = 1 means a binary polyp model, whose polyp
    pixels become UNDEFINED (3: polyp of unknown class).
    * softmax, K = 2: argmax over [neo, non, background = 1 - neo - non] (threshold unused,
      as the papers' argmax decision).
    * sigmoid, K = 2: neo where p_neo > p_non and p_neo > threshold, non symmetrically
      (BlazeNeo's evaluation of NeoUNet); a tie above the threshold is undefined.
    * K = 1 (either activation): polyp where p > threshold.
    """
    if probs.ndim != 3 or probs.shape[0] not in (1, 2):
        raise ValueError(f"probs must be (K, H, W) with K = 1 or 2, got {probs.shape}")
    if activation not in ("softmax", "sigmoid"):
        raise ValueError(f"activation must be softmax or sigmoid, got {activation!r}")
    if probs.shape[0] == 1:
        return np.where(probs[0] > threshold, UNDEFINED, BACKGROUND).astype(np.uint8)
    neo, non = probs[0], probs[1]
    if activation == "softmax":
        stacked = np.stack([neo, non, 1 - neo - non])
        return np.argmax(stacked, axis=0).astype(np.uint8)
    labels = np.full(neo.shape, BACKGROUND, dtype=np.uint8)
    labels[(neo > non) & (neo > threshold)] = NEOPLASTIC
    labels[(non > neo) & (non > threshold)] = NON_NEOPLASTIC
    labels[(neo == non) & (neo > threshold)] = UNDEFINED
    return labels


# ---------------------------------------------------------------- intervals and table cells

TABLE_CLASSES = (("polyp", "Polyp"), ("neoplastic", "Neo"), ("non_neoplastic", "Non-neo"))
BOOTSTRAP_RESAMPLES = 2000
CI_LEVEL = 0.95
CI_KEY = "dice_ci95"


class ImageCounts(ConfusionCounter):
    """A ConfusionCounter that also keeps each image's (TP, FP, FN) per class, for the bootstrap."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[list[int]]] = []

    def update(self, pred: np.ndarray, truth: np.ndarray) -> None:
        before = {c: list(v) for c, v in self.counts.items()}
        super().update(pred, truth)
        self.rows.append([[now - was for now, was in zip(self.counts[c], before[c])] for c in METRIC_CLASSES])

    def per_image(self) -> np.ndarray:
        """int64 (images, classes, 3): each image's TP, FP, FN, classes in METRIC_CLASSES order."""
        return np.asarray(self.rows, dtype=np.int64).reshape(len(self.rows), len(METRIC_CLASSES), 3)


def bootstrap_intervals(per_image, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                        level: float = CI_LEVEL) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap interval of micro Dice per class, resampling images with replacement.

    `per_image`: (images, classes, 3) TP/FP/FN counts (ImageCounts.per_image), classes in
    METRIC_CLASSES order. Every class uses the same resamples. A class gets None when there is
    nothing to resample or no resample has a defined Dice (no polyp pixel anywhere).
    """
    counts = np.asarray(per_image, dtype=np.int64)
    n = counts.shape[0]
    if n == 0 or resamples <= 0:
        return {c: None for c in METRIC_CLASSES}
    dice = micro_dice(resampled_sums(counts, resamples, seed))
    out = {}
    for k, name in enumerate(METRIC_CLASSES):
        interval = percentile_interval(dice[:, k], level)
        out[name] = None if interval is None else tuple(interval)
    return out


def percentile_interval(values: np.ndarray, level: float = CI_LEVEL) -> list[float] | None:
    """[low, high] percentile interval of the finite values; None when there are none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    tail = 100 * (1 - level) / 2
    return None if values.size == 0 else [float(v) for v in np.percentile(values, [tail, 100 - tail])]


def micro_dice(sums: np.ndarray) -> np.ndarray:
    """Micro Dice of summed (..., 3) TP/FP/FN counts; NaN where the truth holds no pixel of the class.

    With nothing to find (the classes of a binary dataset such as Kvasir-SEG, whose polyps have no class;
    a set of polyp-free frames) the formula gives 0 for any false alarm, which reads as a failed
    segmentation: such a Dice is not reported ("n/a", JSON null)."""
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    den = 2 * tp + fp + fn
    return np.where(tp + fn > 0, 2 * tp / np.maximum(den, 1), np.nan)


def resampled_sums(per_unit: np.ndarray, resamples: int, seed: int = 0) -> np.ndarray:
    """(resamples, ...) sums of `per_unit` (units, ...) over units drawn with replacement, as many as there are.

    The same seed and number of units draw the same units, so intervals of different figures of one
    evaluation come from the same resamples."""
    n = per_unit.shape[0]
    rng = np.random.default_rng(seed)
    sums = np.empty((resamples, *per_unit.shape[1:]), per_unit.dtype)
    chunk = max(1, 2_000_000 // max(1, per_unit.size))  # bounds the memory of per_unit[picks]
    for first in range(0, resamples, chunk):
        picks = rng.integers(0, n, size=(min(chunk, resamples - first), n))
        sums[first:first + len(picks)] = per_unit[picks].sum(axis=1)
    return sums


def micro_with_intervals(micro: dict, intervals: dict) -> dict:
    """A copy of a micro summary with each class's interval added as CI_KEY ([low, high] or None)."""
    return {c: {**scores, CI_KEY: None if intervals.get(c) is None else list(intervals[c])}
            for c, scores in micro.items()}


def pct_text(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def dice_cell(scores: dict) -> str:
    """Dice in %, with its 95 % interval when known: "81.0 [77.2-84.5]"."""
    ci = scores.get(CI_KEY)
    return pct_text(scores["dice"]) + ("" if not ci else f" [{pct_text(ci[0])}-{pct_text(ci[1])}]")


def text_table(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned text lines, a dashed rule under the first (the head)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def row_label(result, results) -> str:
    """A table row's name: the architecture, with the file's name when another row has the same architecture
    (two checkpoints of one network would otherwise read alike), and as many of its folders as it takes to
    tell two files of one name apart (runs/x/model.onnx against assets/model.onnx)."""
    twins = [other for other in results if other.architecture == result.architecture]
    if len(twins) < 2:
        return result.architecture
    return f"{result.architecture} ({distinct_tails([o.model for o in twins])[twins.index(result)]})"


def distinct_tails(paths: list) -> list[str]:
    """Each path's shortest tail (file name, then with as many folders as needed) that no other path shares;
    the whole path where even that does not tell them apart."""
    split = [Path(p).parts for p in paths]
    out = []
    for parts in split:
        for depth in range(1, len(parts) + 1):
            tail = "/".join(parts[-depth:])
            if sum("/".join(other[-depth:]) == tail for other in split) == 1:
                out.append(tail)
                break
        else:
            out.append(str(Path(*parts)) if parts else "")
    return out
