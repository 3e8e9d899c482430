"""Every-frame mode with several inference workers: results overtake each other, frames still come out in order."""

import threading
import time

import pytest
from test_pipeline import PatternEngine, clip, mask_columns, run_pipeline  # noqa: F401 (clip is a fixture)

from polypview.sources import open_source


class JitterEngine(PatternEngine):
    """Slow on every third frame, so a second worker finishes later frames first; remembers its threads."""

    def __init__(self):
        super().__init__()
        self.threads = set()

    def predict(self, frame, roi=None):
        self.threads.add(threading.current_thread().name)
        prediction = super().predict(frame, roi)
        time.sleep(0.03 if self.seen[-1] % 3 == 0 else 0.001)
        return prediction


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_sync_workers_keep_order_and_draw_each_frame_its_own_mask(clip, workers):  # noqa: F811
    engine = JitterEngine()
    sink, summary = run_pipeline(open_source(clip), engine, mode="sync", sync_workers=workers)
    assert [f.number for f in sink.frames] == list(range(60))
    assert [f.seq for f in sink.frames] == sorted(f.seq for f in sink.frames)
    assert all(f.overlay_seq == f.seq and f.mask == mask_columns(f.number) for f in sink.frames)
    assert summary.frames_inferred == 60 and not summary.drops
    assert len(engine.threads) == workers


def test_sync_workers_report_a_failing_model_once(clip):  # noqa: F811
    sink, summary = run_pipeline(open_source(clip), PatternEngine(fail_after=5), mode="sync", sync_workers=2)
    assert len(sink.errors) == 1 and "failed" in str(sink.errors[0])
    assert [f.number for f in sink.frames] == list(range(60))  # the video goes on without the model
