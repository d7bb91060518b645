"""Gathers ready questions from every stream into batches, and runs `Model.answer` under a timeout.

`Batcher`: one worker thread takes the oldest ready question, waits up to `max_wait_ms` for more
(up to `max_batch_size`), preferring questions on the same volume so per-volume state is reused,
and hands each batch to `run` (the pipeline's answer stage, pipeline.py, which times it and
delivers each item's result). It neither times nor calls the model itself.

`TimedAnswer`: `Model.answer()` runs on a thread of its own and gets `timeout_s` per batch: a
call that hangs is abandoned (its items get `AnswerTimeout`), a fresh thread takes the next
batch, and the server goes on. A result that the abandoned call returns later is discarded.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from ctbench.errors import AnswerTimeout, ModelError
from ctbench.model_servers.sdk.model import QuestionItem


@dataclass
class PendingItem:
    item: QuestionItem
    arrived: float  # time.perf_counter() when the question arrived
    load_ms: float
    cache_hit: bool
    deliver: Callable[[PendingItem, str | BaseException, dict], None]
    cancelled: Callable[[], bool]


_STOP = object()
log = logging.getLogger("ctbench.server")


class _AnswerThread:
    """Runs `answer(batch)` calls one at a time on a daemon thread of its own."""

    def __init__(self, answer: Callable[[list[QuestionItem]], list]):
        self._answer = answer
        self._inbox: queue.Queue = queue.Queue()
        threading.Thread(target=self._loop, name="ctbench-answer", daemon=True).start()

    def _loop(self) -> None:
        while True:
            batch, future = self._inbox.get()
            try:
                future.set_result(self._answer(batch))
            except BaseException as exc:  # handed to the batcher, which fails the batch's items
                future.set_exception(exc)

    def call(self, batch: list[QuestionItem], timeout_s: float):
        """The call's result; `concurrent.futures.TimeoutError` if it takes over `timeout_s`."""
        future: Future = Future()
        self._inbox.put((batch, future))
        return future.result(timeout_s)


class TimedAnswer:
    """`answer(batch)` with `timeout_s` per call: past it the call is abandoned and raises
    `AnswerTimeout`; the next call runs on a fresh thread."""

    def __init__(self, answer: Callable[[list[QuestionItem]], list], timeout_s: float = 300.0):
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self._answer = answer
        self._thread = _AnswerThread(answer)
        self.timeout_s = timeout_s
        self.abandoned = 0  # calls that timed out (their threads may still be running)

    def call(self, items: list[QuestionItem]) -> list:
        try:
            return self._thread.call(items, self.timeout_s)
        except FutureTimeout:
            self.abandoned += 1
            self._thread = _AnswerThread(self._answer)  # the hung one is left behind
            ids = ", ".join(item.question_id for item in items[:3]) + (", ..." if len(items) > 3 else "")
            log.error("answer() did not return within %gs for a batch of %d (%s): abandoned (%d so far)",
                      self.timeout_s, len(items), ids, self.abandoned)
            raise AnswerTimeout(
                f"the model did not answer within the server's per-batch timeout of {self.timeout_s:g}s "
                f"(batch of {len(items)}); the server goes on with other questions"
            ) from None


class Batcher:
    def __init__(self, run: Callable[[list[PendingItem]], None], max_batch_size: int, max_wait_ms: float):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self._run = run
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
            try:
                self._run(batch)
            except Exception:  # a bug delivering results: the batcher goes on with the next batch
                log.exception("a batch of %d could not be run", len(batch))
            del batch, first  # answered: hold no prepared volume while waiting for the next
            if stop:
                for pending in held:
                    pending.deliver(pending, ModelError("server shutting down"), {})
                return

