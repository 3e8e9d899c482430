"""`polypview train`: train a zoo model on NeoPolyp-Small with a family recipe.

Writes to ``--out``: ``last.pt`` (every epoch), ``best.pt`` (best validation score: see SELECTION),
``history.json`` (loss parts, learning rate, validation Dice/IoU
per class and per epoch), ``curves.png`` and ``recipe.json``. ``--resume`` continues from
``last.pt`` exactly: every epoch reseeds the sampler and the augmentation from (seed, epoch),
so a resumed run draws the same batches as an uninterrupted one. Checkpoints are read and written
by checkpoints.py; distillation (teacher, soft targets, pseudo-labels) lives in distill.py.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from polypview.errors import ConfigError, DataError
from polypview.inference.training.checkpoints import (
    labels_from_logits,
    load_checkpoint,
    model_file_weights,
    plot_history,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from polypview.inference.training.data import neopolyp_dir
from polypview.inference.training.distill import load_teacher, pseudo_label_pairs
from polypview.inference.training.optim import Stepper, make_optimizer, make_scheduler
from polypview.inference.training.recipes import RECIPES, Recipe, resolve_recipe

CHECKPOINT_FORMAT = 1
# Flags that override recipe fields (flag name -> recipe field).
RECIPE_FLAGS = ("epochs", "batch", "lr", "size", "multiscale", "oversample", "optimizer", "schedule",
                "warmup_epochs", "augment", "loss", "weight_decay")


def add_arguments(parser) -> None:
    """Command-line options of `polypview train`."""
    parser.add_argument("--model", help="registered model name, e.g. nanonet-lite0-neo (see --recipes for families)")
    parser.add_argument("--config", help="JSON recipe: {\"recipe\": FAMILY, field: value, ...}")
    parser.add_argument("--recipes", action="store_true", help="print the family recipes and exit")
    parser.add_argument("--data", type=Path, default=None,
                        help="NeoPolyp-Small folder (default: $POLYPVIEW_DATA or ../shared/data/neopolyp_small)")
    parser.add_argument("--split", type=Path, default=None,
                        help="folder with train.txt and val.txt name lists (default: the packaged fixed split)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/MODEL)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from the weights of this checkpoint, shipped .pt or model file (.onnx: its BatchNorms "
                             "are folded, so they stay frozen) (new optimizer and schedule: fine-tuning)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the recipe's)")
    parser.add_argument("--batch", type=int, help="images per step (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--weight-decay", dest="weight_decay", type=float, help="weight decay (default: the recipe's)")
    parser.add_argument("--size", type=int, help="training/validation input size (multiple of 32)")
    parser.add_argument("--multiscale", type=_rates, help="comma-separated rates, e.g. 0.75,1.25,1; 'off' disables")
    parser.add_argument("--oversample", type=int, help="repeat images with non-neoplastic polyps N times")
    parser.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), help="optimizer (default: the recipe's)")
    parser.add_argument("--schedule", choices=("warmup_cosine", "plateau", "constant"),
                        help="learning-rate schedule (default: the recipe's)")
    parser.add_argument("--warmup-epochs", dest="warmup_epochs", type=float,
                        help="linear warm-up length in epochs (default: the recipe's)")
    parser.add_argument("--augment", help="augmentation pipeline name (default, blazeneo, none)")
    parser.add_argument("--loss", help="loss name (default: the model head's loss)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, shuffling and augmentation (default 0)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train and val images (smoke runs)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--bf16", action="store_true",
                        help="forward pass in bfloat16 autocast (losses and weights stay fp32): ~1.4x faster on "
                             "CPUs with AMX/AVX512-BF16 and on recent GPUs")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="distil from this trained model (checkpoint or shipped .pt): its per-pixel class "
                             "probabilities become soft targets beside the labels")
    parser.add_argument("--distill-weight", dest="distill_weight", type=float, default=None,
                        help="weight of the distillation term (default 1)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="distillation softmax temperature (default 2)")
    parser.add_argument("--pseudo", action="store_true",
                        help="with --teacher: add the unlabelled NeoPolyp test images, labelled by the teacher")
    parser.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                        help="start an ImageNet-pretrained encoder (the -lite models) from random weights instead")


def _rates(text: str) -> tuple[float, ...]:
    if text.strip().lower() in ("off", "none", ""):
        return ()
    try:
        return tuple(float(t) for t in text.split(","))
    except ValueError:
        raise ConfigError(f"--multiscale wants comma-separated rates like 0.75,1.25,1, got {text!r}") from None


def run(args) -> int:
    """Entry point of `polypview train`."""
    if args.recipes:
        for name, recipe in RECIPES.items():
            print(name, json.dumps(recipe.to_dict()))
        return 0
    if not args.model:
        from polypview.inference.models import list_models

        raise ConfigError(f"--model is required; valid names: {', '.join(list_models())}")
    flags = {k: getattr(args, k, None) for k in RECIPE_FLAGS}
    recipe = resolve_recipe(args.model, args.config, flags)
    options = TrainOptions(
        model=args.model, recipe=recipe, data=args.data or neopolyp_dir(), split=args.split,
        out=args.out or Path("runs") / args.model, resume=args.resume, init=args.init, workers=args.workers,
        threads=args.threads, seed=args.seed, limit=args.limit, device=args.device,
        progress=args.progress, command=command_from_args(args), bf16=args.bf16,
        pretrained=getattr(args, "pretrained", True), teacher=getattr(args, "teacher", None),
        distill_weight=_or(getattr(args, "distill_weight", None), 1.0),
        temperature=_or(getattr(args, "temperature", None), 2.0),
        pseudo=getattr(args, "pseudo", False),
    )
    if options.pseudo and options.teacher is None:
        raise ConfigError("--pseudo needs --teacher (the teacher labels the unlabelled images)")
    result = train(options)
    best = result.get("best_score")
    print(f"done: {result['epochs']} epochs, best validation score {best:.4f} at epoch {result['best_epoch']}"
          f" -> {options.out / 'best.pt'}")
    return 0


def _or(value, default):
    return default if value is None else value


def command_from_args(args) -> str:
    """The `polypview train` command equivalent to `args` (recorded in checkpoints and model cards)."""
    words = ["polypview", "train"]
    for key, value in vars(args).items():
        flag = "--" + key.replace("_", "-")
        if key in ("progress", "pretrained"):
            words += [] if value else [f"--no-{key}"]
        elif value is True:
            words.append(flag)
        elif value is None or value is False or (key == "workers" and value == 1):
            continue
        elif key == "multiscale":
            words += [flag, ",".join(str(r) for r in value) or "off"]
        else:
            words += [flag, str(value)]
    return " ".join(shlex.quote(w) for w in words)


@dataclass
class TrainOptions:
    """Everything one training run needs besides the recipe's hyper-parameters."""

    model: str
    recipe: Recipe
    data: Path
    out: Path
    split: Path | None = None
    resume: bool = False
    init: Path | None = None  # checkpoint whose weights start this run (fine-tuning)
    workers: int = 1
    threads: int | None = None
    seed: int = 0
    limit: int | None = None
    device: str | None = None
    bf16: bool = False  # bfloat16 autocast of the forward pass
    progress: bool = True
    plot_every: int = 1  # epochs between curve plots (the last epoch always plots)
    command: str = ""
    model_kwargs: dict = field(default_factory=dict)
    pretrained: bool = True  # load the ImageNet encoder weights of models that have them (not on resume/init)
    teacher: Path | None = None  # a trained trinary model to distil from
    distill_weight: float = 1.0
    temperature: float = 2.0
    pseudo: bool = False  # add the unlabelled test images with the teacher's labels


# ---------------------------------------------------------------- data


def split_names(part: str, split_dir: Path | None) -> list[str]:
    """Names of split `part`: from SPLIT_DIR/part.txt when given, else the packaged fixed split."""
    from polypview.inference.training.data import load_split

    if split_dir is None:
        return load_split(part)
    path = Path(split_dir) / f"{part}.txt"
    if not path.is_file():
        raise DataError(f"split list not found: {path} (the --split folder needs train.txt and val.txt)")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class IndexedView:
    """A dataset seen through a list of indices (oversampling without caching images twice)."""

    def __init__(self, base, indices: list[int]):
        self.base, self.indices = base, list(indices)

    @property
    def augment(self):
        """The base dataset's augmentation (DataLoader workers reseed it)."""
        return self.base.augment

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.base[self.indices[i]]


def build_datasets(opts: TrainOptions, spec):
    """(train view with oversampling, validation dataset), images decoded once and cached."""
    from polypview.inference.training.augment import SIZED_AUGMENTS, create_augment
    from polypview.inference.training.data import (
        SegmentationDataset,
        class_rows,
        neopolyp_pairs,
        oversample_non_neoplastic,
    )

    recipe = opts.recipe
    if not Path(opts.data).is_dir():
        raise DataError(f"dataset folder not found: {opts.data} (pass --data or set POLYPVIEW_DATA)")
    names = {p: split_names(p, opts.split)[: opts.limit] for p in ("train", "val")}
    pairs = {p: neopolyp_pairs(opts.data, names[p]) for p in names}
    if opts.pseudo:  # the unlabelled test images join the training set with the teacher's labels
        pseudo = pseudo_label_pairs(opts, opts.limit)
        names["train"] = names["train"] + [f"pseudo:{image.stem}" for image, _ in pseudo]
        pairs["train"] = pairs["train"] + pseudo
    norm = dict(mean=spec.mean, std=spec.std, color_order=spec.color_order)
    # Multi-scale batches are resized down from the largest scale, never up from a smaller one.
    train_size = max(recipe.scales())
    augment = create_augment(recipe.augment, opts.seed, size=train_size)
    # camera-like views (zoom up to 3x) are cut from images cached at twice the size, at their own aspect
    views = recipe.augment in SIZED_AUGMENTS
    train = SegmentationDataset(pairs["train"], train_size, augment, cache_size=2 * train_size if views else None,
                                keep_aspect=views, **norm)
    val = SegmentationDataset(pairs["val"], recipe.size, None, **norm)
    order = names["train"]
    rows = class_rows(opts.data, pairs["train"], order) if recipe.oversample > 1 or spec.head == "trinary" else {}
    if spec.head == "trinary" and not any(r.neoplastic_px or r.non_neoplastic_px for r in rows.values()):
        raise DataError(f"no training mask in {opts.data} holds a neoplastic or non-neoplastic pixel (binary polyp "
                        f"masks?): {opts.model}'s class head ignores polyps of unknown class (BlazeNeo's loss) and "
                        "would learn nothing to draw; train a binary model on them (nanonet-lite0, pretrained like the "
                        "default; nanonet-a, hardnet-mseg, resunetpp)")
    if recipe.oversample > 1:
        order = oversample_non_neoplastic(order, rows, recipe.oversample)
    position = {n: i for i, n in enumerate(names["train"])}
    return IndexedView(train, [position[n] for n in order]), val


# ---------------------------------------------------------------- validation


def validate(model, head: str, loader, loss_fn, device) -> dict:
    """Validation loss and micro Dice/IoU per class at the training resolution."""
    import torch

    from polypview.inference.training.metrics import ConfusionCounter

    counter, losses = ConfusionCounter(), []
    model.eval()
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            losses.append(float(loss_fn({"main": logits}, labels)[0]))
            for pred, truth in zip(labels_from_logits(head, logits), labels.cpu().numpy()):
                counter.update(pred, truth.astype("uint8"))
    model.train()
    result = counter.as_dict()["micro"]
    result["loss"] = sum(losses) / max(len(losses), 1)
    return result


# What best.pt is chosen by (validation split only). The non-neoplastic class counts: a model that never
# draws green must not win on polyp and neoplastic Dice alone (before 2026-12-03 it was their mean).
SELECTION = "mean of polyp, neoplastic and non-neoplastic validation Dice (polyp only for binary models)"


def score_of(val: dict) -> float:
    """Selection score: see SELECTION."""
    values = [val[c]["dice"] for c in ("polyp", "neoplastic", "non_neoplastic")
              if val.get(c, {}).get("dice") is not None]
    return sum(values) / len(values) if values else 0.0


# ---------------------------------------------------------------- the loop


def _seed_epoch(loader_gen, view, seed: int, epoch: int) -> None:
    """Sampler order, worker seeds and augmentation all follow from (seed, epoch)."""
    import torch

    torch.manual_seed(seed * 100_003 + epoch)
    loader_gen.manual_seed(seed * 100_003 + epoch)
    if view.augment is not None and hasattr(view.augment, "reseed"):
        view.augment.reseed([seed, epoch])


def _device(name: str | None):
    import torch

    if name:
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("--device cuda asked for, but no CUDA GPU is available")
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _data_description(opts: TrainOptions, train_len: int, val_len: int) -> str:
    if opts.split:  # another dataset's own split (`polypview split`), or another split of NeoPolyp-Small
        where = f"{Path(opts.data).name}, split lists {opts.split}"
    else:
        where = f"NeoPolyp-Small ({Path(opts.data).name}), packaged fixed split inference/splits/neopolyp_{{train,val,test}}.txt"
    text = (f"{where}; train {train_len} samples/epoch "
            f"(oversample x{opts.recipe.oversample}), val {val_len} images")
    if opts.pseudo:
        text += f"; plus the unlabelled test/ images with pseudo-labels of the teacher {opts.teacher}"
    if opts.teacher:
        text += f"; distilled from {opts.teacher} (weight {opts.distill_weight}, temperature {opts.temperature})"
    return text


def train(opts: TrainOptions) -> dict:
    """Run (or resume) a training; returns a summary dict."""
    import torch

    from polypview.inference.models import get_spec
    from polypview.inference.training.data import seed_worker
    from polypview.inference.training.losses import create_loss, loss_for_head

    recipe, spec = opts.recipe, get_spec(opts.model)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = _device(opts.device)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)

    train_view, val_set = build_datasets(opts, spec)
    train_view.base.preload(threads=max(1, torch.get_num_threads()))
    val_set.preload(threads=max(1, torch.get_num_threads()))
    gen = torch.Generator()
    loader = torch.utils.data.DataLoader(
        train_view, batch_size=recipe.batch, shuffle=True, drop_last=len(train_view) > recipe.batch,
        num_workers=opts.workers, worker_init_fn=seed_worker, generator=gen,
        pin_memory=device.type == "cuda")
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=recipe.batch, num_workers=0)

    torch.manual_seed(opts.seed)
    model = _build_model(opts, spec).to(device)
    loss_fn = create_loss(recipe.loss) if recipe.loss else loss_for_head(spec.head)
    optimizer = make_optimizer(recipe, model.parameters())
    scheduler = make_scheduler(recipe, optimizer, len(loader))
    state = {"epoch": 0, "history": [], "best_score": -1.0, "best_epoch": 0, "commands": [], "frozen_bn": False}
    if opts.resume:
        state = _resume(out / "last.pt", opts, model, optimizer, scheduler)
    elif opts.init:
        state["commands"], state["frozen_bn"] = _init_weights(opts.init, opts.model, model)
    if state.get("frozen_bn"):
        freeze_batchnorm(model)
    state["commands"] = [*state["commands"], opts.command]
    (out / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2))
    data_text = _data_description(opts, len(train_view), len(val_set))
    teacher = load_teacher(opts.teacher, device)[0] if opts.teacher else None
    stepper = Stepper(model, optimizer, loss_fn, recipe, bf16=opts.bf16, teacher=teacher,
                      distill_weight=opts.distill_weight, temperature=opts.temperature)

    for epoch in range(state["epoch"], recipe.epochs):
        _seed_epoch(gen, train_view, opts.seed, epoch)
        t0 = time.time()
        train_parts = _train_epoch(stepper, loader, scheduler, device, epoch, recipe, opts.progress)
        val = validate(model, spec.head, val_loader, loss_fn, device)
        if state.get("frozen_bn"):
            freeze_batchnorm(model)  # validate() put the whole model back in training mode
        if recipe.schedule == "plateau":
            scheduler.step(val["loss"])
        record = {"epoch": epoch + 1, "train": train_parts, "val": val,
                  "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.time() - t0, 1)}
        state["history"].append(record)
        score = score_of(val)
        improved = score > state["best_score"]
        if improved:
            state["best_score"], state["best_epoch"] = score, epoch + 1
        state["epoch"] = epoch + 1
        payload = _payload(opts, model, optimizer, scheduler, state, record, data_text)
        save_checkpoint(out / "last.pt", payload)
        if improved:
            save_checkpoint(out / "best.pt", payload)
        _write_history(out, state["history"], plot=(epoch + 1) % opts.plot_every == 0 or epoch + 1 == recipe.epochs)
        _log_epoch(record, score, improved)
    return {"epochs": state["epoch"], "best_score": state["best_score"], "best_epoch": state["best_epoch"],
            "history": state["history"]}


def _build_model(opts: TrainOptions, spec):
    from polypview.inference.models import create_model
    from polypview.inference.runtime.backend_torch import _builder_params

    kwargs = dict(opts.model_kwargs)
    fresh = not opts.resume and not opts.init
    if fresh and opts.pretrained and "pretrained" in _builder_params(spec.builder):
        kwargs["pretrained"] = True  # not stored in model_kwargs: rebuilding trained weights needs no package
    return create_model(opts.model, **kwargs).train()


def _train_epoch(stepper, loader, scheduler, device, epoch, recipe, progress) -> dict:
    """One pass over the training loader; returns the mean loss parts."""
    from tqdm import tqdm

    sums, count = {}, 0
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{recipe.epochs}", disable=not progress,
               dynamic_ncols=True, mininterval=5.0, file=sys.stderr)
    for images, labels in bar:
        total, parts = stepper(images.to(device, non_blocking=True), labels.to(device, non_blocking=True))
        if recipe.schedule != "plateau":
            scheduler.step()
        count += 1
        for k, v in {"total": total, **parts}.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix(loss=f"{total:.4f}", lr=f"{stepper.optimizer.param_groups[0]['lr']:.2e}")
    return {k: v / max(count, 1) for k, v in sums.items()}


def _payload(opts, model, optimizer, scheduler, state, record, data_text) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "model": opts.model,
        "model_kwargs": opts.model_kwargs,
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": state["epoch"],
        "history": state["history"],
        "best_score": state["best_score"],
        "best_epoch": state["best_epoch"],
        "selection": SELECTION,
        "rng": rng_state(),
        "recipe": opts.recipe.to_dict(),
        "seed": opts.seed,
        "command": opts.command,
        "commands": state["commands"],  # every invocation that built these weights (init runs, resumes)
        "frozen_bn": state["frozen_bn"],  # BatchNorms kept in eval mode (weights from a model file: folded)
        "init": str(opts.init) if opts.init else None,
        "training_data": data_text,
        "input_size": opts.recipe.size,
        "eval": {"split": "val", "size": opts.recipe.size, **record["val"]},
    }


def _resume(path: Path, opts, model, optimizer, scheduler) -> dict:
    """Restore model, optimizer, scheduler, RNG and curves from last.pt."""
    ckpt = load_checkpoint(path)
    if ckpt["model"] != opts.model:
        raise ConfigError(f"{path} holds a {ckpt['model']} run, not {opts.model}; use another --out")
    model.load_state_dict(ckpt["state_dict"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    set_rng_state(ckpt["rng"])
    if ckpt["epoch"] >= opts.recipe.epochs:
        print(f"{path}: already trained {ckpt['epoch']} of {opts.recipe.epochs} epochs", file=sys.stderr)
    state = {k: ckpt[k] for k in ("epoch", "history", "best_score", "best_epoch")}
    if state["history"]:  # the selection rule may have changed since: rescore the epochs so far
        scores = [score_of(h["val"]) for h in state["history"]]
        best = max(range(len(scores)), key=scores.__getitem__)
        state["best_score"], state["best_epoch"] = scores[best], state["history"][best]["epoch"]
    state["commands"] = list(ckpt.get("commands") or [ckpt.get("command", "")])
    state["frozen_bn"] = bool(ckpt.get("frozen_bn", False))
    return state


def _init_weights(path: Path, name: str, model) -> tuple[list[str], bool]:
    """Load another run's weights into `model`; returns the commands that trained them, and whether the
    BatchNorms must stay frozen (weights taken from a model file, whose BatchNorms are folded away).

    Besides a training checkpoint, `path` may be a shipped inference weights file
    (`polypview export --pt`: fp16, no auxiliary head) or a model file (.onnx); the auxiliary head then
    starts afresh.
    """
    if Path(path).suffix.lower() == ".onnx":
        return _init_from_model_file(Path(path), name, model), True
    ckpt = load_checkpoint(path, shipped_weights=True)
    held = ckpt.get("model", ckpt.get("architecture"))
    if held != name:
        raise ConfigError(f"--init {path} holds {held} weights, not {name}")
    _load_without_aux(model, ckpt["state_dict"], path, name)  # a blend or a shipped .pt has no aux head
    if "model" in ckpt:  # a run's checkpoint, or a `polypview blend`
        return list(ckpt.get("commands") or [ckpt.get("command", "")]), bool(ckpt.get("frozen_bn", False))
    # files written since 2026-12 carry the commands that trained them; older ones point to their card
    commands = list(ckpt.get("commands") or []) or [f"(weights of {path}: see its model card for how they were trained)"]
    return commands, False


def _load_without_aux(model, state: dict, path: Path, name: str) -> None:
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("aux.") for k in missing):
        raise ConfigError(f"--init {path} does not fit {name} (missing {missing[:3]}, unexpected {unexpected[:3]})")


def _init_from_model_file(path: Path, name: str, model) -> list[str]:
    """The weights of a model file (a shipped .onnx without a .pt), see `checkpoints.model_file_weights`."""
    info, state = model_file_weights(path, f"--init {path}", expected=name)
    _load_without_aux(model, state, path, name)
    return [f"(weights of {path}, version {info.version}: see its model card for how they were trained)"]


def freeze_batchnorm(model) -> None:
    """Keep every BatchNorm in eval mode (running statistics fixed; its scale and shift still train)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def _write_history(out: Path, history: list[dict], plot: bool = True) -> None:
    (out / "history.json").write_text(json.dumps(history, indent=1))
    if plot:
        plot_history(history, out / "curves.png")


def _log_epoch(record: dict, score: float, improved: bool) -> None:
    val = record["val"]
    fmt = lambda c: "n/a" if val[c]["dice"] is None else f"{val[c]['dice']:.3f}"  # noqa: E731
    print(f"epoch {record['epoch']}: loss {record['train']['total']:.4f} val loss {val['loss']:.4f} "
          f"Dice polyp {fmt('polyp')} neo {fmt('neoplastic')} non {fmt('non_neoplastic')} "
          f"score {score:.4f}{' (best)' if improved else ''} lr {record['lr']:.2e} {record['seconds']}s",
          file=sys.stderr, flush=True)
