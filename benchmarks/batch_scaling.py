"""`polypview batch` against the plain loop, on the same clips, in one run (figures, not assertions).

    python benchmarks/batch_scaling.py [--clips 8] [--seconds 10] [--size 1920x1080] [--workers 1,2]

Makes N generated 1080p30 clips, then times (1) the plain loop a researcher writes today, one
`polypview --video CLIP --headless --sync --record OUT` after another, and (2) `polypview batch` with
each worker count. Prints frames per second, the ratios to the loop and between worker counts, Ray's
start-up, and the output rate (what a shared file system must carry as machines are added).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_clips(folder: Path, count: int, seconds: float, size: tuple[int, int], fps: float = 30.0) -> list[Path]:
    from polypview.synthetic import write_demo_video

    clips = []
    for i in range(count):
        path = folder / f"clip{i:02d}.mp4"
        write_demo_video(path, frames=int(seconds * fps), size=size, fps=fps, seed=i)
        clips.append(path)
    return clips


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return time.perf_counter() - t0


def ray_start_s() -> float:
    code = ("import logging, time, ray; t = time.perf_counter(); "
            "ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR); "
            "print(time.perf_counter() - t); ray.shutdown()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--model", default=None, help="model for every run (default: the shipped default)")
    opts = parser.parse_args()
    size = tuple(int(v) for v in opts.size.split("x"))
    model = ["--model", opts.model] if opts.model else []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        t0 = time.perf_counter()
        clips = make_clips(tmp / "in", opts.clips, opts.seconds, size)
        frames = opts.clips * int(opts.seconds * 30)
        print(f"{opts.clips} clips {opts.size} 30 fps x {opts.seconds:g} s = {frames} frames "
              f"(made in {time.perf_counter() - t0:.0f} s); {os.cpu_count()} CPU cores")
        rows = []
        loop_out = tmp / "loop"
        loop_out.mkdir()
        seconds = sum(timed(["polypview", "--video", str(c), "--headless", "--sync", *model,
                             "--record", str(loop_out / c.name)]) for c in clips)
        rows.append(("plain loop of --headless --sync", seconds, folder_mb(loop_out)))
        for workers in (int(w) for w in opts.workers.split(",")):
            out = tmp / f"batch{workers}"
            seconds = timed(["polypview", "batch", str(tmp / "in"), "--out", str(out), "--workers", str(workers),
                             *model])
            rows.append((f"polypview batch --workers {workers}", seconds, folder_mb(out)))
        start = ray_start_s()
    base = rows[0][1]
    print(f"{'run':<34} {'wall s':>8} {'frames/s':>9} {'vs loop':>8} {'output MB/s':>12}")
    for name, seconds, mb in rows:
        print(f"{name:<34} {seconds:8.1f} {frames / seconds:9.1f} {base / seconds:8.2f} {mb / seconds:12.2f}")
    batch = [r for r in rows if r[0].startswith("polypview batch")]
    if len(batch) >= 2:
        print(f"batch {batch[-1][0].split()[-1]} workers / {batch[0][0].split()[-1]}: {batch[0][1] / batch[-1][1]:.2f}x")
    print(f"Ray local start-up (part of every batch's wall time): {start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
