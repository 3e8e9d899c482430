"""The window's log file: what happened on a tower PC, for whoever looks after it later.

A tower runs polypview from a desktop icon, with no terminal to read: each error the window shows in a
dialog, each input, model, recording and end of input, and the traceback of anything unexpected go to a
log file as well (`start_log_file`). It lives in the platform's place for such files (Linux:
$XDG_STATE_HOME/polypview, else ~/.local/state/polypview; Windows: %LOCALAPPDATA%\\polypview; macOS:
~/Library/Logs/polypview), or where POLYPVIEW_LOG says, and rolls over at 1 MB, three old files kept.
A log that cannot be written is no reason to stop the viewer: it is then simply not kept.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

LOGGER = "polypview"
MAX_BYTES = 1_000_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_path() -> Path:
    """Where the log file goes on this platform (POLYPVIEW_LOG wins)."""
    given = os.environ.get("POLYPVIEW_LOG")
    if given:
        return Path(given)
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "polypview" / "polypview.log"
    if sys.platform == "darwin":
        return home / "Library" / "Logs" / "polypview" / "polypview.log"
    state = os.environ.get("XDG_STATE_HOME") or str(home / ".local" / "state")
    return Path(state) / "polypview" / "polypview.log"


def start_log_file(path: Path | None = None) -> Path | None:
    """Write the project's INFO-and-above messages to `path` (default `log_path()`); the path, or None when it
    cannot be written. Calling it again for the same file adds no second handler."""
    path = log_path() if path is None else Path(path)
    logger = logging.getLogger(LOGGER)
    for handler in logger.handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler) and Path(handler.baseFilename) == path.absolute():
            return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                       encoding="utf-8")
    except OSError:
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return path
