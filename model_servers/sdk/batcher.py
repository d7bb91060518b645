"""Gathers ready questions from every stream into batches for `Model.answer`.

One worker thread: it takes the oldest ready question, waits up to `max_wait_ms` for more (up
to `max_batch_size`), preferring questions on the same volume so per-volume state is reused,
and hands each item's result back through the item's `deliver` callback.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ctbench.errors import ModelError
from ctbench.model_servers.sdk.model import QuestionItem


@dataclass
class PendingItem:
    item: QuestionItem
    arrived: float  # time.perf_counter() when the question arrived
    load_ms: float
    cache_hit: bool
    deliver: Callable[["PendingItem", "str | BaseException", dict], None]
    cancelled: Callable[[], bool]


_STOP = object()


class Batcher:
    def __init__(self, answer: Callable[[list[QuestionItem]], list], max_batch_size: int, max_wait_ms: float):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self._answer = answer
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1e3
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="ctbench-batcher", daemon=True)
        self._thread.start()

    def submit(self, pending: PendingItem) -> None:
        self._queue.put(pending)

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _loop(self) -> None:
        held: list[PendingItem] = []
        while True:
            first = held.pop(0) if held else self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.perf_counter() + self.max_wait
            # Same-volume questions held back earlier go first.
            for pending in [p for p in held if p.item.volume_id == first.item.volume_id]:
                if len(batch) < self.max_batch_size:
                    batch.append(pending)
                    held.remove(pending)
            stop = False
            while len(batch) < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                try:
                    nxt = self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                if nxt.item.volume_id == first.item.volume_id:
                    batch.append(nxt)
                else:
                    held.append(nxt)
            self._run(batch)
            if stop:
                for pending in held:
                    pending.deliver(pending, ModelError("server shutting down"), {})
                return

    def _run(self, batch: list[PendingItem]) -> None:
        batch = [p for p in batch if not p.cancelled()]
        if not batch:
            return
        start = time.perf_counter()
        try:
            results = self._answer([p.item for p in batch])
            if not isinstance(results, list) or len(results) != len(batch):
                got = len(results) if isinstance(results, list) else type(results).__name__
                raise RuntimeError(f"answer() returned {got} results for a batch of {len(batch)}")
        except BaseException as exc:  # every item of the batch gets the error
            results = [exc] * len(batch)
        inference_ms = (time.perf_counter() - start) * 1e3
        for pending, result in zip(batch, results):
            timings = {
                "queue_ms": (start - pending.arrived) * 1e3,
                "preprocess_ms": 0.0 if pending.cache_hit else pending.load_ms,
                "inference_ms": inference_ms,
                "batch_size": len(batch),
                "volume_cache_hit": pending.cache_hit,
            }
            pending.deliver(pending, result, timings)
