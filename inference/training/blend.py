"""`polypview blend`: one network's weights as the weighted average of several trained files of it.

Averaging the weights of fine-tunes that share a starting point ("model soups", WiSE-FT: Wortsman et
al., 2022) often keeps what each learnt and generalises better than either, at no cost in speed: the
graph is the same. Sources may be training checkpoints, shipped weights files (`export --pt`) or model
files (.onnx, for networks whose inference graph is the network itself); all must hold the same
architecture with the same options, and either all have their BatchNorms folded (model files, and runs
fine-tuned from them) or none, since a folded and an unfolded BatchNorm do not mean the same weights.
The result is a checkpoint that `polypview export` and `polypview eval` read like a training run's.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path

from polypview.errors import ConfigError, OutputError
from polypview.inference.training.checkpoints import (
    inference_options,
    load_checkpoint,
    model_file_weights,
    save_checkpoint,
    training_view,
)
from polypview.inference.training.export import checkpoint_description
from polypview.inference.training.metrics import distinct_tails


def add_arguments(parser) -> None:
    """Command-line options of `polypview blend`."""
    parser.add_argument("sources", nargs="+", type=Path,
                        help="two or more training checkpoints, shipped .pt weights or model files (.onnx) of one network")
    parser.add_argument("--weights", default=None, metavar="W1,W2,...",
                        help="one weight per source, e.g. 0.75,0.25 (default: equal; scaled to sum to 1)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="checkpoint to write, for `polypview export` and `polypview eval`")


@dataclass(frozen=True)
class Source:
    """One file's weights, as a training checkpoint would hold them (without the training-only aux head)."""

    path: Path
    model: str
    model_kwargs: dict
    state: dict
    folded: bool  # BatchNorms folded into the convolutions (model-file weights), kept frozen when trained
    commands: list
    training_data: str
    input_size: int | None
    description: str  # the model file's description (the views it was trained on), "" if unknown


def parse_weights(text: str | None, count: int) -> list[float]:
    """`--weights` as fractions summing to 1; ConfigError unless `count` non-negative numbers, not all 0."""
    if text is None:
        return [1.0 / count] * count
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--weights must be comma-separated numbers, got {text!r}") from None
    if len(values) != count:
        raise ConfigError(f"--weights gives {len(values)} weights for {count} sources")
    if any(v < 0 or not math.isfinite(v) for v in values) or sum(values) <= 0:
        raise ConfigError(f"--weights must be finite, non-negative and not all 0, got {text!r}")
    total = sum(values)
    return [v / total for v in values]


def _without_aux(name: str, kwargs: dict, state: dict) -> tuple[dict, dict]:
    options = inference_options(name, kwargs)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state.items()
               if not (k == "aux" or k.startswith("aux."))}
    return options, weights


def _folded(name: str, kwargs: dict, state: dict) -> bool:
    """Whether every BatchNorm of these weights is a folded identity (mean 0, variance 1 - eps)."""
    import torch

    from polypview.inference.models import create_model

    net = create_model(name, **kwargs)
    net.load_state_dict(state)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    return bool(norms) and all(
        bool((m.running_mean == 0).all()) and torch.allclose(m.running_var, torch.full_like(m.running_var, 1 - m.eps))
        for m in norms)


def load_source(path: Path) -> Source:
    """A source file's weights; ConfigError naming the file if it cannot give them."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        info, state = model_file_weights(path, str(path))
        options, weights = _without_aux(info.architecture, {}, state)
        return Source(path, info.architecture, options, weights, True,
                      [f"(weights of {path}, version {info.version}: see its model card)"],
                      info.training_data or f"see the model card of {path.name}", int(info.input_size[0]),
                      info.description)
    ckpt = load_checkpoint(path, shipped_weights=True)
    view = training_view(ckpt)
    options, weights = _without_aux(view["model"], view.get("model_kwargs", {}), view["state_dict"])
    commands = [c for c in (ckpt.get("commands") or [ckpt.get("command", "")]) if c]
    own = "model" in ckpt  # a run's checkpoint or a blend; a shipped .pt is described by its model file
    sibling = None if own else _sibling_info(path)
    text = ckpt.get("training_data") or (sibling.training_data if sibling else "") or f"see the model card of {path.name}"
    size = ckpt.get("input_size") or (sibling.input_size[0] if sibling else None)
    folded = bool(ckpt.get("frozen_bn")) or _folded(view["model"], options, weights)
    description = checkpoint_description(ckpt) if own else (sibling.description if sibling else "")
    return Source(path, view["model"], options, weights, folded,
                  commands or [f"(weights of {path}: see its model card)"], text, int(size) if size else None,
                  description)


def _sibling_info(path: Path):
    """The ModelInfo of the model file beside a shipped weights file (`export --pt` writes the two together)."""
    from polypview.inference.runtime.backend_torch import read_onnx_header
    from polypview.inference.runtime.modelfile import ModelInfo

    onnx = path.with_suffix(".onnx")
    if not onnx.is_file():
        return None
    try:
        return ModelInfo.from_metadata(read_onnx_header(onnx)[0], source=f"model file {onnx}")
    except Exception:  # a broken sibling only costs the description
        return None


def check_compatible(sources: list[Source]) -> None:
    """ConfigError unless every source holds the same network, options, tensors and BatchNorm kind."""
    first = sources[0]
    shapes = {k: tuple(v.shape) for k, v in first.state.items()}
    for other in sources[1:]:
        if other.model != first.model:
            raise ConfigError(f"{other.path} holds {other.model} weights, {first.path} {first.model}: "
                              "blend files of one network")
        if other.model_kwargs != first.model_kwargs:
            raise ConfigError(f"{other.path} was built with {other.model_kwargs}, {first.path} with "
                              f"{first.model_kwargs}: blend files of one network")
        others = {k: tuple(v.shape) for k, v in other.state.items()}
        if shapes != others:
            differ = sorted(k for k in shapes.keys() | others.keys() if shapes.get(k) != others.get(k))
            raise ConfigError(f"{other.path} and {first.path} differ in {len(differ)} tensors ({differ[:3]})")
        if other.folded != first.folded:
            folded, plain = (other, first) if other.folded else (first, other)
            raise ConfigError(f"{folded.path} has its BatchNorms folded into the convolutions and {plain.path} has "
                              "not, so their weights cannot be averaged: blend model files with model files "
                              "(or runs fine-tuned from them), checkpoints with checkpoints")


def average(states: list[dict], weights: list[float]) -> dict:
    """The weighted mean of each floating tensor; integer buffers (BatchNorm step counts) from the first."""
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            out[key] = sum(w * s[key] for w, s in zip(weights, states))
        else:
            out[key] = first.clone()
    return out


def blend(paths: list[Path], weights: list[float], command: str = "") -> dict:
    """The checkpoint of the blend of `paths` (see the module's docstring)."""
    from polypview.inference.training.train import CHECKPOINT_FORMAT

    if len(paths) < 2:
        raise ConfigError("blend needs at least two source files")
    sources = [load_source(p) for p in paths]
    check_compatible(sources)
    first = sources[0]
    names = distinct_tails([s.path for s in sources])
    text = ("weight average (`polypview blend`) " + " + ".join(f"{w:g} x {n}" for w, n in zip(weights, names))
            + " of: " + "; ".join(f"[{n}] {s.training_data}" for n, s in zip(names, sources)))
    # each file's chain in order; a fine-tune's chain repeats its start's, so each command is listed once
    commands = list(dict.fromkeys([c for s in sources for c in s.commands] + ([command] if command else [])))
    return {
        "format": CHECKPOINT_FORMAT,
        "model": first.model,
        "model_kwargs": first.model_kwargs,
        "state_dict": average([s.state for s in sources], weights),
        "frozen_bn": first.folded,
        "blend": [{"source": str(s.path), "name": n, "weight": w} for w, s, n in zip(weights, sources, names)],
        "command": command,
        "commands": commands,
        "training_data": text,
        "input_size": first.input_size,
        "description": next((s.description for s in sources if s.description), ""),
        "history": [],
    }


def command_of(args, weights: list[float]) -> str:
    """The `polypview blend` command equivalent to `args` (recorded in the checkpoint and its model card)."""
    words = ["polypview", "blend", *map(str, args.sources), "--weights", ",".join(f"{w:g}" for w in weights),
             "-o", str(args.output)]
    return shlex.join(words)


def run(args) -> int:
    """Entry point of `polypview blend`."""
    weights = parse_weights(args.weights, len(args.sources))
    ckpt = blend(list(args.sources), weights, command_of(args, weights))
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(args.output, ckpt)
    except OSError as exc:
        raise OutputError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"wrote {args.output}: {ckpt['model']} = "
          + " + ".join(f"{b['weight']:.3g} x {b['source']}" for b in ckpt["blend"]))
    return 0
