"""Plot the curves of a chain of training runs (e.g. a run and its `--init` fine-tunes) as one figure.

    python tools/plot_runs.py assets/nanonet-a-neo-curves.png runs/a runs/a-ft runs/a-ft2

Each run folder's history.json is appended in the order given; epochs are renumbered across runs.
The model cards link this figure as "whole training".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def chained_history(runs: list[Path]) -> list[dict]:
    """The histories of `runs`, in order, with epochs numbered 1.. across them."""
    history = []
    for run in runs:
        path = Path(run) / "history.json"
        if not path.is_file():
            raise SystemExit(f"plot_runs: no history.json in {run}")
        for entry in json.loads(path.read_text()):
            history.append({**entry, "epoch": len(history) + 1})
    return history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument("runs", nargs="+", type=Path, help="run folders, oldest first")
    args = parser.parse_args(argv)
    from polypview.inference.training.checkpoints import plot_history

    history = chained_history(args.runs)
    plot_history(history, args.output)
    print(f"wrote {args.output} ({len(history)} epochs from {len(args.runs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
