"""`polypview split`: a fixed, seeded train/val/test split of any folder of images/ and masks/.

The packaged split (inference/splits/) names NeoPolyp-Small's images; another dataset needs its own
before `train` and `eval` can use it. The split is made as the packaged one was (data.stratified_split:
80/10/10 by default, stratified by the classes each image holds, the order from a hash of seed and name, so
the same folder and seed give the same lists everywhere) and is written once: an existing split is never
overwritten, since it fixes which images the test figures come from.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from polypview.errors import ConfigError, DataError
from polypview.inference.training.data import (
    SPLIT_FRACTIONS,
    SPLIT_PARTS,
    ManifestRow,
    class_rows,
    folder_pairs,
    stratified_split,
)

STRATUM_TEXT = {"none": "no class"}  # binary masks: a polyp, no class known


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="dataset folder holding images/ and masks/ (matched by file name)")
    parser.add_argument("-o", "--out", type=Path, required=True,
                        help="folder to write train.txt, val.txt and test.txt to (must not hold a split already)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the order within each stratum (default 0)")
    parser.add_argument("--fractions", default=",".join(f"{f:g}" for f in SPLIT_FRACTIONS),
                        help="train,val,test shares (default 0.8,0.1,0.1)")


def run(args) -> int:
    fractions = parse_fractions(args.fractions)
    existing = [args.out / f"{part}.txt" for part in SPLIT_PARTS if (args.out / f"{part}.txt").exists()]
    if existing:
        raise ConfigError(f"{existing[0]} exists: a split is fixed once made (choose another --out folder)")
    manifest = class_manifest(args.data)
    parts = stratified_split(manifest, seed=args.seed, fractions=fractions)
    empty = [part for part in SPLIT_PARTS if not parts[part]]
    if empty:
        raise DataError(f"{len(manifest)} image/mask pairs are too few for a {args.fractions} split: "
                        f"{empty[0]} would be empty")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for part in SPLIT_PARTS:
            (args.out / f"{part}.txt").write_text("".join(f"{name}\n" for name in parts[part]))
    except OSError as exc:
        raise ConfigError(f"cannot write the split to {args.out}: {exc.strerror or exc}") from None
    for part in SPLIT_PARTS:
        strata = Counter(manifest[name].stratum for name in parts[part])
        counts = "  ".join(f"{STRATUM_TEXT.get(k, k)} {v}" for k, v in sorted(strata.items()))
        print(f"{part:5s} {len(parts[part]):5d}  {counts}")
    print(f"wrote {args.out}/{{train,val,test}}.txt (seed {args.seed}); use it with\n"
          f"  polypview train --data {args.data} --split {args.out} ...\n"
          f"  polypview eval MODEL --data {args.data} --split {args.out / 'test.txt'}   # once, at the end")
    return 0


def parse_fractions(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' -> three positive shares summing to 1 (scaled); ConfigError otherwise."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) <= 0:
        raise ConfigError(f"--fractions {text!r}: give three positive shares train,val,test, e.g. 0.8,0.1,0.1")
    total = sum(values)
    return values[0] / total, values[1] / total, values[2] / total


def class_manifest(data: Path) -> dict[str, ManifestRow]:
    """name -> the classes' pixel counts of every image/mask pair of the folder (data.class_rows)."""
    pairs = folder_pairs(data)
    return class_rows(data, pairs, [image.stem for image, _ in pairs])
