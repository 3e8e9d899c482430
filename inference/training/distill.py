"""Distillation from a trained trinary model: the teacher, the soft-target term, and pseudo-labels for the
unlabelled NeoPolyp test images."""

from __future__ import annotations

import sys
from pathlib import Path

from polypview.errors import ConfigError, DataError
from polypview.inference.training.checkpoints import labels_from_logits, load_checkpoint, model_from_checkpoint, training_view


def load_teacher(path: Path, device):
    """A trained trinary model (training checkpoint or shipped .pt) in eval mode, frozen; with its name and
    input size."""
    from polypview.inference.models import get_spec

    ckpt = training_view(load_checkpoint(path, shipped_weights=True))
    name = ckpt["model"]
    if get_spec(name).head != "trinary":
        raise ConfigError(f"--teacher {path} is a {get_spec(name).head} model; distillation needs a trinary one")
    model = model_from_checkpoint(ckpt).requires_grad_(False)
    size = ckpt.get("input_size") or get_spec(name).input_size[0]
    return model.to(device), name, int(size)


def distill_term(student_logits, teacher_logits, temperature: float):
    """Per-pixel KL(teacher || student) of the class softmaxes at `temperature`, times T^2 (Hinton)."""
    import torch.nn.functional as F

    t = temperature
    teacher = F.log_softmax(teacher_logits.float() / t, dim=1)
    student = F.log_softmax(student_logits.float() / t, dim=1)
    kl = (teacher.exp() * (teacher - student)).sum(dim=1)
    return kl.mean() * t * t


def pseudo_label_pairs(opts, limit: int | None = None) -> list[tuple[Path, Path]]:
    """Label the unlabelled NeoPolyp test images with the teacher (argmax at its input size, resized to
    the image with nearest); masks are written in NeoPolyp colours to OUT/pseudo/ (never committed)."""
    import cv2
    import numpy as np
    import torch

    from polypview.inference.models import get_spec
    from polypview.inference.runtime.labels import LABEL_COLORS
    from polypview.inference.training.data import IMAGE_SUFFIXES, normalise, read_image, resize_image, resize_labels

    folder = Path(opts.data) / "test" / "images"
    images = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not images:
        raise DataError(f"--pseudo: no unlabelled images in {folder}")
    teacher, name, size = load_teacher(opts.teacher, torch.device("cpu"))
    spec = get_spec(name)
    out = Path(opts.out) / "pseudo"
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    with torch.no_grad():
        for path in images:
            mask = out / f"{path.stem}.png"
            if not mask.is_file():
                rgb = read_image(path)
                blob = normalise(resize_image(rgb, (size, size)), spec.mean, spec.std, spec.color_order)
                labels = labels_from_logits("trinary", teacher(torch.from_numpy(blob)[None]))[0]
                labels = resize_labels(labels, rgb.shape[:2])
                cv2.imwrite(str(mask), np.ascontiguousarray(LABEL_COLORS[labels][..., ::-1]))
            pairs.append((path, mask))
    print(f"pseudo-labels: {len(pairs)} unlabelled images labelled by {name} ({opts.teacher}) in {out}",
          file=sys.stderr, flush=True)
    return pairs
