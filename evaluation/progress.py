"""Progress of long scoring steps (text encoding, each judge, each metric), reported to whoever
listens: `bench score` shows bars like `bench run`'s; the library alone reports to no one.

    with reporting_to(bars.update):
        score_reference(...)      # calls report("sbert encoding", done, total) as it goes
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

Listener = Callable[[str, int, int], None]
_listener: Listener | None = None
_lock = threading.Lock()


def report(label: str, done: int, total: int) -> None:
    """Say that `done` of `total` units of step `label` are finished (threads may call this)."""
    listener = _listener
    if listener is not None:
        with _lock:
            listener(label, done, total)


@contextlib.contextmanager
def reporting_to(listener: Listener) -> Iterator[None]:
    global _listener
    previous, _listener = _listener, listener
    try:
        yield
    finally:
        _listener = previous
