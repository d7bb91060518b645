"""A child process that ends when the process that started it dies, at any moment.

Two parts, because neither covers every moment alone:
* on Linux, `prctl(PR_SET_PDEATHSIG)`: the kernel signals us when our parent dies, even while
  we are still importing; set first thing, before any heavy import;
* a watchdog thread that compares `getppid()` with the parent's pid, for the rest.
The parent's pid comes from the spawner (`CTBENCH_PARENT_PID`), so a parent that died before we
ran a single line is noticed too (by then `getppid()` already names someone else).

The kernel sends the signal when the parent *thread* that started us ends, not only when the
parent process dies; the handler therefore checks that the parent is really gone.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

PARENT_PID_ENV = "CTBENCH_PARENT_PID"
_PR_SET_PDEATHSIG = 1
_SIGNAL = signal.SIGUSR1


class ParentWatch:
    def __init__(self, parent: int):
        self.parent = parent
        self._on_death: Callable[[], None] | None = None

    @classmethod
    def arm(cls) -> ParentWatch:
        """Start watching the parent named by the spawner (else our current parent). Exits at
        once if that parent is already gone."""
        named = os.environ.get(PARENT_PID_ENV, "")
        watch = cls(int(named) if named.isdigit() else os.getppid())
        signal.signal(_SIGNAL, watch._on_signal)
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(_SIGNAL), 0, 0, 0)
        if watch.parent_gone():  # died before the signal was armed
            os._exit(1)
        return watch

    def parent_gone(self) -> bool:
        return os.getppid() != self.parent

    def _on_signal(self, signum, frame) -> None:
        if not self.parent_gone():
            return  # the thread that started us ended; the parent itself lives on
        if self._on_death is None:
            os._exit(1)  # still starting: nothing to shut down
        threading.Thread(target=self._on_death, name="ctbench-parent-gone", daemon=True).start()

    def watch(self, on_death: Callable[[], None], stopped: threading.Event, poll_s: float = 0.5) -> None:
        """From now on a dead parent calls `on_death()` (once), from the signal or a watchdog."""
        fired = threading.Lock()

        def once() -> None:
            if fired.acquire(blocking=False):
                on_death()

        self._on_death = once

        def watchdog() -> None:
            while not stopped.wait(poll_s):
                if self.parent_gone():
                    once()
                    return

        threading.Thread(target=watchdog, name="ctbench-parent-watch", daemon=True).start()
        if self.parent_gone():
            once()
