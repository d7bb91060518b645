"""A bounded cache of prepared volumes, keyed by the volume's content hash.

Each entry is a Future, so a volume that several streams (or questions) ask for at once is
loaded once; later requests for the same hash are cache hits. Failed loads are not kept, so a
fixed file can be retried. Entries are evicted least recently used first once the prepared bytes
exceed the bound (questions still holding a prepared volume keep it alive until they are
answered). The cache keeps a running total, so a load costs the same however many entries it has.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class PreparedVolume:
    volume_id: str
    prepared: Any
    state: Any
    load_ms: float
    nbytes: int


def sizeof(obj: Any) -> int:
    """Bytes held by arrays/tensors inside `obj` (lists, tuples, dicts and attributes walked)."""
    seen: set[int] = set()

    def walk(o: Any, depth: int) -> int:
        if o is None or id(o) in seen or depth > 4:
            return 0
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            return int(o.nbytes)
        nbytes = getattr(o, "nbytes", None)
        if isinstance(nbytes, int):
            return nbytes
        if hasattr(o, "element_size") and hasattr(o, "nelement"):  # torch.Tensor
            return int(o.element_size() * o.nelement())
        if isinstance(o, (list, tuple)):
            return sum(walk(x, depth + 1) for x in o)
        if isinstance(o, dict):
            return sum(walk(x, depth + 1) for x in o.values())
        if hasattr(o, "__dict__"):
            return sum(walk(x, depth + 1) for x in vars(o).values())
        return 0

    return walk(obj, 0)


class VolumeCache:
    def __init__(self, max_bytes: int, executor: Executor):
        self.max_bytes = max_bytes
        self._executor = executor
        self._entries: OrderedDict[str, Future] = OrderedDict()
        self._sizes: dict[str, int] = {}  # bytes of each loaded entry
        self.total_bytes = 0  # sum of _sizes
        self._lock = threading.Lock()

    def get(self, volume_id: str, load: Callable[[], tuple[Any, Any]]) -> tuple[Future, bool]:
        """The future of `volume_id`'s prepared volume, and whether it was already cached.

        `load()` returns `(prepared, state)`; it runs on the executor only on a miss."""
        with self._lock:
            future = self._entries.get(volume_id)
            if future is not None:
                self._entries.move_to_end(volume_id)
                return future, True
            future = Future()
            self._entries[volume_id] = future
        self._executor.submit(self._run, volume_id, load, future)
        return future, False

    def _run(self, volume_id: str, load: Callable[[], tuple[Any, Any]], future: Future) -> None:
        start = time.perf_counter()
        try:
            prepared, state = load()
        except BaseException as exc:  # handed to every waiting question
            with self._lock:
                if self._entries.get(volume_id) is future:
                    del self._entries[volume_id]
            future.set_exception(exc)
            return
        entry = PreparedVolume(
            volume_id, prepared, state, (time.perf_counter() - start) * 1e3, sizeof((prepared, state))
        )
        with self._lock:
            if self._entries.get(volume_id) is future:
                self._sizes[volume_id] = entry.nbytes
                self.total_bytes += self._sizes[volume_id]
        self._evict()  # before the result is out, so no answer on it can overtake the eviction
        future.set_result(entry)

    def _evict(self) -> None:
        """Drop loaded entries, least recently used first, until the total fits (one stays)."""
        with self._lock:
            for key in list(self._entries):
                if self.total_bytes <= self.max_bytes or len(self._sizes) <= 1:
                    break
                if key in self._sizes:
                    del self._entries[key]
                    self.total_bytes -= self._sizes.pop(key)

    def peek(self, volume_id: str) -> Future | None:
        """The cached future for `volume_id`, or None. Never loads."""
        with self._lock:
            future = self._entries.get(volume_id)
            if future is not None:
                self._entries.move_to_end(volume_id)
            return future
