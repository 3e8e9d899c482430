"""Losses of models.md section 7 against hand-computed values and their expected behaviour."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from polypview.errors import ConfigError
from polypview.inference.runtime.labels import BACKGROUND, NEOPLASTIC, NON_NEOPLASTIC, UNDEFINED
from polypview.inference.training import losses

BIG = 20.0  # logit margin of a "perfect" prediction


def _labels() -> torch.Tensor:
    """(2, 8, 8) labels with all four ids."""
    labels = torch.full((2, 8, 8), BACKGROUND, dtype=torch.int64)
    labels[0, 1:5, 1:5] = NEOPLASTIC
    labels[1, 2:6, 3:7] = NON_NEOPLASTIC
    labels[0, 6:8, 5:8] = UNDEFINED
    labels[1, 0, 0:3] = NEOPLASTIC
    return labels


def _trinary_logits(labels: torch.Tensor, wrong: bool = False) -> torch.Tensor:
    """Perfect (or cyclically wrong) [neo, non, bg] logits; undefined pixels predict background."""
    target = labels.clamp(max=BACKGROUND)
    if wrong:
        target = (target + 1) % 3
    return BIG * F.one_hot(target, 3).permute(0, 3, 1, 2).float()


def _aux_logits(labels: torch.Tensor, wrong: bool = False) -> torch.Tensor:
    """Perfect (or inverted) polyp logits; undefined is polyp."""
    polyp = (labels != BACKGROUND).float().unsqueeze(1)
    return BIG * (1 - 2 * polyp) * (1 if wrong else -1)


def test_focal_tversky_hand_computed():
    # class 0: p = [0.8, 0.2], y = [1, 0]: TP 0.8, FP 0.2, FN 0.2 -> TI = 1.8 / 2.0 = 0.9
    # class 1: p = [1, 1],     y = [1, 0]: TP 1,   FP 1,   FN 0   -> TI = 2 / 2.7 (alpha 0.7 on FP)
    probs = torch.tensor([[[[0.8, 0.2]], [[1.0, 1.0]]]])
    targets = torch.tensor([[[[1.0, 0.0]], [[1.0, 0.0]]]])
    ti = losses.tversky_index(probs, targets)
    assert ti.tolist() == pytest.approx([0.9, 2 / 2.7])
    expected = ((1 - 0.9) ** (4 / 3) + (1 - 2 / 2.7) ** (4 / 3)) / 2
    assert float(losses.focal_tversky(probs, targets)) == pytest.approx(expected)


def test_focal_tversky_sums_over_the_whole_batch_and_respects_valid():
    probs = torch.tensor([[[[0.8]]], [[[0.2]]]])  # two images, one pixel each
    targets = torch.tensor([[[[1.0]]], [[[0.0]]]])
    batch = float(losses.focal_tversky(probs, targets))
    assert batch == pytest.approx((1 - 1.8 / 2.0) ** (4 / 3))  # TP .8, FP .2, FN .2 pooled
    valid = torch.tensor([[[[1.0]]], [[[0.0]]]])  # drop the second image's pixel: FP 0
    assert float(losses.focal_tversky(probs, targets, valid)) == pytest.approx((1 - 1.8 / 1.86) ** (4 / 3), rel=1e-5)


def test_main_cross_entropy_hand_computed_ignoring_undefined():
    logits = torch.tensor([[[[2.0, 5.0]], [[0.0, -1.0]], [[0.0, 3.0]]]])  # (1, 3, 1, 2)
    labels = torch.tensor([[[NEOPLASTIC, UNDEFINED]]])
    ce, _ = losses.trinary_main_terms(logits, labels)
    pixel0 = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert float(ce) == pytest.approx(pixel0 / 2)  # the undefined pixel counts in the mean as 0


def test_class_weighted_cross_entropy_scales_each_pixel_by_its_true_class():
    logits = torch.tensor([[[[2.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]], [[0.0, 3.0, 2.0]]]])  # (1, 3, 1, 3)
    labels = torch.tensor([[[NEOPLASTIC, NON_NEOPLASTIC, BACKGROUND]]])
    plain, ft = losses.trinary_main_terms(logits, labels)
    weighted, ft_w = losses.trinary_main_terms(logits, labels, (1.0, 3.0, 1.0))
    p = torch.log_softmax(logits, 1)[0, :, 0]
    per_pixel = [-float(p[0, 0]), -float(p[1, 1]), -float(p[2, 2])]
    assert float(plain) == pytest.approx(sum(per_pixel) / 3)
    assert float(weighted) == pytest.approx((per_pixel[0] + 3 * per_pixel[1] + per_pixel[2]) / 3)
    assert float(ft) == float(ft_w)  # the Tversky term is unchanged
    balanced = losses.create_loss("blazeneo_balanced")({"main": logits}, labels)[1]
    assert balanced["main_ce"] == pytest.approx(float(weighted))


def test_blazeneo_loss_perfect_vs_wrong():
    labels = _labels()
    perfect = {"main": _trinary_logits(labels), "aux": _aux_logits(labels)}
    wrong = {"main": _trinary_logits(labels, wrong=True), "aux": _aux_logits(labels, wrong=True)}
    total, parts = losses.blazeneo_loss(perfect, labels)
    bad, _ = losses.blazeneo_loss(wrong, labels)
    assert set(parts) == {"main_ce", "main_ft", "aux_bce", "aux_ft"}
    assert float(total) < 1e-3 and float(bad) > 3
    _, no_aux = losses.blazeneo_loss({"main": perfect["main"]}, labels)
    assert set(no_aux) == {"main_ce", "main_ft"}


def test_undefined_pixels_do_not_touch_main_terms_but_count_as_polyp_in_aux():
    labels = _labels()
    undefined = (labels == UNDEFINED).unsqueeze(1)
    main = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    changed = torch.where(undefined, main + torch.tensor([5.0, -3.0, 1.0]).view(1, 3, 1, 1), main)
    aux = torch.zeros(2, 1, 8, 8)
    _, a = losses.blazeneo_loss({"main": main, "aux": aux}, labels)
    _, b = losses.blazeneo_loss({"main": changed, "aux": aux}, labels)
    assert a["main_ce"] == pytest.approx(b["main_ce"]) and a["main_ft"] == pytest.approx(b["main_ft"])
    _, as_polyp = losses.blazeneo_loss({"main": main, "aux": torch.where(undefined, BIG, 0.0)}, labels)
    _, as_bg = losses.blazeneo_loss({"main": main, "aux": torch.where(undefined, -BIG, 0.0)}, labels)
    assert as_polyp["aux_bce"] < a["aux_bce"] < as_bg["aux_bce"]


def test_deep_outputs_add_the_same_terms():
    labels = _labels()
    main = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    single, _ = losses.blazeneo_loss({"main": main}, labels)
    double, _ = losses.blazeneo_loss({"main": main, "deep": [main]}, labels)
    assert float(double) == pytest.approx(2 * float(single))


def test_logits_of_another_size_are_resized():
    labels = _labels()
    small = F.interpolate(_trinary_logits(labels), size=(4, 4), mode="nearest")
    total, _ = losses.blazeneo_loss({"main": small}, labels)
    assert torch.isfinite(total)


def test_dice_loss_hand_computed():
    probs, targets = torch.tensor([1.0, 0.5]), torch.tensor([1.0, 0.0])
    assert float(losses.dice_loss(probs, targets)) == pytest.approx(1 - 2 / 2.5)


def test_binary_losses_perfect_vs_wrong_with_kvasir_style_labels():
    labels = torch.full((1, 8, 8), BACKGROUND, dtype=torch.int64)
    labels[0, 2:6, 2:6] = UNDEFINED  # a binary dataset's polyp
    perfect, wrong = {"main": _aux_logits(labels)}, {"main": _aux_logits(labels, wrong=True)}
    for name in ("bce_dice", "dice", "structure", "structure_weighted"):
        loss = losses.create_loss(name)
        assert float(loss(perfect, labels)[0]) < 1e-3, name
        assert float(loss(wrong, labels)[0]) > 0.9, name


def test_structure_loss_faithful_is_plain_bce_plus_weighted_iou():
    mask = torch.zeros(2, 1, 40, 40)
    mask[:, :, 10:30, 12:28] = 1
    logits = torch.randn(2, 1, 40, 40, generator=torch.Generator().manual_seed(2))
    weight = 1 + 5 * (F.avg_pool2d(mask, 31, stride=1, padding=15) - mask).abs()
    p = torch.sigmoid(logits)
    inter, union = (p * mask * weight).sum((2, 3)), ((p + mask) * weight).sum((2, 3))
    wiou = (1 - (inter + 1) / (union - inter + 1)).mean()
    faithful = losses.structure_loss(logits, mask)
    assert float(faithful) == pytest.approx(float(F.binary_cross_entropy_with_logits(logits, mask) + wiou), rel=1e-5)
    assert float(losses.structure_loss(logits, mask, weighted_bce=True)) != pytest.approx(float(faithful))


def _multilabel_logits(labels: torch.Tensor, wrong: bool = False) -> torch.Tensor:
    """[neo, non] logits: perfect or swapped classes."""
    neo, non = (labels == NEOPLASTIC).float(), (labels == NON_NEOPLASTIC).float()
    if wrong:
        neo, non = non, neo
    return BIG * (2 * torch.stack([neo, non], 1) - 1)


def test_neounet_loss_perfect_vs_wrong_and_deep_supervision():
    labels = _labels()
    labels[labels == UNDEFINED] = BACKGROUND  # NeoPolyp-Clean: no undefined polyps
    perfect = _multilabel_logits(labels)
    total, parts = losses.neounet_loss({"main": perfect, "deep": [perfect] * 3}, labels)
    assert set(parts) == {"seg", "cls"} and float(total) < 0.05
    bad, _ = losses.neounet_loss({"main": _multilabel_logits(labels, wrong=True)}, labels)
    assert float(bad) > 1
    one, _ = losses.neounet_loss({"main": perfect}, labels)
    assert float(total) == pytest.approx(4 * float(one))


def test_neounet_masked_bce_is_unmasked_as_coded():
    labels = _labels()
    undefined = (labels == UNDEFINED).unsqueeze(1)
    logits = torch.zeros(2, 2, 8, 8)
    changed = torch.where(undefined, torch.tensor([3.0, -3.0]).view(1, 2, 1, 1), logits)
    seg_a, cls_a = losses.neounet_terms(logits, labels, mask_undefined_bce=True)
    _, cls_b = losses.neounet_terms(changed, labels, mask_undefined_bce=True)
    assert float(cls_a) == pytest.approx(float(cls_b))  # properly masked: undefined has no effect
    _, cls_c = losses.neounet_terms(logits, labels)
    _, cls_d = losses.neounet_terms(changed, labels)
    assert float(cls_c) != pytest.approx(float(cls_d))  # as coded: it leaks through the BCE
    # all-zero logits: the BCE is ln 2 on every element, divided by defined elements only
    n_all, n_defined = labels.numel(), int((labels != UNDEFINED).sum())
    ft = losses.focal_tversky(torch.full((2, 2, 8, 8), 0.5), torch.stack([labels == 0, labels == 1], 1).float(),
                              losses.defined_mask(labels), gamma=0.75)
    assert float(cls_c) == pytest.approx(0.5 * math.log(2) * n_all / n_defined + 0.5 * float(ft), rel=1e-5)


def test_gradients_finite_at_a_perfect_prediction():
    labels = _labels()
    for head, logits in (("trinary", _trinary_logits(labels)), ("multilabel", _multilabel_logits(labels))):
        logits = logits.clone().requires_grad_(True)
        total, _ = losses.loss_for_head(head)({"main": logits}, labels)
        total.backward()
        assert torch.isfinite(logits.grad).all(), head


def test_registry_and_channel_checks():
    assert losses.loss_for_head("trinary") is losses.blazeneo_loss
    assert losses.loss_for_head("binary") is losses.bce_dice_loss
    assert losses.loss_for_head("multilabel") is losses.neounet_loss
    with pytest.raises(ConfigError, match="trinary, binary, multilabel"):
        losses.loss_for_head("quaternary")
    with pytest.raises(ConfigError, match="blazeneo"):
        losses.create_loss("hinge")
    with pytest.raises(ConfigError, match=r"\(N,3,H,W\)"):
        losses.blazeneo_loss({"main": torch.zeros(2, 1, 8, 8)}, _labels())


def test_polyp_regions_number_each_true_polyp_across_the_batch():
    labels = _labels()
    ids, classes = losses.polyp_regions(labels)
    # image 0: one neoplastic square (undefined pixels are not a classed polyp); image 1, in raster order:
    # a neoplastic strip, a non-neoplastic square
    assert classes.tolist() == [NEOPLASTIC, NEOPLASTIC, NON_NEOPLASTIC]
    assert set(ids[0].unique().tolist()) == {0, 1} and set(ids[1].unique().tolist()) == {0, 2, 3}
    assert (ids[1, 0, 0:3] == 2).all() and (ids[1, 2:6, 3:7] == 3).all()


def test_region_class_term_counts_every_polyp_once_whatever_its_size():
    labels = _labels()
    perfect = losses.region_class_term(_trinary_logits(labels), labels)
    assert float(perfect) < 1e-4
    # Wrong class on the 3-pixel neoplastic strip only: a per-pixel term barely moves (3 of 128 pixels),
    # the region term takes a third of a full mistake (1 of 3 regions).
    logits = _trinary_logits(labels)
    logits[1, :, 0, 0:3] = torch.tensor([0.0, BIG, 0.0])[:, None]
    small_wrong = float(losses.region_class_term(logits, labels))
    all_wrong = losses.region_class_term(_trinary_logits(labels.masked_fill(labels == NEOPLASTIC, 9)
                                                          .masked_fill(labels == NON_NEOPLASTIC, NEOPLASTIC)
                                                          .masked_fill(labels == NEOPLASTIC, NON_NEOPLASTIC)
                                                          .masked_fill(labels == 9, NON_NEOPLASTIC)), labels)
    assert small_wrong == pytest.approx(float(all_wrong) / 3, rel=1e-2)
    background_only = torch.full((1, 4, 4), BACKGROUND, dtype=torch.int64)
    assert float(losses.region_class_term(torch.zeros(1, 3, 4, 4), background_only)) == 0.0


def test_blazeneo_regions_loss_adds_the_region_term_and_trains():
    labels = _labels()
    logits = torch.zeros(2, 3, 8, 8, requires_grad=True)
    total, parts = losses.create_loss("blazeneo_regions")({"main": logits}, labels)
    base, _ = losses.blazeneo_loss({"main": logits}, labels)
    assert float(total.detach()) == pytest.approx(float(base.detach()) + parts["region_cls"], rel=1e-5)
    assert parts["region_cls"] == pytest.approx(math.log(2), rel=1e-4)  # p = 1/2 for every region
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_region_peak_term_counts_each_polyp_and_each_image_once():
    labels = torch.full((2, 32, 32), BACKGROUND, dtype=torch.int64)
    labels[0, 4:20, 4:20] = NEOPLASTIC  # a large polyp
    labels[1, 30:32, 0:2] = NON_NEOPLASTIC  # a 4-pixel sliver at the corner
    right = _trinary_logits(labels)
    assert float(losses.region_peak_term(right, labels)) < 1e-6
    # The sliver unsure (all logits 0: polyp score 2/3 on its 4 pixels): a per-pixel loss barely moves (4 of 2048 pixels),
    # the peak term takes half of one polyp's log 2.
    unsure = right.clone()
    unsure[1, :, 30:32, 0:2] = 0.0
    assert float(losses.region_peak_term(unsure, labels)) == pytest.approx(math.log(1.5) / 2, rel=1e-3)
    # One confident false pixel far from the polyp costs a whole image's worth; next to it (inside the margin) nothing.
    false = right.clone()
    false[0, :, 28, 28] = torch.tensor([BIG, 0.0, 0.0])
    assert float(losses.region_peak_term(false, labels)) == pytest.approx(BIG / 2, rel=1e-3)
    rim = right.clone()
    rim[0, :, 22, 22] = torch.tensor([BIG, 0.0, 0.0])
    assert float(losses.region_peak_term(rim, labels)) < 1e-6


def test_blazeneo_peaks_loss_adds_the_peak_term_and_trains():
    labels = _labels()
    logits = torch.zeros(2, 3, 8, 8, requires_grad=True)
    total, parts = losses.create_loss("blazeneo_peaks")({"main": logits}, labels)
    base, _ = losses.create_loss("blazeneo_balanced")({"main": logits}, labels)
    assert float(total.detach()) == pytest.approx(float(base.detach()) + parts["region_peak"], rel=1e-5)
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    background_only = torch.full((1, 4, 4), BACKGROUND, dtype=torch.int64)  # all logits 0: score 2/3 off any polyp
    assert float(losses.region_peak_term(torch.zeros(1, 3, 4, 4), background_only)) == pytest.approx(math.log(3))
