"""Training losses of the papers (models.md section 7), on polypview label maps.

Every loss named in ``LOSSES`` is ``loss(outputs, labels) -> (total, parts)``: ``outputs`` is the
dict a model's ``forward_train`` returns ("main" logits (N, C, H, W); optional "aux" (N, 1, H, W)
binary polyp logits; optional "deep", a list of logits shaped like "main"), ``labels`` an int64
(N, H, W) label map (0 neo, 1 non, 2 background, 3 undefined; see ``labels.py``), ``total`` a
scalar tensor and ``parts`` a dict of floats for logging. Logits whose size differs from the
labels' are resized bilinearly first. Deep-supervision outputs add the same terms as "main";
an "aux" output adds BlazeNeo's auxiliary terms (BCE + focal Tversky, undefined counted as polyp).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from polypview.errors import ConfigError
from polypview.inference.runtime.labels import BACKGROUND, NEOPLASTIC, NON_NEOPLASTIC, UNDEFINED
from polypview.registry import Registry

LossFn = Callable[[dict, torch.Tensor], tuple[torch.Tensor, dict]]

# models.md 7.1 (BlazeNeo code): alpha weighs false positives, beta false negatives.
FT_ALPHA_FP, FT_BETA_FN, FT_GAMMA = 0.7, 0.3, 4 / 3
NEOUNET_FT_EXPONENT = 0.75  # NeoUNet's (1 - TI)^(1/gamma) with gamma = 4/3
TINY = 1e-7  # keeps the gradient of (1 - TI)^e finite when TI reaches 1


# ---------------------------------------------------------------- primitives


def _sum_dims(x: torch.Tensor) -> tuple[int, ...]:
    """Every dimension except the class dimension 1: sums over the whole mini-batch."""
    return tuple(d for d in range(x.dim()) if d != 1)


def tversky_index(
    probs: torch.Tensor,
    targets: torch.Tensor,
    valid: torch.Tensor | None = None,
    alpha_fp: float = FT_ALPHA_FP,
    beta_fn: float = FT_BETA_FN,
    smooth: float = 1.0,
) -> torch.Tensor:
    """Per-class Tversky index (C,) over the whole batch; `valid` (N,1,H,W) removes pixels."""
    if valid is not None:
        valid = valid.to(probs.dtype)
        probs, targets = probs * valid, targets * valid
    dims = _sum_dims(probs)
    tp = (probs * targets).sum(dims)
    fp = probs.sum(dims) - tp
    fn = targets.sum(dims) - tp
    return (tp + smooth) / (tp + alpha_fp * fp + beta_fn * fn + smooth)


def focal_tversky(
    probs: torch.Tensor,
    targets_onehot: torch.Tensor,
    valid: torch.Tensor | None = None,
    alpha_fp: float = FT_ALPHA_FP,
    beta_fn: float = FT_BETA_FN,
    gamma: float = FT_GAMMA,
    smooth: float = 1.0,
) -> torch.Tensor:
    """mean_c (1 - TI_c) ** gamma, TI over the whole mini-batch (gamma is the exponent itself)."""
    ti = tversky_index(probs, targets_onehot, valid, alpha_fp, beta_fn, smooth)
    return ((1 - ti).clamp(min=TINY) ** gamma).mean()


def dice_loss(probs: torch.Tensor, targets: torch.Tensor, smooth: float = 1e-15) -> torch.Tensor:
    """NanoNet's 1 - Dice over the whole batch (all pixels and channels together)."""
    inter = (probs * targets).sum()
    return 1 - (2 * inter + smooth) / (probs.sum() + targets.sum() + smooth)


def structure_loss(logits: torch.Tensor, mask: torch.Tensor, weighted_bce: bool = False) -> torch.Tensor:
    """PraNet/HarDNet-MSEG structure loss: BCE + boundary-weighted IoU, mean over images.

    As released, the BCE's weight cancels (legacy ``reduce='none'`` means a mean), so the
    faithful loss is plain mean BCE + weighted IoU; ``weighted_bce=True`` gives the intended one.
    """
    weight = 1 + 5 * torch.abs(F.avg_pool2d(mask, kernel_size=31, stride=1, padding=15) - mask)
    if weighted_bce:
        bce_px = F.binary_cross_entropy_with_logits(logits, mask, reduction="none")
        bce = (weight * bce_px).sum((2, 3)) / weight.sum((2, 3))
    else:
        bce = F.binary_cross_entropy_with_logits(logits, mask)
    probs = torch.sigmoid(logits)
    inter = (probs * mask * weight).sum((2, 3))
    union = ((probs + mask) * weight).sum((2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return (bce + wiou).mean()


# ---------------------------------------------------------------- targets and plumbing


def _heads(outputs: dict) -> list[torch.Tensor]:
    """The outputs every main term is applied to: "main" then each "deep" output."""
    return [outputs["main"], *outputs.get("deep", ())]


def _fit(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Float32 logits at the labels' size (bilinear when they differ).

    Float32 because whole-batch sums of 16 x 352 x 352 pixels overflow float16 (max 65504).
    """
    logits = logits.float()
    if logits.shape[-2:] == labels.shape[-2:]:
        return logits
    return F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)


def polyp_target(labels: torch.Tensor) -> torch.Tensor:
    """(N,1,H,W) float: 1 on neo, non and undefined pixels (undefined is a polyp)."""
    return (labels != BACKGROUND).unsqueeze(1).float()


def defined_mask(labels: torch.Tensor) -> torch.Tensor:
    """(N,1,H,W) float: 0 on undefined pixels, 1 elsewhere."""
    return (labels != UNDEFINED).unsqueeze(1).float()


def _parts(**terms: torch.Tensor) -> dict[str, float]:
    """Detached floats for logging."""
    return {k: float(v.detach()) for k, v in terms.items()}


def _check_channels(logits: torch.Tensor, channels: int, loss: str) -> None:
    """Fail clearly when a head with the wrong number of channels reaches a loss."""
    if logits.dim() != 4 or logits.shape[1] != channels:
        raise ConfigError(f"{loss} loss needs (N,{channels},H,W) logits, got {tuple(logits.shape)}")


def aux_terms(aux_logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BlazeNeo auxiliary terms: BCE-with-logits and focal Tversky on the polyp mask, nothing ignored."""
    aux_logits = _fit(aux_logits, labels)
    _check_channels(aux_logits, 1, "auxiliary")
    target = polyp_target(labels)
    bce = F.binary_cross_entropy_with_logits(aux_logits, target)
    return bce, focal_tversky(torch.sigmoid(aux_logits), target)


def _with_aux(outputs: dict, labels: torch.Tensor, total: torch.Tensor, parts: dict) -> tuple[torch.Tensor, dict]:
    """Add the auxiliary terms when the model has an auxiliary head."""
    if "aux" not in outputs:
        return total, parts
    bce, ft = aux_terms(outputs["aux"], labels)
    parts = {**parts, **_parts(aux_bce=bce, aux_ft=ft)}
    return total + bce + ft, parts


# ---------------------------------------------------------------- losses by head


def trinary_main_terms(logits: torch.Tensor, labels: torch.Tensor,
                       class_weights: tuple[float, float, float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BlazeNeo main terms: CE masked and averaged over ALL pixels; FT without undefined pixels.

    `class_weights` (neoplastic, non-neoplastic, background) scale each pixel's CE by its true class.
    """
    logits = _fit(logits, labels)
    _check_channels(logits, 3, "trinary")
    undefined = labels == UNDEFINED
    target = labels.masked_fill(undefined, BACKGROUND)  # any class: their CE is zeroed below
    weight = None if class_weights is None else torch.tensor(class_weights, device=logits.device)
    ce = (F.cross_entropy(logits, target, weight=weight, reduction="none") * (~undefined)).mean()
    onehot = F.one_hot(target, 3).permute(0, 3, 1, 2).to(logits.dtype)
    ft = focal_tversky(torch.softmax(logits, dim=1), onehot, defined_mask(labels))
    return ce, ft


# Non-neoplastic polyps are the rare class (a quarter of the images, mostly small polyps): their pixels'
# cross-entropy counts this many times in "blazeneo_balanced".
NON_NEOPLASTIC_WEIGHT = 3.0


def blazeneo_loss(outputs: dict, labels: torch.Tensor,
                  class_weights: tuple[float, float, float] | None = None) -> tuple[torch.Tensor, dict]:
    """BlazeNeo loss (7.1): aux BCE + aux FT + main CE + main FT, all weights 1 (CE optionally class-weighted)."""
    terms = [trinary_main_terms(logits, labels, class_weights) for logits in _heads(outputs)]
    ce, ft = sum(t[0] for t in terms), sum(t[1] for t in terms)
    return _with_aux(outputs, labels, ce + ft, _parts(main_ce=ce, main_ft=ft))


def polyp_regions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (N,H,W) int64, classes (R,) int64): the true polyps with a class, one id per 8-connected region
    across the batch (0: no region; region r has id r + 1) and each region's majority class (ties: neoplastic)."""
    import cv2
    import numpy as np

    maps = labels.detach().cpu().numpy()
    ids = np.zeros(maps.shape, np.int64)
    classes: list[int] = []
    for i, label in enumerate(maps):
        classed = (label == NEOPLASTIC) | (label == NON_NEOPLASTIC)
        if not classed.any():
            continue
        count, components = cv2.connectedComponents(classed.astype(np.uint8), connectivity=8)
        votes = np.bincount(components[classed] * 2 + (label[classed] == NON_NEOPLASTIC),
                            minlength=2 * count).reshape(count, 2)
        offset = len(classes)
        classes.extend(int(v[1] > v[0]) for v in votes[1:])
        ids[i][classed] = components[classed] + offset
    return torch.from_numpy(ids).to(labels.device), torch.tensor(classes, dtype=torch.int64, device=labels.device)


def region_class_term(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-polyp class cross-entropy: every true polyp counts once, however small.

    A region's non-neoplastic probability is the mean over its pixels of p_non / (p_neo + p_non);
    its binary cross-entropy against the region's majority class is averaged over the batch's
    regions. Per-pixel losses let a large polyp outweigh a small one a hundredfold; the app draws
    one class per region, so each region's call is what a user sees.
    """
    logits = _fit(logits, labels)
    _check_channels(logits, 3, "region class")
    ids, classes = polyp_regions(labels)
    if classes.numel() == 0:
        return logits.sum() * 0.0
    probs = torch.softmax(logits, dim=1)
    share = probs[:, NON_NEOPLASTIC] / (probs[:, NEOPLASTIC] + probs[:, NON_NEOPLASTIC]).clamp(min=TINY)
    flat, inside = ids.flatten(), ids.flatten() > 0
    index = flat[inside] - 1
    sums = torch.zeros(classes.numel(), device=logits.device).index_add(0, index, share.flatten()[inside])
    counts = torch.bincount(index, minlength=classes.numel()).to(sums.dtype)
    mean = (sums / counts).clamp(TINY, 1 - TINY)
    return F.binary_cross_entropy(mean, classes.to(mean.dtype))


def blazeneo_region_loss(outputs: dict, labels: torch.Tensor, weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """BlazeNeo loss plus `weight` x the per-polyp class term on the main output."""
    total, parts = blazeneo_loss(outputs, labels)
    region = region_class_term(outputs["main"], labels)
    return total + weight * region, {**parts, **_parts(region_cls=region)}


# Pixels within this many of a true polyp are left out of the peak term's "outside" (its blurred rim).
PEAK_MARGIN = 8


def polyp_logit(logits: torch.Tensor) -> torch.Tensor:
    """(N,H,W) logit of the app's polyp score p_neo + p_non = 1 - p_background."""
    return torch.logsumexp(logits[:, [NEOPLASTIC, NON_NEOPLASTIC]], dim=1) - logits[:, BACKGROUND]


def region_peak_term(logits: torch.Tensor, labels: torch.Tensor, margin: int = PEAK_MARGIN) -> torch.Tensor:
    """Peak term: every true polyp's best pixel up, every image's best pixel off the polyps down.

    The overlay draws a region only when its highest polyp score reaches the region peak: a polyp is
    missed when its best pixel stays under it, a false region appears when a blob on the mucosa
    reaches it. This term is BCE(max polyp logit over a true polyp, 1) averaged over the batch's
    polyps, plus BCE(max polyp logit outside the polyps dilated by `margin` pixels, 0) averaged over
    the images that have such pixels (undefined pixels excluded): each polyp and each image counts once,
    whatever its size, as the region counts of the tower clip do.
    """
    logits = _fit(logits, labels)
    _check_channels(logits, 3, "region peak")
    score = polyp_logit(logits)
    ids, classes = polyp_regions(labels)
    parts = []
    if classes.numel():
        inside = ids > 0
        best = torch.full((classes.numel(),), -torch.inf, device=score.device).scatter_reduce(
            0, ids[inside] - 1, score[inside], reduce="amax")
        parts.append(F.softplus(-best).mean())
    polyp = polyp_target(labels)
    near = F.max_pool2d(polyp, 2 * margin + 1, stride=1, padding=margin)[:, 0] > 0
    outside = ~near & (labels != UNDEFINED)
    has = outside.flatten(1).any(dim=1)
    if has.any():
        worst = score.masked_fill(~outside, -torch.inf).flatten(1).amax(dim=1)[has]
        parts.append(F.softplus(worst).mean())
    return sum(parts) if parts else logits.sum() * 0.0


def blazeneo_peak_loss(outputs: dict, labels: torch.Tensor, weight: float = 1.0,
                       class_weights: tuple[float, float, float] | None = None) -> tuple[torch.Tensor, dict]:
    """BlazeNeo loss (optionally class-weighted) plus `weight` x the region peak term on the main output."""
    total, parts = blazeneo_loss(outputs, labels, class_weights)
    peak = region_peak_term(outputs["main"], labels)
    return total + weight * peak, {**parts, **_parts(region_peak=peak)}


def bce_dice_loss(outputs: dict, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Binary polyp heads: mean BCE + NanoNet's batch Dice loss (BCE steadies training from scratch)."""
    target, bce, dice = polyp_target(labels), 0.0, 0.0
    for logits in _heads(outputs):
        logits = _fit(logits, labels)
        _check_channels(logits, 1, "binary")
        bce = bce + F.binary_cross_entropy_with_logits(logits, target)
        dice = dice + dice_loss(torch.sigmoid(logits), target)
    return _with_aux(outputs, labels, bce + dice, _parts(bce=bce, dice=dice))


def nanonet_dice_loss(outputs: dict, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """NanoNet's loss as released: 1 - Dice on the binary polyp head (5.4)."""
    target, dice = polyp_target(labels), 0.0
    for logits in _heads(outputs):
        logits = _fit(logits, labels)
        _check_channels(logits, 1, "binary")
        dice = dice + dice_loss(torch.sigmoid(logits), target)
    return _with_aux(outputs, labels, dice, _parts(dice=dice))


def mseg_structure_loss(outputs: dict, labels: torch.Tensor, weighted_bce: bool = False) -> tuple[torch.Tensor, dict]:
    """HarDNet-MSEG binary training loss (7.4) on the polyp mask."""
    target, total = polyp_target(labels), 0.0
    for logits in _heads(outputs):
        logits = _fit(logits, labels)
        _check_channels(logits, 1, "structure")
        total = total + structure_loss(logits, target, weighted_bce)
    return _with_aux(outputs, labels, total, _parts(structure=total))


def neounet_terms(
    logits: torch.Tensor, labels: torch.Tensor, mask_undefined_bce: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """NeoUNet (7.2) segmentation and classification terms for one 2-channel [neo, non] output."""
    logits = _fit(logits, labels)
    _check_channels(logits, 2, "multilabel")
    polyp_logit = logits.max(dim=1, keepdim=True).values
    polyp = polyp_target(labels)
    tversky = 1 - tversky_index(torch.sigmoid(polyp_logit), polyp).mean()
    seg = 0.5 * F.binary_cross_entropy_with_logits(polyp_logit, polyp) + 0.5 * tversky

    # Undefined pixels are neither class; the class terms remove them (BCE only if asked: 7.2 bug).
    targets = torch.stack([labels == NEOPLASTIC, labels == NON_NEOPLASTIC], dim=1).to(logits.dtype)
    valid = defined_mask(labels)
    bce_px = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if mask_undefined_bce:
        bce_px = bce_px * valid
    masked_bce = bce_px.sum() / (valid.sum() * logits.shape[1]).clamp(min=1)
    ft = focal_tversky(torch.sigmoid(logits), targets, valid, gamma=NEOUNET_FT_EXPONENT)
    return seg, 0.5 * masked_bce + 0.5 * ft


def neounet_loss(
    outputs: dict, labels: torch.Tensor, w_seg: float = 0.25, mask_undefined_bce: bool = False
) -> tuple[torch.Tensor, dict]:
    """NeoUNet hybrid loss (7.2): (1 - w_seg) L_cls + w_seg L_seg, each summed over main + deep.

    w_seg 0.25 is the NeoPolyp-Clean setting: NeoPolyp-Small holds no undefined polyps.
    The per-pixel BCE is divided by the defined-pixel count but not masked, as coded
    (``mask_undefined_bce=True`` masks it).
    """
    terms = [neounet_terms(logits, labels, mask_undefined_bce) for logits in _heads(outputs)]
    seg, cls = sum(t[0] for t in terms), sum(t[1] for t in terms)
    total = (1 - w_seg) * cls + w_seg * seg
    return _with_aux(outputs, labels, total, _parts(seg=seg, cls=cls))


# ---------------------------------------------------------------- registry

LOSSES: Registry[LossFn] = Registry("loss", {
    "blazeneo": blazeneo_loss,
    "blazeneo_balanced": partial(blazeneo_loss, class_weights=(1.0, NON_NEOPLASTIC_WEIGHT, 1.0)),
    "blazeneo_regions": blazeneo_region_loss,
    "blazeneo_peaks": partial(blazeneo_peak_loss, class_weights=(1.0, NON_NEOPLASTIC_WEIGHT, 1.0)),
    "bce_dice": bce_dice_loss,
    "dice": nanonet_dice_loss,
    "structure": mseg_structure_loss,
    "structure_weighted": partial(mseg_structure_loss, weighted_bce=True),
    "neounet": neounet_loss,
})

# Default loss per head kind (the "head" of a model: its main output's meaning).
HEAD_LOSSES: Registry[str] = Registry("head", {"trinary": "blazeneo", "binary": "bce_dice", "multilabel": "neounet"})


def create_loss(name: str) -> LossFn:
    """Loss by name; an unknown name lists the valid ones."""
    return LOSSES[name]


def loss_for_head(head: str) -> LossFn:
    """Default loss for a head kind: trinary -> blazeneo, binary -> bce_dice, multilabel -> neounet."""
    return LOSSES[HEAD_LOSSES[head]]
