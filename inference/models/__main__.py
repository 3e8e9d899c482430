"""Print the zoo as a Markdown table: `python -m polypview.inference.models [--time]`."""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from . import count_params, create_model, get_spec, inference_params, list_models
from .flops import count_macs

BENCH_RUNS = 20


def median_ms(model: torch.nn.Module, size: tuple[int, int], runs: int = BENCH_RUNS) -> float:
    """Median wall time (ms) of one batch-1 forward at `size`, after 3 warm-up runs."""
    x = torch.randn(1, 3, *size)
    times = []
    with torch.inference_mode():
        for i in range(runs + 3):
            start = time.perf_counter()
            model(x)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def row(name: str, timed: bool) -> str:
    """One table row: params (inference graph, published reading), training params, GMACs."""
    spec = get_spec(name)
    model = create_model(name).eval()
    published = spec.published_params
    params = inference_params(model, bn_stats=spec.count_bn_stats)
    cells = [
        name, spec.head, f"{spec.input_size[0]}x{spec.input_size[1]}",
        f"{params:,}" + (" (Keras total)" if spec.count_bn_stats else ""),
        f"{published:,}" if published else "-",
        f"{count_params(model):,}",
        f"{count_macs(model, spec.input_size) / 1e9:.2f}",
        f"{count_macs(model, 352) / 1e9:.2f}",
    ]
    if timed:
        cells.append(f"{median_ms(model, spec.input_size):.1f}")
    return "| " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time", action="store_true", help="also time a batch-1 forward (median of 20)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for --time")
    parser.add_argument("names", nargs="*", help="models to list (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    header = ["model", "head", "input", "params (inference)", "published", "torch parameters() incl. aux",
              "GMAC @input", "GMAC @352"]
    if args.time:
        header.append(f"torch CPU ms ({args.threads} thr)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in args.names or list_models():
        print(row(name, args.time))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
