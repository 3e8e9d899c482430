"""The bench's GUI probes, run in a child process (the bench itself never imports Qt).

`python -m polypview.ui.probe MODEL TIMEOUT_S`: opens the window on the demo clip, waits for the first presented
frame, paints it, times the paints, and prints one line `GUIPROBE {json}`.

`python -m polypview.ui.probe soak CLIP MODEL MINUTES RECORD`: the window plays CLIP in a loop for MINUTES,
recording to RECORD ('' for none), and prints a line `SOAKSAMPLE {json}` every few seconds (benchsoak.Sampler)
and `SOAKRESULT {json}` at the end (benchsoak.soak_result)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

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


def soak_main(argv: list[str]) -> int:
    from polypview.benchsoak import WATCH_S, LoopSource, Sampler, sample_every, soak_result
    from polypview.session import CoreServices

    clip, model, minutes = argv[0], argv[1] or None, float(argv[2])
    record = Path(argv[3]) if len(argv) > 3 and argv[3] else None

    class LoopingServices(CoreServices):
        def open_source(self, spec, size=None, fps=None, fourcc=None):
            return LoopSource(spec)

    app = application()
    window = MainWindow(Settings(source=clip, model=model, record_path=record), services=LoopingServices())
    window.show()
    window.start()
    t0, duration, every = time.monotonic(), minutes * 60.0, sample_every(minutes)
    samplers: list[Sampler] = []

    def tick() -> None:
        pipeline = window.session.pipeline
        if pipeline is not None:
            if not samplers:
                samplers.append(Sampler(pipeline.stats_collector, window.session.source))
            row = samplers[0].sample(time.monotonic() - t0)
            print("SOAKSAMPLE " + json.dumps(row), flush=True)
        if time.monotonic() - t0 >= duration - every / 2:
            app.exit(0)  # not quit(): that closes the window, which asks first while it records

    def watch() -> None:
        if samplers:
            samplers[0].watch()

    timer, watcher = QTimer(), QTimer()
    timer.setInterval(int(every * 1000))
    timer.timeout.connect(tick)
    watcher.setInterval(int(WATCH_S * 1000))
    watcher.timeout.connect(watch)
    timer.start()
    watcher.start()
    app.exec()
    timer.stop()
    watcher.stop()
    pipeline, source = window.session.pipeline, window.session.source
    if pipeline is None or not samplers:
        window.shutdown()
        print("the window played nothing (see the errors above)", file=sys.stderr)
        return 1
    ended = pipeline.wait(0)
    summary = pipeline.stop()  # the window's own stop at shutdown then gets the same summary
    loops = source.loops
    window.shutdown()
    result = soak_result(samplers[0].samples, summary, record, duration, ended, loops)
    print("SOAKRESULT " + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(soak_main(sys.argv[2:]) if sys.argv[1:2] == ["soak"] else main(sys.argv[1:]))
