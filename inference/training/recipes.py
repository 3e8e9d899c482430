"""Training recipes as data: one per model family, overridable by a JSON config and by flags.

A recipe says how to train (optimizer, schedule, batch, size, multi-scale, class balancing,
augmentation, loss). It is resolved as: command-line flags, then ``--config recipe.json``,
then the family recipe of the model, then the dataclass defaults. The sources of each
family's values are in ``../shared/spec/models.md`` (sections cited per recipe).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from polypview.errors import ConfigError
from polypview.registry import Registry

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("warmup_cosine", "plateau", "constant")
MULTISCALE_MODES = ("step", "average")  # one optimizer step per scale | loss averaged, one step


@dataclass(frozen=True)
class Recipe:
    """How to train one model (every field can come from a JSON config or a flag)."""

    family: str = "custom"
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    nesterov: bool = False  # SGD only
    schedule: str = "warmup_cosine"
    warmup_epochs: float = 1.0
    min_lr: float = 0.0
    plateau_patience: int = 10  # schedule "plateau": epochs without val-loss improvement
    plateau_factor: float = 0.1
    epochs: int = 50
    batch: int = 8
    size: int = 256
    multiscale: tuple[float, ...] = ()  # rates of `size`, rounded to a multiple of 32; () = off
    multiscale_mode: str = "step"
    oversample: int = 1  # images holding non-neoplastic pixels repeated this many times
    augment: str = "default"  # polypview.inference.training.augment.AUGMENTS
    loss: str = ""  # polypview.inference.training.losses.LOSSES; "" = the default of the model's head
    grad_clip: float = 0.0  # element-wise clamp of gradients (PraNet lineage); 0 = off
    notes: str = ""

    def validate(self) -> Recipe:
        """Raise ConfigError on values the trainer cannot use; return self."""
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}"),
            (self.multiscale_mode in MULTISCALE_MODES,
             f"multiscale_mode {self.multiscale_mode!r} is not one of {', '.join(MULTISCALE_MODES)}"),
            (self.epochs >= 1 and self.batch >= 1, "epochs and batch must be >= 1"),
            (self.size >= 32 and self.size % 32 == 0, f"size {self.size} must be a multiple of 32, >= 32"),
            (self.lr > 0, "lr must be > 0"),
            (self.oversample >= 1, "oversample must be >= 1"),
            (all(r > 0 for r in self.multiscale), "multiscale rates must be > 0"),
        ]
        problems = [msg for ok, msg in checks if not ok]
        if problems:
            raise ConfigError("bad training recipe: " + "; ".join(problems))
        return self

    def scales(self) -> list[int]:
        """Training sizes of one batch: the multi-scale sizes (multiples of 32), or [size]."""
        if not self.multiscale:
            return [self.size]
        return [max(32, int(round(self.size * r / 32)) * 32) for r in self.multiscale]

    def to_dict(self) -> dict:
        """JSON-ready form (tuples become lists)."""
        d = asdict(self)
        d["multiscale"] = list(self.multiscale)
        return d


# BlazeNeo (models.md §3.2): SGD 0.9 / 1e-3 / wd 1e-4, warm-up then cosine to 0, batch 16,
# multi-scale (0.75, 1.25, 1) with one step per scale, non-neoplastic images 5x. The 2021
# configs run 50 epochs with 10 warm-up; the paper's choice is uncertain (§11.1).
BLAZENEO = Recipe(
    family="blazeneo", optimizer="sgd", lr=1e-3, weight_decay=1e-4, momentum=0.9,
    schedule="warmup_cosine", warmup_epochs=10, min_lr=0.0, epochs=50, batch=16, size=352,
    multiscale=(0.75, 1.25, 1.0), multiscale_mode="step", oversample=5, augment="blazeneo",
    loss="blazeneo",
    notes="BlazeNeo released code (models.md 3.2), 2021 configs: 50 epochs, 10 warm-up",
)

# HarDNet-MSEG 3-class, as BlazeNeo re-trained it: the BlazeNeo pipeline and main loss.
HARDNET_MSEG3 = replace(BLAZENEO, family="hardnet-mseg3",
                        notes="BlazeNeo's baseline training of 3-class HarDNet-MSEG (models.md 3.2, 7.1)")

# HarDNet-MSEG binary (models.md §2.3): Adam 1e-4 constant, 100 epochs, batch 16, multi-scale
# one step per scale, structure loss, gradient clamp 0.5.
HARDNET_MSEG = Recipe(
    family="hardnet-mseg", optimizer="adam", lr=1e-4, schedule="constant", warmup_epochs=0,
    epochs=100, batch=16, size=352, multiscale=(0.75, 1.0, 1.25), multiscale_mode="step",
    oversample=1, augment="default", loss="structure", grad_clip=0.5,
    notes="HarDNet-MSEG authors' recipe (models.md 2.3)",
)

# NeoUNet stage 2 (models.md §4.2): SGD Nesterov 1e-3, warm-up 2 then cosine, batch 16,
# multi-scale with the loss averaged over the three scales and one step. Without the binary
# pre-training stage (no Kvasir/ClinicDB here) we train longer: 50 epochs, 5 warm-up.
NEOUNET = Recipe(
    family="neounet", optimizer="sgd", lr=1e-3, momentum=0.9, nesterov=True, weight_decay=0.0,
    schedule="warmup_cosine", warmup_epochs=5, epochs=50, batch=16, size=352,
    multiscale=(0.75, 1.0, 1.25), multiscale_mode="average", oversample=5, augment="default",
    loss="neounet",
    notes="NeoUNet repo stage-2 recipe (models.md 4.2) without stage-1 binary pre-training, "
          "so 50 epochs instead of 20",
)

# NanoNet (models.md §5.4) trained FROM SCRATCH. The published recipe (Adam 1e-4, plateau
# schedule, 200 epochs) fine-tunes an ImageNet encoder; from scratch and on a CPU budget of
# a few dozen epochs, Adam at 1e-3 with a short warm-up and cosine decay to 1e-5 converges
# much faster and ends annealed (a plateau schedule would never fire in so few epochs).
# Batch 8 and 256 px as released; the -neo variants use BlazeNeo's loss and balancing.
NANONET = Recipe(
    family="nanonet", optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="warmup_cosine",
    warmup_epochs=1, min_lr=1e-5, epochs=60, batch=8, size=256, multiscale=(),
    oversample=1, augment="default", loss="dice",
    notes="NanoNet (models.md 5.4) adapted for training from scratch: Adam 1e-3, 1 warm-up "
          "epoch, cosine to 1e-5, batch 8, 256 px",
)
NANONET_NEO = replace(
    NANONET, family="nanonet-neo", loss="blazeneo", oversample=5,
    notes="NanoNet-neo: NanoNet from-scratch recipe + BlazeNeo's trinary+aux loss (models.md 7.1) "
          "and 5x oversampling of non-neoplastic images (models.md 3.2)",
)

# ResUNet++ (models.md §6, run.py): Nadam 1e-4, batch 8, 256 px, BCE, plateau x0.1 patience 5.
# Nadam is approximated by Adam (PyTorch's NAdam would do too; Adam keeps one code path).
RESUNETPP = Recipe(
    family="resunetpp", optimizer="adam", lr=1e-4, schedule="plateau", plateau_patience=5,
    plateau_factor=0.1, min_lr=1e-6, warmup_epochs=0, epochs=100, batch=8, size=256,
    augment="default", loss="bce_dice",
    notes="ResUNet++ released run.py (models.md 6): lr 1e-4, batch 8, plateau x0.1 patience 5; "
          "Adam for Nadam; BCE+Dice for BCE",
)

# The seed designs on an ImageNet-pretrained EfficientNet-Lite encoder (models.md 13), trained for
# what the app sees: camera-like views (augment "video": random aspect, zoom 0.7-3x, rotation,
# polyp-free close-ups, blur, colour jitter) drawn at the app's square input size, BlazeNeo's
# trinary + auxiliary loss with the non-neoplastic pixels' cross-entropy weighted 3x (without it,
# nanonet-lite0-neo's first 5 epochs never predicted the class: val Dice 0.0, 0.06 at epoch 6),
# non-neoplastic images 2x. AdamW with a short warm-up (the decoder starts random) and cosine
# decay; 256 px (the default's file runs these weights at 320 px, docs/models.md).
LITE_NEO = Recipe(
    family="lite-neo", optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="warmup_cosine",
    warmup_epochs=1, min_lr=1e-5, epochs=20, batch=8, size=256, multiscale=(), oversample=2,
    augment="video", loss="blazeneo_balanced",
    notes="pretrained EfficientNet-Lite encoder: AdamW 1e-3, 1 warm-up epoch, cosine to 1e-5, batch 8, "
          "256 px camera-like views, BlazeNeo loss with non-neoplastic pixels' CE x3, non-neoplastic images 2x",
)

# The same for nanonet-lite0's single polyp channel (binary masks, e.g. Kvasir-SEG): BCE + Dice on the polyp,
# no class to balance.
LITE = replace(
    LITE_NEO, family="lite", loss="bce_dice", oversample=1,
    notes="pretrained EfficientNet-Lite encoder, binary polyp head: AdamW 1e-3, 1 warm-up epoch, cosine to 1e-5, "
          "batch 8, 256 px camera-like views, BCE + Dice",
)

RECIPES: Registry[Recipe] = Registry("recipe", {
    "blazeneo": BLAZENEO,
    "hardnet-mseg": HARDNET_MSEG,
    "hardnet-mseg3": HARDNET_MSEG3,
    "neounet": NEOUNET,
    "nanonet": NANONET,
    "nanonet-neo": NANONET_NEO,
    "resunetpp": RESUNETPP,
    "lite-neo": LITE_NEO,
    "lite": LITE,
})

# The GPU run for BlazeNeo-DHA with the recipe above (not run here: this task had no GPU), then
# `polypview eval runs/blazeneo-dha/best.pt --json runs/eval.json` and
# `polypview export runs/blazeneo-dha/best.pt -o assets/blazeneo-dha.onnx --fp16 --card runs/eval.json`.
BLAZENEO_GPU_COMMAND = (
    "polypview train --model blazeneo-dha --device cuda --workers 8 --threads 8 --out runs/blazeneo-dha"
)


def family_of(model: str) -> str:
    """The recipe family of a registered model name."""
    if "-lite" in model:
        return "lite-neo" if model.endswith("-neo") else "lite"
    if model.startswith("blazeneo"):
        return "blazeneo"
    if model.startswith("nanonet"):
        return "nanonet-neo" if model.endswith("-neo") else "nanonet"
    if model in RECIPES:
        return model
    raise ConfigError(f"no training recipe for model {model!r}; families: {', '.join(RECIPES)}")


def get_recipe(name: str) -> Recipe:
    """Recipe by family name; an unknown name lists the valid ones."""
    return RECIPES[name]


def recipe_for(model: str) -> Recipe:
    """The family recipe for a model name."""
    return get_recipe(family_of(model))


def load_config(path: str | Path) -> dict:
    """Read a JSON recipe file: {"recipe": "nanonet", ...fields} or just fields."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must hold a JSON object of recipe fields")
    return data


def apply_overrides(recipe: Recipe, overrides: dict) -> Recipe:
    """A copy of `recipe` with the given fields replaced (None values are skipped)."""
    known = {f.name: f for f in fields(Recipe)}
    unknown = sorted(set(overrides) - set(known) - {"recipe"})
    if unknown:
        raise ConfigError(f"unknown recipe fields {unknown}; valid: {', '.join(known)}")
    values = {k: v for k, v in overrides.items() if k in known and v is not None}
    if "multiscale" in values:
        values["multiscale"] = tuple(float(r) for r in values["multiscale"])
    return replace(recipe, **values).validate()


def resolve_recipe(model: str, config: str | Path | None = None, flags: dict | None = None) -> Recipe:
    """Flags over config file over the model family's recipe."""
    data = load_config(config) if config else {}
    base = get_recipe(data["recipe"]) if "recipe" in data else recipe_for(model)
    return apply_overrides(apply_overrides(base, data), flags or {})
