"""The model zoo: a string-keyed registry of segmentation networks and their metadata.

Importing this package does not import torch; the first registry look-up imports the
architecture modules (which need torch) and so fills the registry.

Conventions shared by every model (see ``base.SegmentationModel``):
  * ``forward(x)`` returns the MAIN logits (N, C, H, W) at the input resolution: the
    inference / export graph.
  * ``forward_train(x)`` returns a dict: ``"main"`` (same as forward), optionally ``"aux"``
    (N, 1, H, W binary polyp logit, training only) and ``"deep"`` (list of further logits at
    the input resolution, for deep supervision).
  * Training-only modules that the published parameter counts exclude live under the
    attribute ``aux``; ``inference_params`` leaves them out. Build them away with
    ``create_model(name, aux=False)``.

Input sizes: H and W multiples of 32 work for every model; NanoNet, BlazeNeo and HarDNet-MSEG
accept any size (their decoders resize to the skip's size), ResUNet++ needs multiples of 8.

Heads (channel order of the logits):
  * ``trinary``: 3 logits [neoplastic, non-neoplastic, background], softmax.
  * ``binary``: 1 logit [polyp], sigmoid.
  * ``multilabel``: 2 logits [neoplastic, non-neoplastic], independent sigmoids (NeoUNet; we
    use BlazeNeo's order, not the NeoUNet repo's [non, neo]).

Input convention: every model here is trained from scratch by us, so all take RGB /255
normalised with the ImageNet mean/std (the published NanoNet code fed BGR /255, NeoUNet /255
only; without pretrained encoders that choice is ours to make, and one convention keeps the
app and the data loaders simple).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from polypview.errors import ConfigError
from polypview.inference.runtime.modelfile import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NEOPLASTIC_RGB,
    NON_NEOPLASTIC_RGB,
    POLYP_RGB,
    ModelInfo,
)

HEADS = ("trinary", "binary", "multilabel")
# Modules whose import registers architectures (each needs torch).
_ARCH_MODULES = ("nanonet", "hardnet", "neounet", "resunetpp", "lite")

# Per head: foreground class names, their RGB colours, how the probabilities combine.
_HEAD_CLASSES = {
    "trinary": (("neoplastic", "non-neoplastic"), (NEOPLASTIC_RGB, NON_NEOPLASTIC_RGB), "softmax"),
    "multilabel": (("neoplastic", "non-neoplastic"), (NEOPLASTIC_RGB, NON_NEOPLASTIC_RGB), "sigmoid"),
    "binary": (("polyp",), (POLYP_RGB,), "sigmoid"),
}
# Number of logit channels each head produces.
HEAD_CHANNELS = {"trinary": 3, "binary": 1, "multilabel": 2}


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one architecture besides its builder."""

    name: str
    builder: Callable
    head: str
    input_size: tuple[int, int]
    published_params: int | None = None
    count_bn_stats: bool = False  # the published count is a Keras total (includes BN mean/var)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color_order: str = "RGB"
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}
_loaded = False


def register_model(
    name: str,
    *,
    head: str,
    input_size,
    published_params: int | None = None,
    count_bn_stats: bool = False,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    color_order: str = "RGB",
    description: str = "",
):
    """Decorator: register a builder function under `name`."""
    if head not in HEADS:
        raise ConfigError(f"model {name!r}: head {head!r} is not one of {', '.join(HEADS)}")
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)

    def decorate(builder: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].builder is not builder:
            raise ConfigError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(
            name, builder, head, size, published_params, count_bn_stats,
            tuple(mean), tuple(std), color_order, description,
        )
        return builder

    return decorate


def _load() -> None:
    """Import the architecture modules once, which registers them."""
    global _loaded
    if not _loaded:
        for module in _ARCH_MODULES:
            importlib.import_module(f"{__name__}.{module}")
        _loaded = True


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _load()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The ModelSpec of `name`; an unknown name raises ConfigError listing the valid ones."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; valid names: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_model(name: str, **kwargs):
    """Build the torch.nn.Module registered as `name` (kwargs go to its builder)."""
    spec = get_spec(name)
    try:
        inspect.signature(spec.builder).bind(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: bad options {sorted(kwargs)} ({exc})") from None
    return spec.builder(**kwargs)


def foreground_probs(head: str, logits):
    """Probabilities (N, K, H, W) of the foreground classes, in model-file order."""
    import torch

    if head == "trinary":
        # softmax over the 3 channels written out per channel: the same values, but ONNX Runtime runs
        # these element-wise ops far faster than Softmax on axis 1 of an NCHW tensor (2 ms at 192x192)
        neo, non, background = logits[:, 0:1], logits[:, 1:2], logits[:, 2:3]
        top = torch.maximum(torch.maximum(neo, non), background)
        e_neo, e_non, e_bg = (neo - top).exp(), (non - top).exp(), (background - top).exp()
        return torch.cat([e_neo, e_non], dim=1) / (e_neo + e_non + e_bg)
    if head in ("binary", "multilabel"):
        return torch.sigmoid(logits)
    raise ConfigError(f"head {head!r} is not one of {', '.join(HEADS)}")


def model_info(name: str, **overrides) -> ModelInfo:
    """The model-file metadata for `name`, from its spec (fields may be overridden)."""
    spec = get_spec(name)
    classes, colors, activation = _HEAD_CLASSES[spec.head]
    fields = dict(
        architecture=name,
        classes=classes,
        colors=colors,
        activation=activation,
        input_size=spec.input_size,
        color_order=spec.color_order,
        mean=spec.mean,
        std=spec.std,
        description=spec.description,
    )
    fields.update(overrides)
    return ModelInfo(**fields)


def count_params(model, bn_stats: bool = False) -> int:
    """PyTorch parameter count; with bn_stats also BN running mean/var (Keras-style total)."""
    total = sum(p.numel() for p in model.parameters())
    if bn_stats:
        total += _bn_stat_count(model.modules())
    return total


def inference_params(model, bn_stats: bool = False) -> int:
    """Parameters of the inference graph: everything except the training-only `aux` subtree."""
    total = sum(p.numel() for n, p in model.named_parameters() if not _is_aux(n))
    if bn_stats:
        total += _bn_stat_count(m for n, m in model.named_modules() if not _is_aux(n))
    return total


def published_count(model, spec: ModelSpec) -> int:
    """The count to compare with `spec.published_params` (inference graph, Keras-style if so)."""
    return inference_params(model, bn_stats=spec.count_bn_stats)


def _is_aux(qualified_name: str) -> bool:
    return qualified_name == "aux" or qualified_name.startswith("aux.")


def _bn_stat_count(modules) -> int:
    from torch.nn.modules.batchnorm import _BatchNorm

    return sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in modules
        if isinstance(m, _BatchNorm) and m.running_mean is not None
    )


__all__ = [
    "HEADS",
    "HEAD_CHANNELS",
    "ModelSpec",
    "count_params",
    "create_model",
    "foreground_probs",
    "get_spec",
    "inference_params",
    "list_models",
    "model_info",
    "published_count",
    "register_model",
]
