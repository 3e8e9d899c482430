"""Optimisation for `polypview train`: the optimizer and learning-rate schedule of a recipe, multi-scale batch
resizing, and the `Stepper` that runs one training step (loss parts, distillation term, gradient clipping)."""

from __future__ import annotations

import math

from polypview.inference.training.distill import distill_term
from polypview.inference.training.recipes import Recipe


def make_optimizer(recipe: Recipe, params):
    """The recipe's optimizer."""
    import torch

    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def lr_factor(recipe: Recipe, epoch_float: float) -> float:
    """Multiplier of the base lr at a (fractional) epoch: linear warm-up, then cosine to min_lr."""
    if recipe.schedule != "warmup_cosine":
        return 1.0
    warm = recipe.warmup_epochs
    if warm > 0 and epoch_float < warm:
        return max(epoch_float, 1e-3) / warm
    span = max(recipe.epochs - warm, 1e-9)
    progress = min(max((epoch_float - warm) / span, 0.0), 1.0)
    floor = recipe.min_lr / recipe.lr
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(recipe: Recipe, optimizer, steps_per_epoch: int):
    """Per-step LambdaLR for warm-up/cosine/constant; ReduceLROnPlateau (per epoch) for plateau."""
    import torch

    if recipe.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=recipe.plateau_factor, patience=recipe.plateau_patience, min_lr=recipe.min_lr)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(recipe, step / steps_per_epoch))


def resize_batch(images, labels, size: int):
    """Resize a batch to size x size: images bilinear, labels nearest (no invented labels)."""
    import torch.nn.functional as F

    if images.shape[-1] == size and images.shape[-2] == size:
        return images, labels
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    labels = F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    return images, labels


class Stepper:
    """One training batch: forward at each scale, loss, backward, step (per the recipe's mode)."""

    def __init__(self, model, optimizer, loss_fn, recipe: Recipe, bf16: bool = False, teacher=None,
                 distill_weight: float = 1.0, temperature: float = 2.0):
        self.model, self.optimizer, self.loss_fn, self.recipe = model, optimizer, loss_fn, recipe
        self.bf16 = bf16
        self.teacher, self.distill_weight, self.temperature = teacher, distill_weight, temperature

    def _loss(self, images, labels, size):
        import torch

        images, labels = resize_batch(images, labels, size)
        with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            outputs = self.model.forward_train(images)
        loss, parts = self.loss_fn(_to_float(outputs), labels)  # losses in fp32: Tversky terms are small
        if self.teacher is None:
            return loss, parts
        with torch.no_grad():
            soft = self.teacher(images)
        kd = distill_term(outputs["main"], soft, self.temperature)
        return loss + self.distill_weight * kd, {**parts, "distill": float(kd.detach())}

    def _step(self, loss) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.recipe.grad_clip > 0:
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.clamp_(-self.recipe.grad_clip, self.recipe.grad_clip)
        self.optimizer.step()

    def __call__(self, images, labels) -> tuple[float, dict]:
        scales = self.recipe.scales()
        results = []
        if self.recipe.multiscale_mode == "average" and len(scales) > 1:
            losses = [self._loss(images, labels, s) for s in scales]
            self._step(sum(loss for loss, _ in losses) / len(losses))
            results = [(float(loss.detach()), parts) for loss, parts in losses]
        else:
            for size in scales:
                loss, parts = self._loss(images, labels, size)
                self._step(loss)
                results.append((float(loss.detach()), parts))
        return _mean_parts(results)


def _to_float(outputs):
    """fp32 copies of a forward pass's tensors (a tensor, or a dict of them)."""
    import torch

    if isinstance(outputs, dict):
        return {k: _to_float(v) for k, v in outputs.items()}
    return outputs.float() if torch.is_tensor(outputs) and outputs.is_floating_point() else outputs


def _mean_parts(results: list[tuple[float, dict]]) -> tuple[float, dict]:
    total = sum(r[0] for r in results) / len(results)
    keys = results[0][1].keys()
    return total, {k: sum(float(r[1][k]) for r in results) / len(results) for k in keys}
