"""The model server's pipeline, owned by one object: stage order, stage timings and readiness.

A `Pipeline` runs a `Model` through its stages, in this order:

    load           once: `Model.load()`, then the card is built and checked (`ModelCard`)
    decode         per volume: its file or inline bytes read into a `Volume` (skipped when the
                   model reads no voxels)
    preprocess     per volume: `Model.preprocess(volume)`
    encode_volume  per volume: `Model.encode_volume(prepared)`, shared by its questions
    answer         per batch: `Model.answer(batch)`, with the per-batch timeout

It times every stage (`StageTimes`: count and milliseconds per stage, in this order) and builds
each answer's `Timings`. Its parts do one job each and keep no view of their own on readiness or
time: the `VolumeCache` keeps prepared volumes by content hash, the `Batcher` groups questions
into batches, `TimedAnswer` runs `Model.answer` under the timeout, the `InlineBudget` and
`StreamSlots` bound memory and threads, and each `StreamSession` (one Answer stream) asks the
pipeline for volumes and hands it questions.

`Readiness` is the one place that says whether the server serves: health (server.py), Describe
and the Answer stream (servicer.py, stream_session.py) and `Model.ready` all read it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctbench.errors import CtbenchError, ModelNotReady, UnsupportedTransport
from ctbench.model_servers.sdk.batcher import Batcher, PendingItem, TimedAnswer
from ctbench.model_servers.sdk.inline_budget import InlineBudget
from ctbench.model_servers.sdk.model import Model, QuestionItem
from ctbench.model_servers.sdk.model_card import ModelCard, as_model_card
from ctbench.model_servers.sdk.model_core import ServerLimits, StreamSlots
from ctbench.model_servers.sdk.volume_cache import PreparedVolume, VolumeCache, VolumeTimings
from ctbench.preprocess.referenced_volumes import load_referenced, resolve_under_root
from ctbench.preprocess.volume import Volume, load_volume_bytes
from ctbench.v1 import answer_volume_question_pb2 as pb

log = logging.getLogger("ctbench.server")

#: The pipeline's stages, in the order a question goes through them.
STAGES = ("load", "decode", "preprocess", "encode_volume", "answer")
STILL_LOADING = "model is still loading"
SHUTTING_DOWN = "the server is shutting down"


class Readiness:
    """Whether the server serves, in one place.

    `loading` (the start) -> `serving` once the model loaded and its card checked, or `failed`
    with the reason; `draining` once shutdown begins (health says NOT_SERVING, streams already
    open finish their questions); `stopped` when the server has stopped. Listeners hear every
    change (health is one)."""

    LOADING, SERVING, FAILED, DRAINING, STOPPED = "loading", "serving", "failed", "draining", "stopped"

    def __init__(self) -> None:
        self._state = self.LOADING
        self._reason = STILL_LOADING
        self._load_error: str | None = None  # why the load failed, kept after shutdown
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self.loaded = threading.Event()  # set once the model serves; never cleared

    @property
    def state(self) -> str:
        return self._state

    @property
    def serving(self) -> bool:
        """What health reports: True only between a successful load and the start of shutdown."""
        return self._state == self.SERVING

    @property
    def model_loaded(self) -> bool:
        """The model loaded and questions are answered (serving, or draining at shutdown)."""
        return self._state in (self.SERVING, self.DRAINING)

    @property
    def error(self) -> str | None:
        """Why the model failed to load; None unless it did (kept once the server stops)."""
        return self._load_error

    def require_loaded(self) -> None:
        """Raise `ModelNotReady` saying why, unless the model answers questions."""
        if not self.model_loaded:
            raise ModelNotReady(self._reason)

    def require_serving(self) -> None:
        """Raise `ModelNotReady` saying why, unless health says SERVING."""
        if not self.serving:
            raise ModelNotReady(self._reason)

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call `listener(state)` now and on every later change."""
        with self._lock:
            self._listeners.append(listener)
            listener(self._state)

    def _move(self, state: str, reason: str, allowed_from: tuple[str, ...]) -> bool:
        with self._lock:  # listeners hear the changes in the order they happen
            if self._state not in allowed_from:
                return False
            self._state, self._reason = state, reason
            if state == self.SERVING:
                self.loaded.set()
            for listener in self._listeners:
                listener(state)
        return True

    def set_serving(self) -> bool:
        return self._move(self.SERVING, "", (self.LOADING,))

    def set_failed(self, reason: str) -> bool:
        if self._state == self.LOADING:
            self._load_error = reason
        return self._move(self.FAILED, reason, (self.LOADING,))

    def set_draining(self) -> bool:
        return self._move(self.DRAINING, SHUTTING_DOWN, (self.LOADING, self.SERVING, self.FAILED))

    def set_stopped(self) -> bool:
        return self._move(self.STOPPED, SHUTTING_DOWN, (self.LOADING, self.SERVING, self.FAILED, self.DRAINING))


@dataclass(frozen=True)
class StageTotal:
    stage: str
    count: int
    total_ms: float


class StageTimes:
    """Count and milliseconds per stage, accumulated over the server's life."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(STAGES, 0)
        self._ms = dict.fromkeys(STAGES, 0.0)

    def record(self, stage: str, ms: float) -> None:
        with self._lock:
            self._counts[stage] += 1
            self._ms[stage] += ms

    def totals(self) -> list[StageTotal]:
        """One total per stage, in pipeline order."""
        with self._lock:
            return [StageTotal(stage, self._counts[stage], self._ms[stage]) for stage in STAGES]


class Pipeline:
    """Runs one `Model`: its stages in order, timed, behind one `Readiness`."""

    clock = staticmethod(time.perf_counter)  # the one clock every timing is read from

    def __init__(self, model: Model, limits: ServerLimits, cache_bytes: int, executor: Executor):
        self.model = model
        self.limits = limits
        self.readiness = Readiness()
        self.stage_times = StageTimes()
        self.cache = VolumeCache(cache_bytes, executor)
        self._answer = TimedAnswer(model.answer, model.batch_timeout_s)
        self.batcher = Batcher(self._answer_stage, model.max_batch_size, model.max_wait_ms)
        self.inline_budget = InlineBudget(limits.max_inline_bytes)
        self.streams = StreamSlots(limits.max_streams)
        self.card: ModelCard | None = None  # built and checked once, at load
        self._wire_card: pb.ModelCard | None = None
        model._readiness = self.readiness  # `Model.ready` reads it

    # --- readiness ----------------------------------------------------------------------------
    @property
    def load_error(self) -> str | None:
        return self.readiness.error

    def load(self) -> None:
        """The load stage: `Model.load()`, then the card, built once and checked against the
        protocol. Any failure leaves the pipeline `failed`, saying why; never raises."""
        name = self.model.name or type(self.model).__name__
        try:
            with self._timed("load"):
                self.model.load()
                card = as_model_card(self.model.card(), name)
                wire = card.to_proto(self.limits)
        except CtbenchError as exc:
            self.readiness.set_failed(str(exc))
            log.error("model %s not loaded: %s", name, exc)
            return
        except Exception as exc:  # keep serving health; say why not ready
            self.readiness.set_failed(f"{type(exc).__name__}: {exc}")
            log.exception("model %s failed to load", name)
            return
        self.card, self._wire_card = card, wire
        if self.readiness.set_serving():
            log.info("model %s %s ready", name, card.version)

    def describe(self) -> pb.ModelCard:
        """The wire card (`ctbench.v1.ModelCard`): the one checked at load once the model
        serves; before that (loading, or a failed load) the model's declaration as it stands,
        so a client can see what is loading or missing. Raises `InvalidModelCard` for a card
        the protocol cannot carry, and whatever a bug in `Model.card()` raises."""
        if self._wire_card is not None:
            return self._wire_card
        return as_model_card(self.model.card(), self.model.name or type(self.model).__name__).to_proto(self.limits)

    def begin_shutdown(self) -> None:
        """Health goes NOT_SERVING; streams already open finish their questions."""
        self.readiness.set_draining()

    def close(self) -> None:
        """The server has stopped: questions still held get an error, nothing more is answered."""
        self.readiness.set_stopped()
        self.batcher.stop()

    # --- the volume stages --------------------------------------------------------------------
    def resolve(self, relative: str) -> Path:
        return resolve_under_root(self.limits.data_root, relative, self.model.volume_formats)

    def decode_file(self, path: Path, volume_id: str) -> Volume:
        """The decode stage, by reference (`path` as `resolve` returned it)."""
        root = self.limits.data_root
        if root is None:  # `resolve` has refused the path already
            raise UnsupportedTransport("this server has no data root: send volumes inline")
        with self._timed("decode"):
            return load_referenced(path, volume_id, root, self.model.volume_formats,
                                   max_bytes=self.limits.max_decoded_bytes)

    def decode_bytes(self, data, filename: str) -> Volume:
        """The decode stage, inline (any bytes-like object)."""
        with self._timed("decode"):
            return load_volume_bytes(data, filename, max_bytes=self.limits.max_decoded_bytes)

    def preprocess(self, volume: Volume) -> Any:
        """The preprocess stage."""
        with self._timed("preprocess"):
            return self.model.preprocess(volume)

    def volume_for_file(self, volume_id: str, path: Path) -> tuple[Future, bool]:
        """The future of a by-reference volume's `PreparedVolume` (prepared once per content
        hash, on the cache's executor) and whether it was already cached."""
        timings = VolumeTimings()
        return self.cache.get(volume_id, lambda: self._prepare(lambda: self.decode_file(path, volume_id), timings),
                              timings)

    def volume_for_bytes(self, volume_id: str, data, filename: str,
                         after: Callable[[], None] = lambda: None) -> tuple[Future, bool]:
        """As `volume_for_file`, for an inline volume's bytes; `after()` runs once the volume is
        prepared or has failed (the upload gives its reservation back)."""
        timings = VolumeTimings()

        def load() -> tuple[Any, Any]:
            try:
                return self._prepare(lambda: self.decode_bytes(data, filename), timings)
            finally:
                after()

        return self.cache.get(volume_id, load, timings)

    def _prepare(self, decode: Callable[[], Volume], timings: VolumeTimings) -> tuple[Any, Any]:
        if not self.model.reads_volume:
            return None, None
        start = self.clock()
        volume = decode()
        decoded = self.clock()
        prepared = self.preprocess(volume)
        preprocessed = self.clock()
        with self._timed("encode_volume"):
            state = self.model.encode_volume(prepared)
        timings.decode_ms = (decoded - start) * 1e3
        timings.preprocess_ms = (preprocessed - decoded) * 1e3
        timings.encode_ms = (self.clock() - preprocessed) * 1e3
        return prepared, state

    # --- the answer stage ---------------------------------------------------------------------
    def submit(self, item: QuestionItem, volume: PreparedVolume, cache_hit: bool, arrived: float,
               deliver: Callable[[PendingItem, str | BaseException, dict], None],
               cancelled: Callable[[], bool]) -> None:
        """Queue a question whose volume is prepared for the answer stage."""
        item.prepared, item.state = volume.prepared, volume.state
        self.batcher.submit(PendingItem(item, arrived, volume.timings.total_ms, cache_hit, deliver, cancelled))

    def _answer_stage(self, batch: list[PendingItem]) -> None:
        """One batch through `Model.answer` (the batcher's worker calls it); each item's result
        and `Timings` go back through its `deliver`."""
        batch = [p for p in batch if not p.cancelled()]
        if not batch:
            return
        start = self.clock()
        try:
            results = self._answer.call([p.item for p in batch])
            if not isinstance(results, list) or len(results) != len(batch):
                got = len(results) if isinstance(results, list) else type(results).__name__
                raise RuntimeError(f"answer() returned {got} results for a batch of {len(batch)}")
        except BaseException as exc:  # every item of the batch gets the error
            results = [exc] * len(batch)
        inference_ms = (self.clock() - start) * 1e3
        self.stage_times.record("answer", inference_ms)
        for pending, result in zip(batch, results):
            timings = {
                "queue_ms": (start - pending.arrived) * 1e3,
                "preprocess_ms": 0.0 if pending.cache_hit else pending.load_ms,
                "inference_ms": inference_ms,
                "batch_size": len(batch),
                "volume_cache_hit": pending.cache_hit,
            }
            pending.deliver(pending, result, timings)

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        start = self.clock()
        try:
            yield
        finally:
            self.stage_times.record(stage, (self.clock() - start) * 1e3)
