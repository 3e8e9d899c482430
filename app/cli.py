"""The `polypview` command: `polypview [--video F | --device N | --demo] ...` or `polypview SUBCOMMAND ...`.

Each subcommand is a module with `add_arguments(parser)` and `run(args) -> int`, imported
only when used (training and export import torch; the viewer must not).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from polypview import __version__
from polypview.errors import PolypviewError

# name -> (module, one-line help). The viewer itself is the default when no subcommand is given.
SUBCOMMANDS = {
    "train": ("polypview.inference.training.train", "train a network on a dataset"),
    "eval": ("polypview.inference.training.evaluate", "evaluate models on the test split (Dice/IoU, FPS, params, GMACs)"),
    "split": ("polypview.inference.training.split", "make a fixed train/val/test split of another dataset"),
    "blend": ("polypview.inference.training.blend", "average the weights of several trained files of one network"),
    "export": ("polypview.inference.training.export", "export a checkpoint to an ONNX model file with metadata"),
    "bench": ("polypview.bench", "benchmark every pipeline stage and the whole pipeline"),
    "batch": ("polypview.batch", "annotate many videos on Ray (tables, summaries, annotated MP4s, an index)"),
    "check": ("polypview.check", "is this machine ready? packages, models, speed, recording, window, sound, GPU"),
}
VIEWER = ("polypview.run", "open the viewer, or process a video headless")


def _parser_for(name: str | None) -> tuple[argparse.ArgumentParser, object]:
    module_name, help_text = SUBCOMMANDS[name] if name else VIEWER
    module = importlib.import_module(module_name)
    prog = f"polypview {name}" if name else "polypview"
    epilog = None if name else "subcommands: " + "; ".join(f"{k}: {h}" for k, (_, h) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(prog=prog, description=help_text, epilog=epilog)
    if not name:
        parser.add_argument("--version", action="version", version=f"polypview {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="log to stderr what is chosen and why (e.g. which ONNX Runtime provider runs)")
    module.add_arguments(parser)
    return parser, module


def _log_to_stderr() -> None:
    """--verbose: the project's log messages on stderr (once, however often main() runs)."""
    log = logging.getLogger("polypview")
    log.setLevel(logging.DEBUG)
    for handler in log.handlers:
        if getattr(handler, "polypview_verbose", False):
            handler.setStream(sys.stderr)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.polypview_verbose = True
    log.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv.pop(0) if argv and argv[0] in SUBCOMMANDS else None
    try:
        parser, module = _parser_for(name)
        args = parser.parse_args(argv)
        if args.verbose:
            _log_to_stderr()
        return int(module.run(args) or 0)
    except PolypviewError as exc:
        print(f"polypview: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("polypview: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
