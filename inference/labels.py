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
"""

from __future__ import annotations

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
