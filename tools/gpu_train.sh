#!/usr/bin/env bash
# Train on the GPU machine, three runs side by side on one GPU, and bring back their best weights.
#
#   here, once:     python tools/gpu_train_prepare.py      (576 px images and trimmed weights into .gpu/)
#   on the device:  run(command="bash tools/gpu_train.sh", carry=[".gpu"], timeout_s=600)
#   then, warm:     run(command="RESUME=1 LIMIT=230 bash tools/gpu_train.sh", timeout_s=290)
#   dry run here:   DEVICE=cpu LIMIT=300 EXTRA="--limit 16" EPOCHS_BIG=1 EPOCHS_SMALL=1 OUT=/tmp/gt bash tools/gpu_train.sh
#   other seeds:    RUNS="A" SEED=1 EPOCHS_BIG=62 bash tools/gpu_train.sh   (one run alone has every core: faster epochs)
#
# The runs: A blazeneo-lite2-neo at 352 px; B the same with the per-polyp class loss; C nanonet-lite0-neo
# at 256 px. Epoch counts follow the augmentation cost measured there, so that the runs end inside LIMIT
# seconds (a run cut by the limit keeps its best.pt and last.pt: RESUME=1 continues them on the warm
# machine). Back in $OUT (at most 8 files of 16 MiB): each run's best.pt (and last.pt after a resume)
# without optimizer state, in 15 MiB pieces (cat them together), and logs.tar with the logs, histories
# and curves. 2026-12-04: epochs took 8-12 s with the three runs sharing 16 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/polypview-train}; WORK=${WORK:-/tmp/polypview-runs}; SITE=${SITE:-/tmp/polypview-site}
DEVICE=${DEVICE:-cuda}; LIMIT=${LIMIT:-480}; EXTRA=${EXTRA:-}
DATA=$PWD/.gpu/data/neopolyp_small
[ -d "$DATA" ] && [ -d .gpu/site ] || { echo "no .gpu/data or .gpu/site: run tools/gpu_train_prepare.py here and carry .gpu"; exit 2; }
mkdir -p "$OUT" "$SITE" "$WORK"
export PYTHONPATH="$SITE:$PWD/.gpu/site" PYTHONUNBUFFERED=1 PATH="$SITE/bin:$PATH"
python3 -c "import polypview" 2>/dev/null || python3 -m pip install -q --no-deps --no-build-isolation --no-index --target "$SITE" . || exit 2
nvidia-smi -L 2>&1 | head -1; echo "cores $(nproc)"
python3 -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'opencv', cv2.__version__, 'numpy', numpy.__version__)"

read -r -a runs <<< "${RUNS:-A B C}"
if [ -n "${RESUME:-}" ]; then
    read -r -a runs <<< "${RUNS:-A C}"; resume=(--resume); read -r big small < "$WORK/epochs"
else
    rm -rf "${WORK:?}"/*; resume=()
    # ms per training sample on one core, at 352 and 256 px (preloaded images, camera-like views)
    read -r ms352 ms256 < <(python3 - "$DATA" <<'PY'
import sys, time
from pathlib import Path
from polypview.inference.models import get_spec
from polypview.inference.training.recipes import resolve_recipe
from polypview.inference.training.train import TrainOptions, build_datasets
costs = []
for model, size in (("blazeneo-lite2-neo", 352), ("nanonet-lite0-neo", 256)):
    recipe = resolve_recipe(model, None, {"size": size})
    options = TrainOptions(model=model, recipe=recipe, data=Path(sys.argv[1]), out=Path("/tmp/unused"), limit=40)
    train_view, _ = build_datasets(options, get_spec(model))
    train_view.base.preload(threads=4)
    start = time.time()
    for i in range(80):
        train_view[i % len(train_view)]
    costs.append(f"{(time.time() - start) / 80 * 1000:.1f}")
print(*costs)
PY
)
    # about 941 samples an epoch over 4 workers, 1.4x for three runs sharing the cores, plus fixed seconds
    big=${EPOCHS_BIG:-$(python3 -c "print(max(20, min(80, int(($LIMIT - 60) / (941 * $ms352 / 4000 * 1.4 + 3)))))")}
    small=${EPOCHS_SMALL:-$(python3 -c "print(max(30, min(120, int(($LIMIT - 60) / (941 * $ms256 / 4000 * 1.4 + 2.5)))))")}
    echo "$big $small" > "$WORK/epochs"
    echo "ms per sample: 352 px $ms352, 256 px $ms256 -> epochs $big (352 px), $small (256 px)"
fi

common=(--device "$DEVICE" --data "$DATA" --no-progress --workers 4 --seed "${SEED:-0}" "${resume[@]}")
for run in "${runs[@]}"; do
    case $run in
        A) args=(--model blazeneo-lite2-neo --size 352 --batch 16 --epochs "$big") ;;
        B) args=(--model blazeneo-lite2-neo --size 352 --batch 16 --epochs "$big" --loss blazeneo_regions) ;;
        C) args=(--model nanonet-lite0-neo --epochs "$small") ;;
    esac
    # shellcheck disable=SC2086  # EXTRA holds several options
    timeout "$LIMIT" python3 -m polypview.cli train "${args[@]}" "${common[@]}" $EXTRA --out "$WORK/$run" >> "$WORK/$run.log" 2>&1 &
done
wait
for run in "${runs[@]}"; do echo "== $run"; tail -n 3 "$WORK/$run.log"; done

python3 - "$WORK" "$OUT" "${RESUME:-}" "${runs[*]}" <<'PY'
import io, sys
from pathlib import Path
import torch
work, out, resumed, runs = Path(sys.argv[1]), Path(sys.argv[2]), bool(sys.argv[3]), sys.argv[4].split()
piece = 15 * 2**20
for run in runs:
    for kind in ("best", "last") if resumed else ("best",):
        path = work / run / f"{kind}.pt"
        if not path.is_file():
            continue
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        for key in ("optimizer", "scheduler", "rng"):
            ckpt.pop(key, None)
        buffer = io.BytesIO()
        torch.save(ckpt, buffer)
        data = buffer.getvalue()
        for i in range(0, len(data), piece):
            (out / f"{run}-{kind}.pt.{i // piece}").write_bytes(data[i:i + piece])
        print(f"{run} {kind}.pt:", "epoch", ckpt["epoch"], "best epoch", ckpt["best_epoch"], "score", round(ckpt["best_score"], 4))
PY
tar -cf "$OUT/logs.tar" -C "$WORK" --exclude='*.pt' --exclude='*.tmp' .
ls -la "$OUT"
