"""`polypview batch INPUTS... --out DIR`: annotate whole archives on Ray, from a laptop to a cluster.

    polypview batch /archive/2026 --out annotated/                 # local Ray, one worker per core
    polypview batch list.txt --out annotated/ --workers 2 --no-video
    polypview batch /nfs/archive --out /nfs/annotated --address ray-head:6379

Every video runs in every-frame mode (see batchjob.py for its outputs); the batch writes
DIR/index.csv and DIR/index.html. A re-run skips videos already done with the same model file and
settings (`--force` redoes them); a video whose worker dies or that fails is tried once more on
another worker, then recorded as failed while the batch goes on. Exit code 0 when every video is
done, 1 when any failed, 130 after Ctrl-C (finished outputs stay, half-written ones are removed).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from polypview.errors import ConfigError

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".wmv", ".flv"}
LIST_EXTENSIONS = {".txt", ".lst", ".list"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from polypview.settings import add_model_arguments, add_overlay_arguments

    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files, folders (searched recursively) or text files listing one path per line")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--no-video", action="store_true", help="write tables and summaries only, no annotated MP4")
    parser.add_argument("--force", action="store_true", help="redo videos whose outputs already exist")
    cluster = parser.add_argument_group("Ray")
    cluster.add_argument("--workers", type=int, metavar="N",
                         help="videos processed side by side, one model session each "
                              "(default: one per CPU of the local machine or the cluster)")
    cluster.add_argument("--address", metavar="HOST:PORT",
                         help="join this Ray cluster (default: start Ray locally, in-process); "
                              "inputs and --out must be paths every node sees")
    add_model_arguments(parser, engine=False)
    add_overlay_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from polypview.batchrun import BatchRunner

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.model is not None and str(args.model).lower() == "none":
        raise ConfigError("polypview batch needs a model: leave --model out for the default, or name one")
    videos = collect_inputs(args.inputs, skip=Path(args.out).expanduser())
    out_dir = _out_dir(args.out)
    info = _check_model(args)
    runner = BatchRunner(videos, out_dir, batch_settings(args, info), model=args.model, backend=args.backend,
                         force=args.force)
    return runner.run(workers=args.workers, address=args.address)


def _check_model(args):
    """Open the model once here: a bad model file is one error line, not one failure per video. Its ModelInfo."""
    from polypview.inference.runtime.engine import load_engine

    with load_engine(args.model, backend=args.backend, threads=1) as engine:
        return engine.info


def batch_settings(args, info=None):
    """The model file's name and hash, and the drawing settings (the options given, the model file's own
    defaults from `info`, the app's): what makes outputs reusable."""
    from dataclasses import asdict

    from polypview.batchjob import BatchSettings, file_sha256
    from polypview.inference.runtime.engine import resolve_model
    from polypview.settings import overlay_from_args, overlay_settings

    path = resolve_model(args.model)
    overlay = asdict(overlay_settings(overlay_from_args(args), info))
    return BatchSettings(model=path.stem, model_sha256=file_sha256(path), overlay=overlay, video=not args.no_video)


def collect_inputs(inputs: list[str], skip: Path | None = None) -> list[Path]:
    """Video paths from files, folders and list files, in the given order, without duplicates.

    A command-line path that does not exist is a ConfigError; a path named in a list file that does
    not exist is kept (its video is recorded as failed, and the batch goes on). A folder search leaves
    out the folder `skip` (the batch's --out, when it lies inside an input folder: its annotated videos
    are outputs, not inputs to annotate on the next run)."""
    seen: dict[Path, None] = {}
    skip = skip.resolve() if skip is not None else None
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
                           and not (skip is not None and p.resolve().is_relative_to(skip)))
        elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            found = _read_list(path)
        elif path.exists():
            found = [path]
        else:
            raise ConfigError(f"input {text} does not exist")
        for video in found:
            seen.setdefault(video.resolve(), None)
    if not seen:
        raise ConfigError(f"no video files in {', '.join(inputs)} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return list(seen)


def _read_list(path: Path) -> list[Path]:
    """Paths listed one per line (blank lines and # comments skipped; relative to the list's folder)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the list {path}: {exc}") from None
    entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return [p if p.is_absolute() else path.parent / p for p in (Path(e).expanduser() for e in entries)]


def _out_dir(text: str) -> Path:
    out = Path(text).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {text} is a file: give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output folder {text}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise ConfigError(f"the output folder {text} is not writable")
    return out.resolve()
