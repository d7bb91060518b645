"""A bounded cache of prepared volumes, keyed by the volume's content hash.

Each entry is a Future, so a volume that several streams (or questions) ask for at once is
loaded once; later requests for the same hash are cache hits. Failed loads are not kept, so a
fixed file can be retried. Entries are evicted oldest-first once the prepared bytes exceed the
bound (questions still holding a prepared volume keep it alive until they are answered).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, Callable

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
        future.set_result(entry)
        self._evict()

    def _evict(self) -> None:
        with self._lock:
            total = sum(f.result().nbytes for f in self._entries.values() if f.done() and not f.exception())
            for key in list(self._entries):
                if total <= self.max_bytes or len(self._entries) <= 1:
                    break
                future = self._entries[key]
                if future.done():
                    total -= future.result().nbytes if not future.exception() else 0
                    del self._entries[key]

    def peek(self, volume_id: str) -> Future | None:
        """The cached future for `volume_id`, or None. Never loads."""
        with self._lock:
            future = self._entries.get(volume_id)
            if future is not None:
                self._entries.move_to_end(volume_id)
            return future
