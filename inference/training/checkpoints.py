"""Training checkpoints: saving atomically, reading (training checkpoints and shipped weights files), rebuilding
the model, the RNG state kept for exact resumes, the decision rule from logits to labels, and the curves."""

from __future__ import annotations

import math
import os
from pathlib import Path

from polypview.errors import ConfigError

# How each head's model-file probabilities combine (polypview.inference.models' heads).
HEAD_ACTIVATIONS = {"trinary": "softmax", "binary": "sigmoid", "multilabel": "sigmoid"}


def rng_state() -> dict:
    """Python, numpy and torch RNG states (stored in checkpoints for the record and for resume)."""
    import random

    import numpy as np
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved."""
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write atomically (a killed run never leaves a half-written last.pt)."""
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, shipped_weights: bool = False) -> dict:
    """Read a training checkpoint; anything unreadable is a ConfigError saying so.

    With `shipped_weights`, a shipped inference weights file (`export --pt`: "architecture" and
    "state_dict", no "model") is accepted too.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise ConfigError(f"cannot read checkpoint {path}: {exc}") from None
    shipped = shipped_weights and isinstance(ckpt, dict) and "architecture" in ckpt and "state_dict" in ckpt
    if not shipped and (not isinstance(ckpt, dict) or "model" not in ckpt or "state_dict" not in ckpt):
        raise ConfigError(f"{path} is not a polypview training checkpoint (no model/state_dict)")
    return ckpt


def model_from_checkpoint(ckpt: dict):
    """Rebuild the trained torch model (eval mode) from a checkpoint dict."""
    from polypview.inference.models import create_model

    model = create_model(ckpt["model"], **ckpt.get("model_kwargs", {}))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def model_file_weights(path: Path, what: str, expected: str | None = None) -> tuple:
    """(ModelInfo, state dict without the auxiliary head) of a model file (.onnx): its convolutions, with every
    BatchNorm made the identity plus the folded bias (runtime/onnxweights.py). Only architectures whose
    inference module is the network itself can give them back. `what` starts each error message;
    `expected` is the architecture the caller needs."""
    import torch

    from polypview.inference.models import create_model
    from polypview.inference.runtime.backend_torch import read_onnx_header
    from polypview.inference.runtime.modelfile import ModelInfo
    from polypview.inference.runtime.onnxweights import load_onnx_weights

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what}: model file not found")
    info = ModelInfo.from_metadata(read_onnx_header(path)[0], source=f"model file {path}")
    name = info.architecture
    if expected is not None and name != expected:
        raise ConfigError(f"{what} holds {name} weights, not {expected}")
    plain = create_model(name, **inference_options(name, {}))
    if plain.for_inference() is not plain:
        raise ConfigError(f"{what}: {name}'s inference graph is restructured, so its model file cannot "
                          "give the training weights back; use its .pt")
    load_onnx_weights(torch, plain, path, tuple(info.input_size), name)
    return info, plain.state_dict()


def plot_history(history: list[dict], path: Path) -> None:
    """Training curves: loss parts per epoch (left), validation Dice/IoU per class (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for key in history[0]["train"]:
        ax_loss.plot(epochs, [h["train"][key] for h in history], label=key)
    ax_loss.plot(epochs, [h["val"]["loss"] for h in history], "k--", label="val loss")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="training loss")
    ax_loss.legend(fontsize=7)
    for cls, color in (("polyp", "tab:blue"), ("neoplastic", "tab:red"), ("non_neoplastic", "tab:green")):
        dice = [h["val"][cls]["dice"] for h in history]
        iou = [h["val"][cls]["iou"] for h in history]
        ax_val.plot(epochs, [math.nan if d is None else d for d in dice], color=color, label=f"{cls} Dice")
        ax_val.plot(epochs, [math.nan if v is None else v for v in iou], color=color, ls=":", label=f"{cls} IoU")
    ax_val.set(xlabel="epoch", ylim=(0, 1), title="validation (micro)")
    ax_val.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def training_view(ckpt: dict) -> dict:
    """A shipped weights file (`export --pt`: "architecture", fp16 "state_dict" without the auxiliary
    head, "model_options") as the fields of a training checkpoint that export reads; a training
    checkpoint is returned as it is."""
    if "model" in ckpt:
        return ckpt
    name = str(ckpt["architecture"])
    options = inference_options(name, ckpt.get("model_options") or {})  # the file holds no training-only head
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    return {"model": name, "model_kwargs": options, "state_dict": state}


def inference_options(name: str, options: dict) -> dict:
    """`options` with aux=False for networks built with a training-only auxiliary head by default."""
    from polypview.inference.models import get_spec
    from polypview.inference.runtime.backend_torch import _builder_params

    return {**options, "aux": False} if "aux" in _builder_params(get_spec(name).builder) else dict(options)


def labels_from_logits(head: str, logits):
    """Main logits -> uint8 label maps (N, H, W) with the model-file decision rule."""
    import numpy as np

    from polypview.inference.models import foreground_probs
    from polypview.inference.training.metrics import labels_from_probs

    probs = foreground_probs(head, logits).float().cpu().numpy()
    activation = HEAD_ACTIVATIONS[head]
    return np.stack([labels_from_probs(p, activation) for p in probs])
