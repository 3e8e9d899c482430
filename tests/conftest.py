"""Shared fixtures. Qt runs offscreen: without a display pytest would otherwise abort."""

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# One intra-op thread: on a busy 2-core CI machine torch with 2 threads stalls for seconds per call.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Windows opened by tests (and their subprocesses) remember nothing in the user's own settings.
_TMP = tempfile.mkdtemp(prefix="polypview-test-")
os.environ["POLYPVIEW_SETTINGS"] = os.path.join(_TMP, "settings.ini")
os.environ["POLYPVIEW_LOG"] = os.path.join(_TMP, "polypview.log")  # nor write to the user's log file

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POLYPVIEW_DATA", REPO.parent / "shared" / "data"))
NEOPOLYP = SHARED_DATA / "neopolyp_small"
KVASIR = SHARED_DATA / "kvasir_seg_sample"


@pytest.fixture
def neopolyp_dir() -> Path:
    """The NeoPolyp-Small folder; skips the test when ../shared/data is absent."""
    if not (NEOPOLYP / "train").is_dir():
        pytest.skip(f"needs the NeoPolyp-Small dataset at {NEOPOLYP} (../shared/data is absent)")
    return NEOPOLYP


@pytest.fixture
def kvasir_dir() -> Path:
    """The Kvasir-SEG sample folder; skips the test when ../shared/data is absent."""
    if not KVASIR.is_dir():
        pytest.skip(f"needs the Kvasir-SEG sample at {KVASIR} (../shared/data is absent)")
    return KVASIR


@pytest.fixture(autouse=True)
def _answer_yes_to_window_questions(monkeypatch):
    """A question box (close while recording?) would block a test forever: answer Yes unless a test says
    otherwise by patching `dialogs.ask_yes_no` itself."""
    try:
        from polypview.ui import dialogs
    except ImportError:  # no PyQt6: no window tests either
        return
    monkeypatch.setattr(dialogs, "ask_yes_no", lambda parent, title, question: True)


@pytest.fixture
def errors(monkeypatch):
    """Every message a window routes to the error dialog (the dialog itself never opens)."""
    from polypview.ui import dialogs

    shown: list[str] = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, message, title="polypview": shown.append(message))
    return shown


@pytest.fixture
def real_core():
    """Skip until the pipeline exists (CoreServices imports it lazily)."""
    pytest.importorskip("polypview.pipeline")
