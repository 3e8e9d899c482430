"""The model-file contract: what an ONNX file must say about itself for the app to run it.

A polypview model file is one ONNX file with
  * one input  ``image``: float32, shape (N, 3, H, W), already normalised as the metadata says;
  * one output ``probs``: float32, shape (N, K, H, W), the probability of each of the K
    foreground classes listed in ``classes`` (background is implicit);
  * metadata properties (ONNX ``metadata_props``), each value a JSON string, listed in
    ``REQUIRED_KEYS`` and ``OPTIONAL_KEYS``.

``overlay`` (optional) holds the model's own drawing defaults, e.g. ``{"min_peak": 0.95}``: a
region peak chosen for this model on the validation tower clip. The app uses them unless the user
sets the option; a file without them is drawn with the app's defaults.

``activation`` tells how the K probabilities combine into one "polyp" score:
``softmax`` (exclusive classes, background dropped: polyp = sum) or ``sigmoid``
(independent channels: polyp = max).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from polypview.errors import ModelFileError

INPUT_NAME = "image"
OUTPUT_NAME = "probs"
KEY_PREFIX = "polypview."

REQUIRED_KEYS = (
    "architecture",
    "classes",
    "colors",
    "activation",
    "input_size",
    "color_order",
    "mean",
    "std",
    "version",
)
OPTIONAL_KEYS = ("training_data", "metrics", "description", "overlay")
# Drawing settings a model file may carry (app.overlay.OverlaySettings fields), each a number in [0, 1].
MODEL_OVERLAY_KEYS = ("min_peak",)

ACTIVATIONS = ("softmax", "sigmoid")
COLOR_ORDERS = ("RGB", "BGR")

# The NeoPolyp colour code (RGB).
NEOPLASTIC_RGB = (255, 0, 0)
NON_NEOPLASTIC_RGB = (0, 255, 0)
POLYP_RGB = (255, 255, 0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelInfo:
    """Everything the app needs to run a model file, read from (or written to) its metadata."""

    architecture: str
    classes: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]  # RGB, one per class
    activation: str
    input_size: tuple[int, int]  # (height, width)
    color_order: str = "RGB"
    mean: tuple[float, float, float] = IMAGENET_MEAN  # applied after /255, in color_order
    std: tuple[float, float, float] = IMAGENET_STD
    version: str = "0"
    training_data: str = ""
    metrics: dict = field(default_factory=dict)
    description: str = ""
    overlay: dict = field(default_factory=dict)  # this model's drawing defaults (MODEL_OVERLAY_KEYS)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ModelFileError when the fields are inconsistent."""
        problems = []
        if not self.classes:
            problems.append("no classes")
        if len(self.colors) != len(self.classes):
            problems.append(f"{len(self.colors)} colours for {len(self.classes)} classes")
        if self.activation not in ACTIVATIONS:
            problems.append(f"activation {self.activation!r} is not one of {ACTIVATIONS}")
        if self.color_order not in COLOR_ORDERS:
            problems.append(f"color_order {self.color_order!r} is not one of {COLOR_ORDERS}")
        if len(self.input_size) != 2 or min(self.input_size) < 16:
            problems.append(f"input_size {self.input_size!r} is not (height, width) >= 16")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            problems.append("mean/std must be three numbers each, std > 0")
        problems += _overlay_problems(self.overlay)
        if problems:
            raise ModelFileError(f"model metadata is invalid: {'; '.join(problems)}")

    def to_metadata(self) -> dict[str, str]:
        """The ONNX metadata_props for this model (JSON values, prefixed keys)."""
        return {KEY_PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, props: dict[str, str], source: str = "model file") -> ModelInfo:
        """Parse metadata_props; a missing or malformed key raises ModelFileError naming it."""
        missing = [k for k in REQUIRED_KEYS if KEY_PREFIX + k not in props]
        if missing:
            raise ModelFileError(
                f"{source} lacks polypview metadata ({', '.join(missing)}): "
                "export it with `polypview export`, which writes the metadata the app needs"
            )
        values = {}
        for f in fields(cls):
            raw = props.get(KEY_PREFIX + f.name)
            if raw is None:
                continue
            try:
                values[f.name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ModelFileError(f"{source}: metadata {f.name!r} is not valid JSON ({exc})") from None
        return cls(**_as_tuples(values))


def _overlay_problems(overlay) -> list[str]:
    if not isinstance(overlay, dict):
        return [f"overlay {overlay!r} is not a mapping of drawing settings"]
    problems = []
    for key, value in overlay.items():
        if key not in MODEL_OVERLAY_KEYS:
            problems.append(f"overlay setting {key!r} is not one of {MODEL_OVERLAY_KEYS}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            problems.append(f"overlay {key} {value!r} is not a number in [0, 1]")
    return problems


def _as_tuples(values: dict) -> dict:
    """JSON gives lists; the dataclass holds tuples (hashable, immutable)."""
    out = dict(values)
    for key in ("classes", "input_size", "mean", "std"):
        if key in out:
            out[key] = tuple(out[key])
    if "colors" in out:
        out["colors"] = tuple(tuple(int(c) for c in rgb) for rgb in out["colors"])
    return out


def neopolyp_info(architecture: str, input_size: int, **kw) -> ModelInfo:
    """ModelInfo for a 3-class NeoPolyp model exported as (neoplastic, non-neoplastic) softmax probs."""
    return ModelInfo(
        architecture=architecture,
        classes=("neoplastic", "non-neoplastic"),
        colors=(NEOPLASTIC_RGB, NON_NEOPLASTIC_RGB),
        activation="softmax",
        input_size=(input_size, input_size),
        **kw,
    )
