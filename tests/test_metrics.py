"""Micro/macro Dice and IoU against hand-computed values; probabilities to label maps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from polypview.inference.runtime.labels import BACKGROUND as B
from polypview.inference.runtime.labels import NEOPLASTIC as N
from polypview.inference.runtime.labels import NON_NEOPLASTIC as O
from polypview.inference.runtime.labels import UNDEFINED as U
from polypview.inference.training.metrics import ConfusionCounter, labels_from_probs

TRUTH = np.array(
    [
        [N, N, N, B],
        [O, O, B, B],
        [U, U, B, B],
    ],
    np.uint8,
)
PRED = np.array(
    [
        [N, N, O, N],
        [O, B, B, B],
        [N, B, O, U],
    ],
    np.uint8,
)
# By hand, undefined truth pixels removed from the class counts:
#   neo: TP 2 (0,0),(0,1); FP 1 (0,3) [(2,0) is undefined truth]; FN 1 (0,2)
#   non: TP 1 (1,0); FP 2 (0,2),(2,2); FN 1 (1,1)
#   polyp (nothing removed): pred polyp 8 px, true polyp 7 px, TP 5 -> FP 3, FN 2


def test_micro_counts_and_scores_by_hand():
    counter = ConfusionCounter()
    counter.update(PRED, TRUTH)
    assert counter.counts == {"neoplastic": [2, 1, 1], "non_neoplastic": [1, 2, 1], "polyp": [5, 3, 2]}
    assert counter.dice() == pytest.approx({"neoplastic": 4 / 6, "non_neoplastic": 2 / 5, "polyp": 10 / 15})
    assert counter.iou() == pytest.approx({"neoplastic": 2 / 4, "non_neoplastic": 1 / 4, "polyp": 5 / 10})


def test_micro_pools_pixels_over_images_macro_averages_images():
    counter = ConfusionCounter()
    counter.update(PRED, TRUTH)
    empty = np.full((3, 4), B, np.uint8)  # no polyp in truth or prediction
    counter.update(empty, empty)
    assert counter.dice()["neoplastic"] == pytest.approx(4 / 6)  # pooled counts unchanged
    # macro, smooth 1: image 1 neo (2*2+1)/(2*2+1+1+1) = 5/7; image 2 (0+1)/(0+1) = 1
    assert counter.macro_dice()["neoplastic"] == pytest.approx((5 / 7 + 1) / 2)
    assert counter.macro_iou()["non_neoplastic"] == pytest.approx(((1 + 1) / (1 + 2 + 1 + 1) + 1) / 2)


def test_micro_differs_from_mean_of_per_image_scores():
    a_truth = np.array([[N, N, N, N]], np.uint8)
    a_pred = a_truth.copy()
    b_truth = np.array([[N, B, B, B]], np.uint8)
    b_pred = np.array([[B, N, B, B]], np.uint8)
    counter = ConfusionCounter()
    counter.update(a_pred, a_truth)
    counter.update(b_pred, b_truth)
    assert counter.dice()["neoplastic"] == pytest.approx(8 / 10)  # TP 4, FP 1, FN 1


def test_as_dict_is_json_ready_with_nan_as_none():
    counter = ConfusionCounter()
    empty = np.full((2, 2), B, np.uint8)
    counter.update(empty, empty)
    summary = counter.as_dict()
    assert summary["images"] == 1 and summary["micro"]["polyp"]["dice"] is None
    assert summary["macro"]["polyp"]["dice"] == 1.0
    assert math.isnan(counter.dice()["polyp"])
    json.dumps(summary, allow_nan=False)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="resize"):
        ConfusionCounter().update(PRED[:2], TRUTH)


def test_labels_from_softmax_probs_argmax_with_implicit_background():
    probs = np.array([[[0.6, 0.3, 0.2, 0.5]], [[0.3, 0.6, 0.2, 0.1]]], np.float32)
    # background = 1 - neo - non: 0.1, 0.1, 0.6, 0.4
    assert labels_from_probs(probs, "softmax").tolist() == [[N, O, B, N]]


def test_labels_from_sigmoid_probs_blazeneo_rule():
    probs = np.array([[[0.9, 0.7, 0.4, 0.6, 0.8]], [[0.2, 0.8, 0.3, 0.55, 0.8]]], np.float32)
    assert labels_from_probs(probs, "sigmoid").tolist() == [[N, O, B, N, U]]
    assert labels_from_probs(probs, "sigmoid", threshold=0.85).tolist() == [[N, B, B, B, B]]


def test_binary_probs_become_polyp_of_unknown_class():
    probs = np.array([[[0.2, 0.7]]], np.float32)
    for activation in ("sigmoid", "softmax"):
        assert labels_from_probs(probs, activation).tolist() == [[B, U]]
    counter = ConfusionCounter()
    counter.update(labels_from_probs(probs, "sigmoid"), np.array([[B, N]], np.uint8))
    assert counter.counts["polyp"] == [1, 0, 0] and counter.counts["neoplastic"] == [0, 0, 1]


def test_bad_probability_arrays_are_refused():
    with pytest.raises(ValueError, match="K = 1 or 2"):
        labels_from_probs(np.zeros((3, 2, 2)), "softmax")
    with pytest.raises(ValueError, match="activation"):
        labels_from_probs(np.zeros((2, 2, 2)), "relu")


def test_row_labels_tell_apart_files_of_one_network_even_with_one_name():
    from types import SimpleNamespace

    from polypview.inference.training.metrics import row_label

    rows = [SimpleNamespace(architecture="nanonet-lite0-neo", model=m)
            for m in ("/w/runs/x/nanonet-lite0-neo.onnx", "/w/assets/nanonet-lite0-neo.onnx", "/w/runs/x/best.pt")]
    rows.append(SimpleNamespace(architecture="blazeneo-dha", model="/w/assets/blazeneo-dha.onnx"))
    assert [row_label(r, rows) for r in rows] == [
        "nanonet-lite0-neo (x/nanonet-lite0-neo.onnx)", "nanonet-lite0-neo (assets/nanonet-lite0-neo.onnx)",
        "nanonet-lite0-neo (best.pt)", "blazeneo-dha"]


def test_a_class_with_no_true_pixel_has_no_dice_not_a_dice_of_zero():
    """A binary dataset (Kvasir-SEG: every polyp pixel UNDEFINED) has no class to find: the class Dice is
    undefined, whatever the model predicts, while the polyp Dice is scored; one true pixel makes it 0 again."""
    truth = np.array([[U, U, B, B]], np.uint8)
    pred = np.array([[N, O, N, B]], np.uint8)  # a neoplastic false alarm on the background
    counter = ConfusionCounter()
    counter.update(pred, truth)
    assert math.isnan(counter.dice()["neoplastic"]) and math.isnan(counter.iou()["neoplastic"])
    assert math.isnan(counter.dice()["non_neoplastic"])
    assert counter.dice()["polyp"] == pytest.approx(4 / 5)  # TP 2, FP 1
    micro = counter.as_dict()["micro"]
    assert micro["neoplastic"]["dice"] is None and micro["neoplastic"]["fp"] == 1
    counter.update(np.array([[B]], np.uint8), np.array([[N]], np.uint8))  # one neoplastic pixel missed
    assert counter.dice()["neoplastic"] == 0.0
