#!/usr/bin/env bash
# Issue 4's GPU part in one device call: install polypview beside the image's CUDA PyTorch, run the
# CUDA tests, time the models alone (eager vs CUDA graph, fp16 vs fp32), then `polypview bench` at
# 1080p60 on the torch CUDA backend for BlazeNeo-DHA at 352x352 and for the CPU default (on torch: its
# float weights from the .pt, not the int8 ONNX file).
#
#   here, once:       tools/gpu_pack.sh                       (PyAV for the GPU image, into .gpu/)
#   on the device:    run(command="bash tools/gpu_check.sh", carry=[".gpu"], timeout_s=540)
#   dry run here:     QUICK=1 DEVICE=cpu OUT=/tmp/gpu-dry bash tools/gpu_check.sh
#
# Writes at most 8 files to $OUT (what the device tool brings back). Takes about 4 minutes on an H200.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/polypview-gpu}
DEVICE=${DEVICE:-cuda}
SITE=${SITE:-/tmp/polypview-site}
mkdir -p "$OUT" "$SITE"
export PYTHONPATH="$SITE" PYTHONUNBUFFERED=1 PATH="$SITE/bin:$PATH"
quick=(); seconds=10; calls=300
if [ -n "${QUICK:-}" ]; then quick=(--quick); seconds=2; calls=5; fi

{
  date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  python3 -c "import torch, numpy, cv2, onnxruntime; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'opencv', cv2.__version__, 'onnxruntime', onnxruntime.__version__)"
  if ! python3 -c "import av" 2>/dev/null; then
    tar -xJf .gpu/av.tar.xz -C "$SITE" || { echo "no PyAV: run tools/gpu_pack.sh here and carry .gpu"; exit 2; }
  fi
  python3 -c "import av; print('av', av.__version__)"
  python3 -m pip install -q --no-deps --no-build-isolation --no-index --target "$SITE" . || exit 2
} > "$OUT/env.txt" 2>&1 || { cat "$OUT/env.txt"; exit 2; }
cat "$OUT/env.txt"

echo "== CUDA tests"
python3 -m pytest -q -p no:cacheprovider tests/test_runtime.py -k "torch or cuda or input_size" 2>&1 | tee "$OUT/pytest.txt" | tail -3

echo "== models alone"
python3 tools/gpu_model_time.py --device "$DEVICE" --calls "$calls" --json "$OUT/model-times.json" 2>&1 | tee "$OUT/model-times.txt"

bench() {  # name, then polypview bench options
  local name=$1; shift
  echo "== bench $name"
  polypview bench --backend torch --sizes 1080p --fps 60 --seconds "$seconds" --no-gui "${quick[@]}" "$@" \
      --json "$OUT/bench-$name.json" > "$OUT/bench-$name.txt" 2>&1
  grep -E "^(model|  (pass|FAIL|n/a) )" "$OUT/bench-$name.txt" || tail -5 "$OUT/bench-$name.txt"
}
bench gpu-blazeneo-dha-352-1080p60 --model blazeneo-dha --input-size 352
bench gpu-default-1080p60  # the CPU default, nanonet-lite0-neo (its .pt weights at 320 px)
ls -la "$OUT"
