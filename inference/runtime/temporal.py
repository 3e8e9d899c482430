"""Keeping a polyp's class steady over frames (`OverlaySettings.class_memory`).

A polyp has one histology, and the camera sees the same polyp for seconds; a per-frame class call
on a borderline polyp can still flip between red and green from one frame to the next. `ClassMemory`
gives every connected polyp region of a prediction a class share (the fraction of its pixels voting
neoplastic / non-neoplastic), blends it with the shares of the regions it overlaps in the previous
prediction (weight `memory` for the past), and relabels the region's voting pixels with the winner:
the overlay's one-class-per-region vote then draws that class. A region that overlaps nothing
starts from its own share, so a new polyp is coloured by its first frame. The extent of the mask
is never changed, and no frame is delayed.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from polypview.inference.runtime.engine import Prediction


class ClassMemory:
    """Blend each region's class share with its overlapping regions' shares in the previous prediction."""

    def __init__(self, memory: float, threshold: float, classes: int = 2):
        if not 0.0 <= memory < 1.0:
            raise ValueError(f"class memory must lie in [0, 1), got {memory}")
        self.memory, self.threshold, self.classes = float(memory), float(threshold), int(classes)
        self._previous: tuple[np.ndarray, np.ndarray, object] | None = None  # (components, shares, roi)

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
        shares = self._blend(shares, components, p)
        self._previous = (components, shares, p.roi)
        decided = totals > 0
        decided[0] = False  # component 0 is the background
        winner = shares.argmax(axis=1).astype(np.uint8)
        relabel = voters & decided[inside]
        votes = votes.copy()
        votes[relabel] = winner[inside[relabel]]
        labels = p.labels.copy()
        labels[mask] = votes
        return replace(p, labels=labels, timings=dict(p.timings))

    def _blend(self, shares: np.ndarray, components: np.ndarray, p: Prediction) -> np.ndarray:
        """Shares mixed with the overlap-weighted shares of the previous prediction's regions."""
        if self._previous is None or self.memory == 0.0:
            return shares
        before, before_shares, roi = self._previous
        if before.shape != components.shape or roi != p.roi:
            return shares  # another model or image area: the old regions do not line up
        both = (components > 0) & (before > 0)
        if not both.any():
            return shares
        n_now, n_before = shares.shape[0], before_shares.shape[0]
        overlap = np.bincount(components[both] * n_before + before[both],
                              minlength=n_now * n_before).reshape(n_now, n_before).astype(np.float64)
        weight = overlap.sum(axis=1)
        seen = weight > 0
        past = overlap[seen] @ before_shares / weight[seen][:, None]
        blended = shares.copy()
        blended[seen] = (1.0 - self.memory) * shares[seen] + self.memory * past
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
        if settings.class_memory > 0 and settings.one_class_per_region:
            self.steps.append(ClassMemory(settings.class_memory, settings.threshold, classes))

    @staticmethod
    def key(settings) -> tuple:
        """The settings these steps depend on: when it changes, make new steps."""
        return settings.smoothing, settings.class_memory, settings.threshold, settings.one_class_per_region

    def __call__(self, p: Prediction) -> Prediction:
        for step in self.steps:
            p = step(p)
        return p
