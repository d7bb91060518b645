"""A bounded cache of prepared volumes, keyed by the volume's content hash.

Each entry is a Future, so a volume that several streams (or questions) ask for at once is
loaded once; later requests for the same hash are cache hits. Failed loads are not kept, so a
fixed file can be retried. Entries are evicted least recently used first once the prepared bytes
exceed the bound (questions still holding a prepared volume keep it alive until they are
answered). The cache keeps a running total, so a load costs the same however many entries it has.
It runs the load it is given and keeps what it returns; the pipeline (pipeline.py) times the
stages inside the load and hands the cache their `VolumeTimings` to keep with the entry.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class VolumeTimings:
    """Milliseconds each per-volume stage took for one volume (set by the pipeline)."""

    decode_ms: float = 0.0
    preprocess_ms: float = 0.0
    encode_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """The volume's load: decode, preprocess and encode together (`Timings.preprocess_ms`)."""
        return self.decode_ms + self.preprocess_ms + self.encode_ms


@dataclass
class PreparedVolume:
    volume_id: str
    prepared: Any
    state: Any
    timings: VolumeTimings
    nbytes: int

    @property
    def load_ms(self) -> float:
        return self.timings.total_ms


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

    def get(self, volume_id: str, load: Callable[[], tuple[Any, Any]],
            timings: VolumeTimings | None = None) -> tuple[Future, bool]:
        """The future of `volume_id`'s `PreparedVolume`, and whether it was already cached.

        `load()` returns `(prepared, state)`; it runs on the executor only on a miss, and the
        entry keeps `timings` (what the caller measured inside `load`)."""
        with self._lock:
            future = self._entries.get(volume_id)
            if future is not None:
                self._entries.move_to_end(volume_id)
                return future, True
            future = Future()
            self._entries[volume_id] = future
        self._executor.submit(self._run, volume_id, load, future, timings or VolumeTimings())
        return future, False

    def _run(self, volume_id: str, load: Callable[[], tuple[Any, Any]], future: Future,
             timings: VolumeTimings) -> None:
        try:
            prepared, state = load()
        except BaseException as exc:  # handed to every waiting question
            with self._lock:
                if self._entries.get(volume_id) is future:
                    del self._entries[volume_id]
            future.set_exception(exc)
            return
        entry = PreparedVolume(volume_id, prepared, state, timings, sizeof((prepared, state)))
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
