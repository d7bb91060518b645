"""Progress bars, one per server (rich); quiet lines when output is not a terminal."""
from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RunProgress:
    def __init__(self, console: Console):
        self.console = console
        self.interactive = console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, disable=not self.interactive,
        )
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RunProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def update(self, server: str, done: int, total: int) -> None:
        with self._lock:
            if server not in self._tasks:
                self._tasks[server] = self._progress.add_task(server, total=total)
            self._progress.update(self._tasks[server], completed=done, total=total)

    def announce(self, message: str) -> None:
        self._progress.console.print(message, soft_wrap=True)  # a status line never wraps in a log
