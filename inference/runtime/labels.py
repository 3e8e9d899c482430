"""The one label convention of polypview's training, evaluation and metrics code.

A label map is a uint8 array (H, W):

====  ================  ==============================================================
id    name              meaning
====  ================  ==============================================================
0     neoplastic        red in NeoPolyp masks
1     non_neoplastic    green in NeoPolyp masks
2     background        black
3     undefined         a polyp of unknown class: NeoPolyp yellow/white, and every
                        polyp pixel of a binary dataset (Kvasir-SEG)
====  ================  ==============================================================

Class losses and class metrics ignore ``UNDEFINED``; anything about "polyp" counts it as
polyp (polyp = label != BACKGROUND). The 3-channel heads use the channel order
[neoplastic, non-neoplastic, background], so channel index = label id.

A polyp has one histology, so the app (and `polypview eval`, beside the papers' per-pixel
figures) can give every connected polyp region the class most of its pixels have
(`one_class_per_region`).
"""

from __future__ import annotations

import cv2
import numpy as np

NEOPLASTIC = 0
NON_NEOPLASTIC = 1
BACKGROUND = 2
UNDEFINED = 3

LABEL_NAMES = ("neoplastic", "non_neoplastic", "background", "undefined")

# RGB colours of the NeoPolyp code (yellow for undefined), indexed by label id.
LABEL_COLORS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 0), (255, 255, 0)], dtype=np.uint8)


def polyp_mask(labels: np.ndarray) -> np.ndarray:
    """Boolean polyp mask (neoplastic, non-neoplastic or undefined)."""
    return labels != BACKGROUND


def labels_to_rgb(labels: np.ndarray) -> np.ndarray:
    """Colour a label map with the NeoPolyp code (uint8 RGB)."""
    return LABEL_COLORS[labels]


def one_class_per_region(labels: np.ndarray, region: np.ndarray, classes: int = 2,
                         components: tuple[int, np.ndarray] | None = None) -> np.ndarray:
    """Labels where each 8-connected region of `region` takes its most frequent class.

    Only pixels labelled 0..classes-1 vote (ties go to the lower id: neoplastic, the safer
    call); a region without such pixels, and everything outside `region`, keeps its labels.
    `components` = (count, map) of cv2.connectedComponents already computed on `region` or on a
    mask whose components `region` keeps whole (the overlay's kept regions); else computed here.
    Returns a new uint8 array.
    """
    labels = np.asarray(labels, dtype=np.uint8)
    mask = np.asarray(region, dtype=bool)
    if labels.shape != mask.shape:
        raise ValueError(f"labels {labels.shape} and region {mask.shape} differ in shape")
    out = labels.copy()
    if classes < 2 or not mask.any():
        return out
    if components is None:
        components = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
    count, components = components
    inside, votes = components[mask], labels[mask]
    voters = votes < classes
    histogram = np.bincount(inside[voters] * classes + votes[voters],
                            minlength=count * classes).reshape(count, classes)
    winner = histogram.argmax(axis=1).astype(np.uint8)  # argmax takes the first of equal counts
    decided = histogram.sum(axis=1) > 0
    relabel = decided[inside]
    votes[relabel] = winner[inside[relabel]]
    out[mask] = votes
    return out


def true_class_per_region(labels: np.ndarray, truth: np.ndarray, classes: int = 2) -> np.ndarray:
    """`labels` with each connected polyp region given the majority true class under it.

    The regions are the predicted ones (their extent is kept); each takes the class most of the
    true neoplastic/non-neoplastic pixels it covers have, and a region over none keeps its own
    labels. `polypview eval` scores this as the ceiling of a better class decision: what the
    masks would score if only the region's class were fixed. Returns a new uint8 array.
    """
    labels = np.asarray(labels, dtype=np.uint8)
    truth = np.asarray(truth, dtype=np.uint8)
    if labels.shape != truth.shape:
        raise ValueError(f"labels {labels.shape} and truth {truth.shape} differ in shape")
    region = polyp_mask(labels)
    votes = np.where(region & (truth < classes), truth, UNDEFINED).astype(np.uint8)
    voted = one_class_per_region(votes, region, classes)
    return np.where(region & (voted < classes), voted, labels).astype(np.uint8)

