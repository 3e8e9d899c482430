"""`polypview split`: a fixed, seeded, stratified split of any images/ + masks/ folder, written once."""

import cv2
import numpy as np
import pytest

from polypview.cli import main


def _dataset(root, classes):
    """One 16x16 pair per entry of `classes` ("neo", "non", "both" or "binary"), named img00, img01, ..."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    colours = {"neo": [(0, 0, 255)], "non": [(0, 255, 0)], "both": [(0, 0, 255), (0, 255, 0)],
               "binary": [(255, 255, 255)]}  # BGR
    for i, kind in enumerate(classes):
        mask = np.zeros((16, 16, 3), np.uint8)
        for j, bgr in enumerate(colours[kind]):
            mask[2 + 6 * j:6 + 6 * j, 4:10] = bgr
        cv2.imwrite(str(root / "images" / f"img{i:02d}.png"), np.full((16, 16, 3), 60 + i, np.uint8))
        cv2.imwrite(str(root / "masks" / f"img{i:02d}.png"), mask)
    return root


def _lists(folder):
    return {part: (folder / f"{part}.txt").read_text().split() for part in ("train", "val", "test")}


def test_split_partitions_every_pair_stratified_and_repeats_with_its_seed(tmp_path, capsys):
    data = _dataset(tmp_path / "data", ["neo"] * 10 + ["non"] * 10)
    assert main(["split", str(data), "-o", str(tmp_path / "a")]) == 0
    parts = _lists(tmp_path / "a")
    assert sorted(sum(parts.values(), [])) == [f"img{i:02d}" for i in range(20)]  # each pair once
    assert [len(parts[p]) for p in ("train", "val", "test")] == [16, 2, 2]
    for part in ("val", "test"):  # one of each class in each: stratified
        assert sum(int(n[3:]) < 10 for n in parts[part]) == 1
    out = capsys.readouterr().out
    assert "only_neo 8  only_non 8" in out and f"--split {tmp_path / 'a' / 'test.txt'}" in out
    assert main(["split", str(data), "-o", str(tmp_path / "b")]) == 0
    assert _lists(tmp_path / "b") == parts  # the same split again
    assert main(["split", str(data), "-o", str(tmp_path / "c"), "--seed", "1"]) == 0
    assert _lists(tmp_path / "c") != parts


def test_binary_masks_split_in_one_stratum_and_feed_eval(tmp_path, capsys):
    from polypview.inference.training.data import folder_pairs

    data = _dataset(tmp_path / "data", ["binary"] * 5)
    assert main(["split", str(data), "-o", str(tmp_path / "s"), "--fractions", "3,1,1"]) == 0
    assert "no class 3" in capsys.readouterr().out
    parts = _lists(tmp_path / "s")
    assert [len(parts[p]) for p in ("train", "val", "test")] == [3, 1, 1]
    assert {p.stem for p, _ in folder_pairs(data)} == set(sum(parts.values(), []))


@pytest.mark.parametrize("argv, message", [
    (["--fractions", "0.8,0.2"], "three positive shares"),
    (["--fractions", "a,b,c"], "three positive shares"),
    ([], "too few for a 0.8,0.1,0.1 split"),  # 5 pairs: val and test would be empty
])
def test_bad_split_requests_get_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    data = _dataset(tmp_path / "data", ["neo"] * 5)
    code = main(["split", str(data), "-o", str(tmp_path / "s"), *argv])
    err = capsys.readouterr().err
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s" / "train.txt").exists()


def test_an_existing_split_is_never_overwritten(tmp_path, capsys):
    data = _dataset(tmp_path / "data", ["neo"] * 10)
    assert main(["split", str(data), "-o", str(tmp_path / "s")]) == 0
    before = _lists(tmp_path / "s")
    assert main(["split", str(data), "-o", str(tmp_path / "s"), "--seed", "3"]) != 0
    assert "a split is fixed once made" in capsys.readouterr().err
    assert _lists(tmp_path / "s") == before


def test_a_missing_dataset_folder_gets_one_line(tmp_path, capsys):
    assert main(["split", str(tmp_path / "nowhere"), "-o", str(tmp_path / "s")]) != 0
    assert "dataset folder not found" in capsys.readouterr().err


def test_neopolyp_small_gives_the_packaged_split(neopolyp_dir, tmp_path):
    from polypview.inference.training.data import load_split

    assert main(["split", str(neopolyp_dir), "-o", str(tmp_path / "s")]) == 0
    assert _lists(tmp_path / "s") == {part: load_split(part) for part in ("train", "val", "test")}


def test_train_on_other_names_points_to_split(tmp_path):
    from polypview.errors import DataError
    from polypview.inference.training.data import neopolyp_pairs

    data = _dataset(tmp_path / "data", ["neo"] * 3)
    with pytest.raises(DataError, match="polypview split DIR -o SPLIT"):
        neopolyp_pairs(data, ["0081835cf877e004e8bfb905b78a9139"])
