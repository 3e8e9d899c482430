"""Datasets for training and evaluation: mask readers, the fixed NeoPolyp split, a cached Dataset.

Label maps follow ``polypview.inference.runtime.labels`` (0 neo, 1 non, 2 background, 3 undefined).
numpy and cv2 only at import time: torch is imported inside ``SegmentationDataset`` when a
sample is built, so the viewer's runtime path never pulls it in.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from polypview.errors import ConfigError, DataError
from polypview.inference.runtime.labels import BACKGROUND, NEOPLASTIC, NON_NEOPLASTIC, UNDEFINED
from polypview.inference.runtime.modelfile import IMAGENET_MEAN, IMAGENET_STD

SPLIT_PARTS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
STRATA = ("only_neo", "only_non", "both", "none")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".tif", ".tiff")
CHANNEL_THRESHOLD = 127  # "on" means > 127: survives JPEG noise at mask edges

Pair = tuple[Path, Path]
REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The shared data folder: $POLYPVIEW_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("POLYPVIEW_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def neopolyp_dir() -> Path:
    """NeoPolyp-Small in the shared data folder ($POLYPVIEW_DATA may also name the dataset itself)."""
    root = shared_data_dir()
    nested = root / "neopolyp_small"
    return nested if nested.is_dir() or not os.environ.get("POLYPVIEW_DATA") else root


# ---------------------------------------------------------------- readers


def _imread(path: str | Path, flags: int) -> np.ndarray:
    """cv2.imread that raises DataError instead of returning None."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path} (check the dataset folder)")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DataError(f"cannot decode image {path} (corrupt or not an image file)")
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3)."""
    return cv2.cvtColor(_imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def labels_from_rgb_mask(rgb: np.ndarray) -> np.ndarray:
    """NeoPolyp colour mask (RGB) -> label map by per-channel thresholds (blue is not used).

    R and G on -> undefined (yellow, white); G only -> non-neoplastic; R only -> neoplastic;
    otherwise background. Thresholds rather than exact colours, so JPEG masks read correctly.
    """
    red = rgb[..., 0] > CHANNEL_THRESHOLD
    green = rgb[..., 1] > CHANNEL_THRESHOLD
    labels = np.full(rgb.shape[:2], BACKGROUND, dtype=np.uint8)
    labels[red & ~green] = NEOPLASTIC
    labels[green & ~red] = NON_NEOPLASTIC
    labels[red & green] = UNDEFINED
    return labels


def read_neopolyp_mask(path: str | Path) -> np.ndarray:
    """Read a NeoPolyp mask (exact-colour PNG or original noisy JPEG) as a uint8 label map."""
    bgr = _imread(path, cv2.IMREAD_COLOR)
    return labels_from_rgb_mask(bgr[..., ::-1])


def read_kvasir_mask(path: str | Path) -> np.ndarray:
    """Read a binary polyp mask (white > 127 = polyp) as a label map: polyp -> UNDEFINED (3).

    A binary dataset knows a polyp but not its class, which is exactly what "undefined" means,
    so one label map serves both kinds of model: binary losses and the polyp metric use
    ``label != BACKGROUND``; class losses and class metrics ignore these pixels.
    """
    grey = _imread(path, cv2.IMREAD_GRAYSCALE)
    return np.where(grey > CHANNEL_THRESHOLD, UNDEFINED, BACKGROUND).astype(np.uint8)


MASK_READERS: dict[str, Callable[[str | Path], np.ndarray]] = {
    "neopolyp": read_neopolyp_mask,
    "kvasir": read_kvasir_mask,
}


def get_mask_reader(name: str) -> Callable[[str | Path], np.ndarray]:
    """Mask reader by name; an unknown name lists the valid ones."""
    try:
        return MASK_READERS[name]
    except KeyError:
        raise ConfigError(f"unknown mask format {name!r}; valid: {', '.join(MASK_READERS)}") from None


# ---------------------------------------------------------------- resizing


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an image to (height, width): area when shrinking, bilinear when enlarging."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h * w < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label map to (height, width) with nearest neighbour (no invented labels)."""
    h, w = size
    if labels.shape[:2] == (h, w):
        return labels
    return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)


# ---------------------------------------------------------------- manifest and split


@dataclass(frozen=True)
class ManifestRow:
    """One line of NeoPolyp-Small's manifest.csv (pixel counts at the stored size)."""

    name: str
    neoplastic_px: int
    non_neoplastic_px: int

    @property
    def stratum(self) -> str:
        """Which classes the image holds: only_neo, only_non, both or none."""
        return stratum_of(self.neoplastic_px, self.non_neoplastic_px)


def stratum_of(neoplastic_px: int, non_neoplastic_px: int) -> str:
    """Stratum name from the two class pixel counts."""
    neo, non = neoplastic_px > 0, non_neoplastic_px > 0
    return {(True, False): "only_neo", (False, True): "only_non", (True, True): "both"}.get(
        (neo, non), "none"
    )


def read_manifest(path: str | Path) -> dict[str, ManifestRow]:
    """Read manifest.csv (name, ..., neoplastic_px, non_neoplastic_px) keyed by name."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise DataError(f"manifest not found: {path} (expected NeoPolyp-Small's train/manifest.csv)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        return {
            r["name"]: ManifestRow(r["name"], int(r["neoplastic_px"]), int(r["non_neoplastic_px"]))
            for r in rows
        }
    except (KeyError, ValueError) as exc:
        raise DataError(f"malformed manifest {path}: {exc} (need name, neoplastic_px, non_neoplastic_px)") from None


def _apportion(counts: Sequence[int], total: int) -> list[int]:
    """Split `total` over groups in proportion to `counts` (largest remainder, ties by index)."""
    grand = sum(counts)
    exact = [c * total / grand for c in counts]
    shares = [int(e) for e in exact]
    by_remainder = sorted(range(len(counts)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _seeded_order(names: Iterable[str], seed: int) -> list[str]:
    """Shuffle by a hash of (seed, name): the same on every platform and numpy version."""
    return sorted(names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())


def stratified_split(
    manifest: Mapping[str, ManifestRow],
    seed: int = 0,
    fractions: Sequence[float] = SPLIT_FRACTIONS,
) -> dict[str, list[str]]:
    """Seeded split into train/val/test, stratified by the classes each image holds.

    Part sizes are the rounded fractions of the whole set (900 -> 720/90/90); each stratum
    gets its largest-remainder share of val and test. Names in each part are sorted.
    """
    n = len(manifest)
    n_val, n_test = round(n * fractions[1]), round(n * fractions[2])
    strata = {s: [r.name for r in manifest.values() if r.stratum == s] for s in STRATA}
    strata = {s: names for s, names in strata.items() if names}
    sizes = [len(v) for v in strata.values()]
    val_shares, test_shares = _apportion(sizes, n_val), _apportion(sizes, n_test)
    parts: dict[str, list[str]] = {p: [] for p in SPLIT_PARTS}
    for names, n_v, n_t in zip(strata.values(), val_shares, test_shares):
        order = _seeded_order(names, seed)
        parts["test"] += order[:n_t]
        parts["val"] += order[n_t : n_t + n_v]
        parts["train"] += order[n_t + n_v :]
    return {p: sorted(v) for p, v in parts.items()}


def split_file(part: str) -> Path:
    """Path of the packaged split list for `part` (train, val or test)."""
    if part not in SPLIT_PARTS:
        raise ConfigError(f"unknown split part {part!r}; valid: {', '.join(SPLIT_PARTS)}")
    return Path(str(resources.files("polypview.inference") / "splits" / f"neopolyp_{part}.txt"))


def load_split(part: str) -> list[str]:
    """Names of the fixed NeoPolyp-Small split `part` (train, val or test)."""
    path = split_file(part)
    if not path.is_file():
        raise DataError(f"split list missing: {path} (regenerate it with tools/make_split.py)")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------- pairs


def _index_folder(folder: Path) -> dict[str, Path]:
    """Map file stem -> path for the image files of a folder."""
    if not folder.is_dir():
        raise DataError(f"folder not found: {folder} (check the dataset path)")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def dataset_folder(root: str | Path) -> Path:
    """The folder holding images/ and masks/: `root` itself, or `root`/train for NeoPolyp-Small."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root} (pass the folder holding images/ and masks/)")
    for candidate in (root, root / "train"):
        if (candidate / "images").is_dir() and (candidate / "masks").is_dir():
            return candidate
    raise DataError(f"{root} has no images/ and masks/ folders (pass a folder holding both, such as "
                    "NeoPolyp-Small's train/ or Kvasir-SEG's)")


def neopolyp_pairs(root: str | Path, names: Iterable[str]) -> list[Pair]:
    """(image, mask) paths for `names` under `root` (NeoPolyp-Small, its train/ or raw_sample/)."""
    folder = dataset_folder(root)
    images, masks = _index_folder(folder / "images"), _index_folder(folder / "masks")
    names = list(names)
    missing = [n for n in names if n not in images or n not in masks]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(names)} names have no image/mask pair in {folder} "
            f"(first: {missing[0]}); is this the right dataset folder? For another dataset than NeoPolyp-Small, "
            "`polypview split DIR -o SPLIT` makes its split: then --split SPLIT to train, --split SPLIT/test.txt to eval"
        )
    return [(images[n], masks[n]) for n in names]


def folder_pairs(root: str | Path) -> list[Pair]:
    """Every (image, mask) pair of a folder with images/ and masks/ matched by file stem."""
    folder = dataset_folder(root)
    images, masks = _index_folder(folder / "images"), _index_folder(folder / "masks")
    names = sorted(set(images) & set(masks))
    if not names:
        raise DataError(f"no image/mask pairs with matching names in {folder}")
    return [(images[n], masks[n]) for n in names]


def class_rows(data: str | Path, pairs: Sequence[Pair], names: Sequence[str]) -> dict[str, ManifestRow]:
    """name -> the two classes' pixel counts of each (image, mask) pair: from the dataset's manifest.csv when
    it lists every name (NeoPolyp-Small), else counted in the masks (binary masks: no class pixel)."""
    from polypview.inference.runtime.labels import NEOPLASTIC, NON_NEOPLASTIC

    listed = dataset_folder(data) / "manifest.csv"
    if listed.is_file():
        rows = read_manifest(listed)
        if all(name in rows for name in names):
            return {name: rows[name] for name in names}
    counted = {}
    for name, (_, mask) in zip(names, pairs):
        labels = read_neopolyp_mask(mask)
        counted[name] = ManifestRow(name, int((labels == NEOPLASTIC).sum()), int((labels == NON_NEOPLASTIC).sum()))
    return counted


# ---------------------------------------------------------------- class balancing


def _non_neoplastic_counts(manifest_or_labels) -> Mapping[str, int]:
    """name -> non-neoplastic pixel count from a manifest path, manifest dict or count dict."""
    if isinstance(manifest_or_labels, (str, Path)):
        manifest_or_labels = read_manifest(manifest_or_labels)
    return {
        name: value.non_neoplastic_px if isinstance(value, ManifestRow) else int(value)
        for name, value in manifest_or_labels.items()
    }


def oversample_non_neoplastic(names: Sequence[str], manifest_or_labels, factor: int = 5) -> list[str]:
    """BlazeNeo 2022 balancing: images without non-neoplastic pixels once, the others `factor` times.

    `manifest_or_labels` is a manifest.csv path, ``read_manifest``'s dict, or name -> count.
    """
    counts = _non_neoplastic_counts(manifest_or_labels)
    unknown = [n for n in names if n not in counts]
    if unknown:
        raise DataError(f"{len(unknown)} names are not in the manifest (first: {unknown[0]})")
    out: list[str] = []
    for name in names:
        out += [name] * (factor if counts[name] > 0 else 1)
    return out


def balance_only_non_by_pixels(names: Sequence[str], manifest: Mapping[str, ManifestRow]) -> list[str]:
    """NeoUNet balancing: append copies of the only-non-neoplastic images until non px >= neo px."""
    rows = [manifest[n] for n in names]
    only_non = [r for r in rows if r.stratum == "only_non"]
    neo = sum(r.neoplastic_px for r in rows)
    non = sum(r.non_neoplastic_px for r in rows)
    extra = sum(r.non_neoplastic_px for r in only_non)
    out = list(names)
    while non < neo and extra > 0:
        out += [r.name for r in only_non]
        non += extra
    return out


# ---------------------------------------------------------------- dataset


def normalise(image: np.ndarray, mean, std, color_order: str = "RGB") -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (3, H, W): /255, channel order, then (x - mean) / std."""
    if color_order not in ("RGB", "BGR"):
        raise ConfigError(f"unknown color_order {color_order!r}; valid: RGB, BGR")
    if color_order == "BGR":
        image = image[..., ::-1]
    x = image.astype(np.float32) * np.float32(1 / 255)
    x -= np.asarray(mean, dtype=np.float32)
    x /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


class SegmentationDataset:
    """Map-style dataset of (image float32 (3, S, S), label int64 (S, S)) torch tensors.

    Decoded images and masks are cached in memory, already resized to `cache_size`
    (default: `size`; with `keep_aspect` the longer side, for augmentations that crop views at
    the image's own aspect), because decoding 768 px JPEGs every epoch dominates CPU training.
    `augment(image, label) -> (image, label)` works on uint8 RGB / uint8 labels at the cache
    size; the sample is then resized to `size`. It is a plain class (DataLoader only needs
    __len__ and __getitem__), so importing this module does not import torch.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        size: int,
        augment: Callable | None = None,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        color_order: str = "RGB",
        mask_reader: Callable[[str | Path], np.ndarray] = read_neopolyp_mask,
        cache: bool = True,
        cache_size: int | None = None,
        keep_aspect: bool = False,
    ) -> None:
        if not pairs:
            raise DataError("no image/mask pairs given to the dataset")
        self.pairs = list(pairs)
        self.size = int(size)
        self.cache_size = int(cache_size or size)
        self.keep_aspect = keep_aspect  # cache with the longer side at cache_size, the image's own aspect
        self.augment = augment
        self.mean, self.std, self.color_order = mean, std, color_order
        self.mask_reader = mask_reader
        self.cache = cache
        # Keyed by the file pair, so an oversampled list decodes and stores each image once.
        self._cache: dict[Pair, tuple[np.ndarray, np.ndarray]] = {}
        normalise(np.zeros((1, 1, 3), np.uint8), mean, std, color_order)  # validate early

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Decoded (RGB uint8, label uint8) at the cache size, from the cache when possible."""
        key = self.pairs[index]
        if key in self._cache:
            return self._cache[key]
        image, label = read_image(key[0]), self.mask_reader(key[1])
        side = (self.cache_size, self.cache_size)
        if self.keep_aspect:
            scale = self.cache_size / max(image.shape[:2])
            side = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
        sample = resize_image(image, side), resize_labels(label, side)
        if self.cache:
            self._cache[key] = sample
        return sample

    def preload(self, threads: int = 2) -> None:
        """Decode every sample now (cv2 releases the GIL, so threads help); before forking workers."""
        first = {pair: i for i, pair in reversed(list(enumerate(self.pairs)))}
        todo = [i for pair, i in first.items() if pair not in self._cache]
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            list(pool.map(self.load, todo))

    def cached(self) -> int:
        """How many distinct image/mask pairs are held in memory."""
        return len(self._cache)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Augmented (float32 (3, S, S) normalised image, int64 (S, S) label) as numpy arrays."""
        image, label = self.load(index)
        if self.augment is not None:
            image, label = self.augment(image, label)
        side = (self.size, self.size)
        image, label = resize_image(image, side), resize_labels(label, side)
        return normalise(image, self.mean, self.std, self.color_order), label.astype(np.int64)

    def __getitem__(self, index: int):
        import torch

        image, label = self.sample(index)
        return torch.from_numpy(image), torch.from_numpy(label)


def rescale_batch(images, labels, size: int, image_mode: str = "bilinear"):
    """Multi-scale training: a batch (N,3,H,W) float and (N,H,W) int64 resized to size x size.

    Labels use nearest (no invented classes). BlazeNeo resized images with nearest too;
    ``image_mode="nearest"`` reproduces that.
    """
    import torch.nn.functional as F

    if images.shape[-2:] == (size, size):
        return images, labels
    align = {"align_corners": False} if image_mode in ("bilinear", "bicubic") else {}
    images = F.interpolate(images, size=(size, size), mode=image_mode, **align)
    labels = F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    return images, labels


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: give each worker's augmentation its own seed (else all repeat)."""
    import torch

    info = torch.utils.data.get_worker_info()
    augment = getattr(info.dataset, "augment", None) if info is not None else None
    if augment is not None and hasattr(augment, "reseed"):
        augment.reseed(info.seed)
