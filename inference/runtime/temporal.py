"""Keeping a polyp's class steady over frames (`OverlaySettings.class_memory`).

A polyp has one histology, and the camera sees the same polyp for seconds; a per-frame class call
on a borderline polyp can still flip between red and green from one frame to the next. `ClassMemory`
gives every connected polyp region of a prediction a class share (the fraction of its pixels voting
neoplastic / non-neoplastic), blends it with the shares of the regions it overlaps in the previous
prediction (weight `memory` for the past), and relabels the region's voting pixels with the winner:
the overlay's one-class-per-region vote then draws that class. A region that overlaps nothing
starts from its own share, so a new polyp is coloured by its first frame. The extent of the mask
is never changed, and no frame is delayed.

With a `confidence`, it also says when the network is unsure of a polyp's class: the region's share
of class probability (summed over its pixels, from `Prediction.probs`, blended over frames as the
votes are) on the class it wins; below `confidence`, every pixel of the region gets label `classes`,
one past the last class ("class uncertain", drawn yellow). The pixels' votes cannot say this: nearly
every region is one class pixel by pixel, right or wrong.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import cv2
import numpy as np

from polypview.inference.runtime.engine import Prediction


class _Past(NamedTuple):
    """What the previous prediction leaves for the next one."""

    components: np.ndarray  # its connected regions (label per pixel, 0 = background)
    shares: np.ndarray  # (regions, classes) vote shares, after blending
    mass: np.ndarray | None  # (regions, classes) shares of class probability, or None without a confidence
    roi: object  # the image area it was computed in


class ClassMemory:
    """Blend each region's class share with its overlapping regions' shares in the previous prediction."""

    def __init__(self, memory: float, threshold: float, classes: int = 2, confidence: float = 0.0):
        if not 0.0 <= memory < 1.0:
            raise ValueError(f"class memory must lie in [0, 1), got {memory}")
        self.memory, self.threshold, self.classes = float(memory), float(threshold), int(classes)
        self.confidence = float(confidence)
        self._previous: _Past | None = None

    def reset(self) -> None:
        """Forget the past (after a seek or a model change)."""
        self._previous = None

    def __call__(self, p: Prediction) -> Prediction:
        mask = p.scores >= self.threshold
        if self.classes < 2 or not mask.any():
            self._previous = None
            return p
        count, components = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
        inside, votes = components[mask], p.labels[mask]
        voters = votes < self.classes
        counts = np.bincount(inside[voters] * self.classes + votes[voters],
                             minlength=count * self.classes).reshape(count, self.classes).astype(np.float64)
        totals = counts.sum(axis=1)
        shares = counts / np.maximum(totals, 1.0)[:, None]
        mass = self._mass(p, mask, inside, count)
        weights = self._overlap(components, count, p)
        past = self._previous
        shares = self._blend(shares, weights, past.shares if past else None)
        mass = self._blend(mass, weights, past.mass if past else None) if mass is not None else None
        self._previous = _Past(components, shares, mass, p.roi)
        decided = totals > 0
        decided[0] = False  # component 0 is the background
        winner = shares.argmax(axis=1).astype(np.uint8)
        relabel = voters & decided[inside]
        votes = votes.copy()
        votes[relabel] = winner[inside[relabel]]
        if mass is not None:
            unsure = decided & (mass[np.arange(count), winner] < self.confidence)
            votes[unsure[inside]] = self.classes  # the whole region: "class uncertain"
        labels = p.labels.copy()
        labels[mask] = votes
        return replace(p, labels=labels, timings=dict(p.timings))

    def _mass(self, p: Prediction, mask: np.ndarray, inside: np.ndarray, count: int) -> np.ndarray | None:
        """Each region's share of class probability per class (count, classes); None without a confidence."""
        probs = p.probs
        if self.confidence <= 0 or probs is None or probs.shape[0] < self.classes:
            return None
        mass = np.stack([np.bincount(inside, weights=probs[k][mask], minlength=count)
                         for k in range(self.classes)], axis=1)
        return mass / np.maximum(mass.sum(axis=1), 1e-12)[:, None]

    def _overlap(self, components: np.ndarray, count: int, p: Prediction) -> np.ndarray | None:
        """(`count` regions now, regions before) overlap in pixels with the previous prediction; None when there
        is no past to blend with (memory off, another model or image area, nothing overlapping)."""
        if self._previous is None or self.memory == 0.0:
            return None
        before, before_shares = self._previous.components, self._previous.shares
        if before.shape != components.shape or self._previous.roi != p.roi:
            return None  # another model or image area: the old regions do not line up
        both = (components > 0) & (before > 0)
        if not both.any():
            return None
        n_before = before_shares.shape[0]
        return np.bincount(components[both] * n_before + before[both],
                           minlength=count * n_before).reshape(count, n_before).astype(np.float64)

    def _blend(self, now: np.ndarray, overlap: np.ndarray | None, past_shares: np.ndarray | None) -> np.ndarray:
        """Per-region shares mixed with the overlap-weighted `past_shares` of the regions before."""
        if overlap is None or past_shares is None:
            return now
        weight = overlap.sum(axis=1)
        seen = weight > 0
        past = overlap[seen] @ past_shares / weight[seen][:, None]
        blended = now.copy()
        blended[seen] = (1.0 - self.memory) * now[seen] + self.memory * past
        return blended


class TemporalSteps:
    """What the overlay settings carry over frames, in order: score smoothing (`smoothing` frames),
    then class memory (`class_memory`, with one class per region). The app's presenter and
    `polypview eval --video` both run predictions through one of these, in frame order."""

    def __init__(self, settings, classes: int):
        from polypview.inference.runtime.engine import TemporalSmoother

        self.steps: list = []
        if settings.smoothing > 1:
            self.steps.append(TemporalSmoother(settings.smoothing))
        if (settings.class_memory > 0 or settings.class_confidence > 0) and settings.one_class_per_region:
            self.steps.append(ClassMemory(settings.class_memory, settings.threshold, classes,
                                          settings.class_confidence))

    @staticmethod
    def key(settings) -> tuple:
        """The settings these steps depend on: when it changes, make new steps."""
        return (settings.smoothing, settings.class_memory, settings.threshold, settings.one_class_per_region,
                settings.class_confidence)

    def __call__(self, p: Prediction) -> Prediction:
        for step in self.steps:
            p = step(p)
        return p
