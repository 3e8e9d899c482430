"""Time the shipped models alone on the torch backend: eager vs CUDA graph, fp16 vs fp32, per input size.

    python tools/gpu_model_time.py [--device cuda] [--calls 300] [--json OUT.json]

One figure per line: the median and p99 of `backend.run(blob)` over `--calls` calls after 30 warm-up
calls, which is what the app's inference worker waits for (host -> device copy, the network, the
probabilities back on the host). Issue 4's target: BlazeNeo-DHA <= 1.5 ms per frame at 352x352.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from polypview.inference.runtime import backend_torch
from polypview.inference.runtime.engine import resolve_model

CASES = (  # model, input size, fp16, CUDA graph
    ("blazeneo-dha", 352, True, True),
    ("blazeneo-dha", 352, True, False),
    ("blazeneo-dha", 352, False, True),
    ("blazeneo-dha", 192, True, True),
    ("nanonet-a-neo", 192, True, True),
    ("nanonet-a-neo", 192, True, False),
    ("nanonet-a-neo", 352, True, True),
    ("nanonet-c-neo", 192, True, True),
)
WARM_UP = 30


def time_case(model: str, size: int, half: bool, graphs: bool, device: str, calls: int) -> dict:
    backend = backend_torch.open_backend(resolve_model(model), device=device, half=half and device == "cuda",
                                         cuda_graphs=graphs)
    blob = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    try:
        for _ in range(WARM_UP if device == "cuda" else 2):
            backend.run(blob)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            backend.run(blob)
            times.append(time.perf_counter() - t0)
    finally:
        backend.close()
    ms = np.asarray(times) * 1000
    return {"model": model, "size": size, "provider": backend.provider, "calls": calls,
            "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)), "min_ms": float(ms.min())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = []
    for model, size, half, graphs in CASES:
        if args.device != "cuda" and (graphs is False or half is False):
            continue  # on CPU there is one variant (fp32, eager)
        try:
            r = time_case(model, size, half, graphs, args.device, args.calls)
        except Exception as exc:  # report and go on: one failing case must not lose the others
            r = {"model": model, "size": size, "half": half, "graphs": graphs, "error": f"{type(exc).__name__}: {exc}"}
            print(f"{model:14s} {size}x{size}  error: {r['error']}", flush=True)
        else:
            print(f"{model:14s} {size}x{size}  {r['provider']:24s} median {r['median_ms']:7.3f} ms  "
                  f"p99 {r['p99_ms']:7.3f} ms  min {r['min_ms']:7.3f} ms", flush=True)
        results.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
