"""Ctrl-C as an event: the headless runner and the batch driver stop on it without losing it.

A KeyboardInterrupt raised wherever the main thread happens to be can be swallowed (in a finaliser,
say: "Exception ignored in ...", or inside a library's blocking call), and the run then goes on as if
Ctrl-C never came; setting an event that the caller's loop checks cannot be lost that way.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def sigint_sets(event: threading.Event):
    """Within the block, Ctrl-C sets `event` instead of raising KeyboardInterrupt (main thread only)."""
    return _sigint_handler(lambda signum, frame: event.set())


def sigint_ignored():
    """Within the block, Ctrl-C is ignored: a second one must not cut a clean-up short (main thread only)."""
    return _sigint_handler(signal.SIG_IGN)


@contextmanager
def _sigint_handler(handler) -> Iterator[None]:
    """SIGINT goes to `handler` within the block; off the main thread Python allows no handler: unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
