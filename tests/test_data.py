"""Mask readers, the fixed split, oversampling and the cached dataset."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from polypview.errors import ConfigError, DataError
from polypview.inference.runtime.labels import BACKGROUND, LABEL_COLORS, NEOPLASTIC, NON_NEOPLASTIC, UNDEFINED
from polypview.inference.training import data

REPO = Path(__file__).resolve().parents[1]


def _label_grid() -> np.ndarray:
    """A 40x60 label map with one block of each label."""
    labels = np.full((40, 60), BACKGROUND, np.uint8)
    labels[4:20, 4:24] = NEOPLASTIC
    labels[4:20, 34:56] = NON_NEOPLASTIC
    labels[24:36, 10:50] = UNDEFINED
    return labels


def _write_rgb(path: Path, rgb: np.ndarray, *params) -> Path:
    """Write an RGB array with cv2 (which wants BGR)."""
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), list(params))
    return path


def test_png_mask_exact_colours(tmp_path):
    labels = _label_grid()
    rgb = LABEL_COLORS[labels].copy()
    rgb[26:30, 12:20] = (255, 255, 255)  # white "polyp without class" is undefined too
    got = data.read_neopolyp_mask(_write_rgb(tmp_path / "m.png", rgb))
    assert got.dtype == np.uint8 and got.shape == labels.shape
    np.testing.assert_array_equal(got, labels)


def test_noisy_jpeg_mask_thresholded(tmp_path):
    labels = np.full((96, 128), BACKGROUND, np.uint8)
    cv2.circle(labels, (40, 48), 25, NEOPLASTIC, -1)
    cv2.circle(labels, (95, 40), 20, NON_NEOPLASTIC, -1)
    path = _write_rgb(tmp_path / "m.jpg", LABEL_COLORS[labels], cv2.IMWRITE_JPEG_QUALITY, 70)
    raw = cv2.imread(str(path))[..., ::-1]
    exact = np.any([(raw == colour).all(-1) for colour in LABEL_COLORS[:3]], axis=0)
    assert not exact.all(), "the JPEG should carry noise, else this test checks nothing"
    got = data.read_neopolyp_mask(path)
    interior = cv2.erode((labels != BACKGROUND).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    np.testing.assert_array_equal(got[interior], labels[interior])
    assert (got == labels).mean() > 0.99


def test_raw_sample_jpeg_masks_match_train_pngs(neopolyp_dir):
    pairs = data.folder_pairs(neopolyp_dir / "raw_sample")
    assert len(pairs) == 11
    for _, mask_path in pairs:
        raw = data.read_neopolyp_mask(mask_path)
        png = data.read_neopolyp_mask(neopolyp_dir / "train" / "masks" / f"{mask_path.stem}.png")
        assert (data.resize_labels(raw, png.shape) == png).mean() > 0.995, mask_path.name


def test_kvasir_mask_maps_polyp_to_undefined(tmp_path):
    grey = np.zeros((32, 32), np.uint8)
    grey[8:24, 8:24] = 255
    path = tmp_path / "k.jpg"
    cv2.imwrite(str(path), cv2.merge([grey] * 3))
    got = data.read_kvasir_mask(path)
    assert set(np.unique(got)) == {BACKGROUND, UNDEFINED}
    assert got[16, 16] == UNDEFINED and got[0, 0] == BACKGROUND


def test_kvasir_sample_reads(kvasir_dir):
    for image_path, mask_path in data.folder_pairs(kvasir_dir):
        labels = data.read_kvasir_mask(mask_path)
        assert labels.shape == data.read_image(image_path).shape[:2]
        assert 0 < (labels == UNDEFINED).mean() < 1


def test_read_image_is_rgb(tmp_path):
    path = _write_rgb(tmp_path / "red.png", np.tile(np.uint8([250, 10, 20]), (4, 4, 1)))
    assert tuple(data.read_image(path)[0, 0]) == (250, 10, 20)


def test_missing_and_corrupt_files_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        data.read_image(tmp_path / "nope.jpg")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot decode"):
        data.read_neopolyp_mask(tmp_path / "bad.png")
    with pytest.raises(DataError, match="not found"):
        data.neopolyp_pairs(tmp_path / "absent", ["a"])
    with pytest.raises(DataError, match="images/ and masks/"):
        data.neopolyp_pairs(tmp_path, ["a"])


def _tiny_dataset_folder(root: Path, n: int = 3) -> list[str]:
    """Write n image/mask pairs (40x60) into root/images and root/masks; return their names."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = [f"img{i}" for i in range(n)]
    for i, name in enumerate(names):
        image = np.full((40, 60, 3), 30 * i + 40, np.uint8)
        _write_rgb(root / "images" / f"{name}.jpeg", image)
        _write_rgb(root / "masks" / f"{name}.png", LABEL_COLORS[_label_grid()])
    return names


def test_neopolyp_pairs_finds_files_and_reports_missing(tmp_path):
    names = _tiny_dataset_folder(tmp_path / "train")
    pairs = data.neopolyp_pairs(tmp_path, names)  # the parent of train/ works too
    assert [p[0].stem for p in pairs] == names and all(p[1].suffix == ".png" for p in pairs)
    with pytest.raises(DataError, match="1 of 2 names"):
        data.neopolyp_pairs(tmp_path / "train", ["img0", "ghost"])


def test_split_files_disjoint_and_sized():
    parts = {p: data.load_split(p) for p in data.SPLIT_PARTS}
    assert {p: len(v) for p, v in parts.items()} == {"train": 720, "val": 90, "test": 90}
    sets = [set(v) for v in parts.values()]
    assert sum(len(s) for s in sets) == len(set().union(*sets)) == 900
    with pytest.raises(ConfigError, match="train, val, test"):
        data.load_split("holdout")


def test_split_covers_manifest_and_is_stratified(neopolyp_dir):
    manifest = data.read_manifest(neopolyp_dir / "train" / "manifest.csv")
    parts = {p: data.load_split(p) for p in data.SPLIT_PARTS}
    assert set().union(*map(set, parts.values())) == set(manifest)
    totals = Counter(r.stratum for r in manifest.values())
    for part, names in parts.items():
        counts = Counter(manifest[n].stratum for n in names)
        share = len(names) / len(manifest)
        for stratum, total in totals.items():
            assert abs(counts[stratum] - total * share) <= 1, (part, stratum)


def test_make_split_regenerates_files_bit_for_bit(neopolyp_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("make_split", REPO / "tools" / "make_split.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    manifest = neopolyp_dir / "train" / "manifest.csv"
    assert module.main(["--manifest", str(manifest), "--out", str(tmp_path)]) == 0
    for part in data.SPLIT_PARTS:
        assert (tmp_path / f"neopolyp_{part}.txt").read_bytes() == data.split_file(part).read_bytes()


def _synthetic_manifest(n_neo: int, n_non: int, n_both: int) -> dict[str, data.ManifestRow]:
    """A manifest with the given stratum sizes."""
    rows = [(f"neo{i}", 10, 0) for i in range(n_neo)]
    rows += [(f"non{i}", 0, 10) for i in range(n_non)]
    rows += [(f"both{i}", 5, 5) for i in range(n_both)]
    return {name: data.ManifestRow(name, a, b) for name, a, b in rows}


def test_stratified_split_sizes_strata_and_seed():
    manifest = _synthetic_manifest(625, 231, 44)  # the strata of NeoPolyp-Small's 900
    parts = data.stratified_split(manifest, seed=0)
    assert {p: len(v) for p, v in parts.items()} == {"train": 720, "val": 90, "test": 90}
    assert Counter(manifest[n].stratum for n in parts["test"]) == {"only_neo": 63, "only_non": 23, "both": 4}
    assert data.stratified_split(manifest, seed=0) == parts
    assert data.stratified_split(manifest, seed=1)["test"] != parts["test"]


def test_oversample_non_neoplastic_counts():
    counts = {"a": 0, "b": 12, "c": 0, "d": 3}
    out = data.oversample_non_neoplastic(["a", "b", "c", "d"], counts, factor=5)
    assert Counter(out) == {"a": 1, "b": 5, "c": 1, "d": 5}
    with pytest.raises(DataError, match="not in the manifest"):
        data.oversample_non_neoplastic(["zzz"], counts)


def test_neounet_balancing_duplicates_only_non_until_pixels_balance():
    manifest = {
        "n1": data.ManifestRow("n1", 100, 0),
        "n2": data.ManifestRow("n2", 0, 30),
        "b1": data.ManifestRow("b1", 10, 5),
    }
    # neo 110; non 35 -> +30 -> 65 -> +30 -> 95 -> +30 -> 125 >= 110: three extra copies of n2
    out = data.balance_only_non_by_pixels(["n1", "n2", "b1"], manifest)
    assert Counter(out) == {"n1": 1, "n2": 4, "b1": 1}
    assert data.balance_only_non_by_pixels(["n1"], manifest) == ["n1"]  # nothing to duplicate


def test_oversample_on_manifest(neopolyp_dir):
    manifest_path = neopolyp_dir / "train" / "manifest.csv"
    names = list(data.read_manifest(manifest_path))
    # 625 images without non-neoplastic pixels once, 231 + 44 with them five times.
    assert len(data.oversample_non_neoplastic(names, manifest_path)) == 625 + 5 * (231 + 44)


def test_dataset_shapes_normalisation_and_cache(tmp_path):
    names = _tiny_dataset_folder(tmp_path)
    pairs = data.neopolyp_pairs(tmp_path, names)
    ds = data.SegmentationDataset(pairs * 2, 16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    ds.preload()
    assert len(ds) == 6 and ds.cached() == 3  # a repeated (oversampled) pair is decoded once
    for image_path, mask_path in pairs:  # served from memory from now on
        image_path.unlink()
        mask_path.unlink()
    assert all(ds[i][0].shape == (3, 16, 16) for i in range(len(ds)))
    image, label = ds[1]
    assert tuple(image.shape) == (3, 16, 16) and str(image.dtype) == "torch.float32"
    assert tuple(label.shape) == (16, 16) and str(label.dtype) == "torch.int64"
    expected = (70 / 255 - 0.5) / 0.25  # constant grey 70, tolerant of JPEG rounding
    assert abs(float(image.mean()) - expected) < 0.05
    assert set(label.unique().tolist()) == {NEOPLASTIC, NON_NEOPLASTIC, BACKGROUND, UNDEFINED}


def test_dataset_colour_order_and_augment_hook(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    _write_rgb(tmp_path / "images" / "x.png", np.tile(np.uint8([255, 0, 0]), (8, 8, 1)))
    _write_rgb(tmp_path / "masks" / "x.png", LABEL_COLORS[np.full((8, 8), NEOPLASTIC, np.uint8)])
    pairs = data.neopolyp_pairs(tmp_path, ["x"])
    zero, one = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    rgb, _ = data.SegmentationDataset(pairs, 8, mean=zero, std=one).sample(0)
    bgr, _ = data.SegmentationDataset(pairs, 8, mean=zero, std=one, color_order="BGR").sample(0)
    assert rgb[0].mean() == 1.0 and bgr[2].mean() == 1.0 and bgr[0].mean() == 0.0
    flip_labels = lambda image, label: (image, np.full_like(label, BACKGROUND))  # noqa: E731
    _, label = data.SegmentationDataset(pairs, 8, augment=flip_labels).sample(0)
    assert (label == BACKGROUND).all()
    with pytest.raises(ConfigError, match="color_order"):
        data.SegmentationDataset(pairs, 8, color_order="RGBA")


def test_mask_reader_registry():
    assert data.get_mask_reader("kvasir") is data.read_kvasir_mask
    with pytest.raises(ConfigError, match="neopolyp, kvasir"):
        data.get_mask_reader("pascal")


def test_seed_worker_gives_each_loader_worker_its_own_stream(tmp_path):
    torch = pytest.importorskip("torch")
    from polypview.inference.training.augment import Compose, ShiftScaleRotate

    names = ["img0"] * 2
    _tiny_dataset_folder(tmp_path, 1)
    pairs = data.neopolyp_pairs(tmp_path, names)

    def first_two(worker_init_fn):
        ds = data.SegmentationDataset(pairs, 16, augment=Compose([ShiftScaleRotate(p=1.0, rotate=45)], seed=0))
        loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, worker_init_fn=worker_init_fn)
        return [label for _, label in loader]

    same = first_two(None)  # both workers start from the same copied Generator
    assert torch.equal(same[0], same[1])
    own = first_two(data.seed_worker)
    assert not torch.equal(own[0], own[1])


def test_rescale_batch_keeps_labels_valid():
    torch = pytest.importorskip("torch")
    labels = torch.from_numpy(np.stack([_label_grid()[:, :40]] * 2).astype(np.int64))
    images = torch.rand(2, 3, 40, 40)
    for size in (32, 64):
        out_images, out_labels = data.rescale_batch(images, labels, size)
        assert tuple(out_images.shape) == (2, 3, size, size) and out_images.dtype == torch.float32
        assert tuple(out_labels.shape) == (2, size, size) and out_labels.dtype == torch.int64
        assert set(out_labels.unique().tolist()) == set(labels.unique().tolist())
    same_images, same_labels = data.rescale_batch(images, labels, 40)
    assert same_images is images and same_labels is labels
