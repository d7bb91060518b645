"""One budget of inline bytes shared by every stream of a server.

An inline upload reserves its declared size at its header and gives it back once its bytes are
decoded (or dropped), so the raw bytes all streams hold at once never exceed `max_bytes`,
however many streams or partial uploads there are.
"""
from __future__ import annotations

import threading

from ctbench.errors import InlineBytesExhausted


class Reservation:
    """Bytes held for one upload; `release()` gives them back (once, however often called)."""

    def __init__(self, budget: InlineBudget, nbytes: int):
        self._budget = budget
        self.nbytes = nbytes
        self._released = False

    def release(self) -> None:
        with self._budget._lock:
            if self._released:
                return
            self._released = True
            self._budget.in_use -= self.nbytes


class InlineBudget:
    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.in_use = 0
        self._lock = threading.Lock()

    def reserve(self, nbytes: int, what: str) -> Reservation:
        """Hold `nbytes` for `what`, or raise `InlineBytesExhausted` saying how much is held."""
        with self._lock:
            if self.in_use + nbytes > self.max_bytes:
                held = f"; {self.in_use} are held by other uploads" if self.in_use else ""
                raise InlineBytesExhausted(
                    f"{what}: {nbytes} inline bytes do not fit in this server's {self.max_bytes} bytes "
                    f"for inline uploads in flight{held}"
                )
            self.in_use += nbytes
        return Reservation(self, nbytes)
