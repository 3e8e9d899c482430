#!/usr/bin/env bash
# Pack PyAV for the GPU machine's Python (3.12; its image has torch, numpy, OpenCV, onnx and
# onnxruntime but no PyAV) into .gpu/av.tar.xz, which tools/gpu_check.sh unpacks there.
# The wheel itself (36 MB) plus the repository (37 MB) would pass the 64 MiB a device call carries;
# xz makes it about 25 MB. Run here, once: tools/gpu_pack.sh   (needs the package index)
set -euo pipefail
cd "$(dirname "$0")/.."
AV_VERSION=${AV_VERSION:-$(python3 -c "import av; print(av.__version__)")}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$tmp/whl" "av==$AV_VERSION"
mkdir -p "$tmp/site" .gpu
python3 -m zipfile -e "$tmp"/whl/av-*.whl "$tmp/site"
tar -C "$tmp/site" -cf - . | xz -9 -T0 > .gpu/av.tar.xz
echo "wrote .gpu/av.tar.xz ($(du -h .gpu/av.tar.xz | cut -f1), av $AV_VERSION)"
