"""Print how long the window takes to show its first frame, from process spawn (goal: under 1.5 s).

    python tools/gui_startup.py [polypview viewer options...]      # default: --demo --frames 20

Runs `polypview` offscreen in a fresh process, records when the first frame is painted and
whether torch was imported, then closes after `--frames` frames.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

CHILD = r"""
import os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
import polypview.ui.main_window as mw

shown = mw.MainWindow._frame_ready

def timed(self, bridge):
    shown(self, bridge)
    if self.last_presented is not None and not getattr(self, "_first_at", None):
        self.view.repaint()  # on screen now, not at the next paint event
        self._first_at = time.monotonic()
        print("FIRST", self._first_at, flush=True)

mw.MainWindow._frame_ready = timed
from polypview.cli import main
code = main(sys.argv[1:])
print("TORCH", "torch" in sys.modules, flush=True)
sys.exit(code)
"""


def measure(argv: list[str]) -> tuple[float | None, str]:
    """(seconds from spawn to the first painted frame, whether torch was imported)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env, timeout=120)
    values = dict(line.split(maxsplit=1) for line in out.stdout.splitlines() if line.startswith(("FIRST", "TORCH")))
    first = float(values["FIRST"]) - t0 if "FIRST" in values else None
    return first, values.get("TORCH", "?")


def main() -> int:
    """Measure three runs and print each."""
    argv = sys.argv[1:] or ["--demo", "--frames", "20"]
    if "--frames" not in argv:
        argv += ["--frames", "20"]
    for run in range(3):
        first, torch = measure(argv)
        shown = f"{first:.2f} s" if first is not None else "never (see the window's error)"
        print(f"run {run + 1}: first frame on screen {shown} after spawn; torch imported: {torch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
