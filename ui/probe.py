"""The bench's GUI probe, run as `python -m polypview.ui.probe MODEL TIMEOUT_S` in a child process (the bench itself
never imports Qt): opens the window on the demo clip, waits for the first presented frame, paints it, times the
paints, and prints one line `GUIPROBE {json}`."""

from __future__ import annotations

import json
import sys
import time

T_MAIN = time.monotonic()

from PyQt6.QtCore import QTimer  # noqa: E402  (the import time is part of what is measured)

from polypview.ui.app import application  # noqa: E402
from polypview.ui.main_window import MainWindow, Settings  # noqa: E402
from polypview.ui.video_view import scale_for_display  # noqa: E402


def _median_ms(window, n: int = 15) -> float:
    paints = []
    for _ in range(n):
        t0 = time.perf_counter()
        window.view.repaint()
        paints.append(time.perf_counter() - t0)
    return sorted(paints)[n // 2] * 1000


def _measure(window, out: dict) -> None:
    """Paint times of the first frame, of a 1080p frame shrunk on the pipeline's side, and of one Qt scales."""
    import numpy as np

    window.view.repaint()
    out["t_first_frame"] = time.monotonic()
    out["paint_ms"] = _median_ms(window)
    big = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    shrinks, small = [], None
    for _ in range(15):
        t0 = time.perf_counter()
        small = scale_for_display(big, window.view.paint_area())
        shrinks.append(time.perf_counter() - t0)
    out["shrink_1080p_ms"] = sorted(shrinks)[7] * 1000 if small is not None else None
    window.view.set_frame(big, small)  # as the window gets frames from the bridge
    out["paint_1080p_ms"] = _median_ms(window)
    window.view.set_frame(big)  # Qt scales it while painting
    out["paint_1080p_qt_scaled_ms"] = _median_ms(window)
    out["view_size"] = [window.view.width(), window.view.height()]


def main(argv: list[str]) -> int:
    model, timeout_s = (argv[0] or None) if argv else None, float(argv[1]) if len(argv) > 1 else 60.0
    t_import = time.monotonic()
    app = application()
    window = MainWindow(Settings(source="demo", model=model))
    window.show()
    window.start()
    out: dict = {"t_window": time.monotonic()}

    def poll() -> None:
        if window.last_presented is None:
            return
        timer.stop()
        _measure(window, out)
        app.quit()

    timer = QTimer()
    timer.setInterval(2)
    timer.timeout.connect(poll)
    timer.start()
    QTimer.singleShot(int(timeout_s * 1000), app.quit)
    app.exec()
    window.shutdown()
    out.update(t_main=T_MAIN, t_import=t_import, torch="torch" in sys.modules)
    print("GUIPROBE " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
