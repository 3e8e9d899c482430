#!/usr/bin/env python3
"""Regenerate polypview's fixed NeoPolyp-Small split (inference/splits/neopolyp_{train,val,test}.txt).

Seeded (seed 0), 80/10/10, stratified by the classes each image holds (only neoplastic, only
non-neoplastic, both), from the pixel counts of train/manifest.csv. The order within a stratum
comes from a SHA-256 hash of "seed:name", so the files are the same bit for bit everywhere.

    python3 tools/make_split.py [--manifest ../shared/data/neopolyp_small/train/manifest.csv]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from polypview.errors import PolypviewError
from polypview.inference.training.data import SPLIT_PARTS, read_manifest, stratified_split

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = REPO.parent / "shared" / "data" / "neopolyp_small" / "train" / "manifest.csv"
DEFAULT_OUT = REPO / "inference" / "splits"


def write_split(parts: dict[str, list[str]], out: Path) -> None:
    """Write one neopolyp_{part}.txt per part, one name a line."""
    out.mkdir(parents=True, exist_ok=True)
    for part in SPLIT_PARTS:
        (out / f"neopolyp_{part}.txt").write_text("".join(f"{n}\n" for n in parts[part]))


def main(argv: list[str] | None = None) -> int:
    """Read the manifest, split, write the lists and print the strata per part."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        manifest = read_manifest(args.manifest)
    except PolypviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    parts = stratified_split(manifest, seed=args.seed)
    write_split(parts, args.out)
    for part in SPLIT_PARTS:
        strata = Counter(manifest[n].stratum for n in parts[part])
        print(f"{part:5s} {len(parts[part]):4d}  " + "  ".join(f"{k} {v}" for k, v in sorted(strata.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
