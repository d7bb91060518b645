"""The gRPC servicer: a thin translator between protobuf and the SDK's Python objects.

One `StreamSession` per `Answer` call. A reader thread consumes the request stream: volume
headers and chunks become cache lookups (loaded once per content hash), questions wait for
their volume and then join the shared batcher. Answers go back in completion order. Any bad
item gets its own error status; the stream goes on.
"""
from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import grpc

from ctbench.errors import (
    CtbenchError,
    InvalidVolume,
    ModelNotReady,
    UnknownVolume,
    UnsupportedTransport,
    VolumeTooLarge,
)
from ctbench.model_servers.sdk.batcher import Batcher, PendingItem
from ctbench.model_servers.sdk.item_status import OK, status_from_exception
from ctbench.model_servers.sdk.model import Model, QuestionItem
from ctbench.model_servers.sdk.volume_cache import PreparedVolume, VolumeCache
from ctbench.preprocess.referenced_volumes import load_referenced, resolve_under_root
from ctbench.preprocess.volume import load_volume_bytes
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

log = logging.getLogger("ctbench.server")

TRANSPORTS = {"reference": pb.VOLUME_TRANSPORT_REFERENCE, "inline": pb.VOLUME_TRANSPORT_INLINE}
_END = object()


@dataclass
class ServerLimits:
    data_root: Path | None = None
    max_volume_bytes: int = 2 << 30
    max_chunk_bytes: int = 3 << 20


@dataclass
class _Upload:
    """An inline volume arriving in chunks. The buffer grows as chunks come (a header alone
    reserves nothing); `wanted` is False when the volume is already cached and bytes are skipped."""

    filename: str
    total: int
    wanted: bool = True
    buffer: bytearray = field(default_factory=bytearray)
    hasher: Any = field(default_factory=hashlib.sha256)
    received: int = 0


@dataclass
class _SessionVolume:
    future: Future
    cache_hit: bool
    upload: _Upload | None = None
    failed: BaseException | None = None
    pending: list = field(default_factory=list)


class ModelCore:
    """What all streams share: the model, its readiness, the volume cache and the batcher."""

    def __init__(self, model: Model, limits: ServerLimits, cache: VolumeCache, batcher: Batcher):
        self.model = model
        self.limits = limits
        self.cache = cache
        self.batcher = batcher
        self.load_error: str | None = None

    def prepare(self, load_fn) -> tuple[Any, Any]:
        if not self.model.reads_volume:
            return None, None
        volume = load_fn()
        prepared = self.model.preprocess(volume)
        return prepared, self.model.encode_volume(prepared)

    def resolve(self, relative: str) -> Path:
        return resolve_under_root(self.limits.data_root, relative, self.model.volume_formats)

    def load_referenced(self, path: Path, volume_id: str):
        return load_referenced(path, volume_id, self.limits.data_root, self.model.volume_formats)


class StreamSession:
    def __init__(self, core: ModelCore, context: grpc.ServicerContext):
        self.core = core
        self.context = context
        self.out: queue.Queue = queue.Queue()
        self.volumes: dict[str, _SessionVolume] = {}
        self._outstanding = 0
        self._input_done = False
        self._lock = threading.Lock()
        self.cancelled = False
        context.add_callback(self._on_done)

    # --- request side ---------------------------------------------------------------------
    def read(self, requests: Iterator[pb.AnswerRequest]) -> None:
        try:
            for request in requests:
                kind = request.WhichOneof("item")
                if kind == "volume":
                    self._on_volume(request.volume)
                elif kind == "chunk":
                    self._on_chunk(request.chunk)
                elif kind == "question":
                    self._on_question(request.question)
        except grpc.RpcError:
            pass  # client went away; _on_done ends the session
        except Exception:  # a bug here must not hang the stream
            log.exception("request reader failed")
        finally:
            # Chunks that never came will not come now: fail the questions waiting on them.
            for vid, entry in list(self.volumes.items()):
                upload = entry.upload
                if upload is not None and upload.wanted and not entry.future.done():
                    self._fail_volume(vid, InvalidVolume(
                        f"the stream ended after {upload.received} of {upload.total} bytes of volume {vid}"))
            with self._lock:
                self._input_done = True
                finished = self._outstanding == 0
            if finished:
                self.out.put(_END)

    def _on_volume(self, header: pb.VolumeHeader) -> None:
        vid = header.volume_id
        source = header.WhichOneof("source")
        try:
            if not vid:
                raise InvalidVolume("volume header without a volume_id")
            if vid in self.volumes:
                return  # sent twice on one stream: the first one stands
            if source == "path":
                if "reference" not in self.core.model.transports:
                    raise UnsupportedTransport("this server accepts volumes inline only")
                path = self.core.resolve(header.path)
                future, hit = self.core.cache.get(vid, lambda: self.core.prepare(lambda: self.core.load_referenced(path, vid)))
                self.volumes[vid] = _SessionVolume(future, hit)
                future.add_done_callback(lambda f, vid=vid: self._volume_ready(vid, f))
            elif source == "inline":
                if "inline" not in self.core.model.transports:
                    raise UnsupportedTransport("this server accepts volumes by reference only")
                total = header.inline.total_bytes
                if total > self.core.limits.max_volume_bytes:
                    raise VolumeTooLarge(
                        f"inline volume of {total} bytes exceeds this server's limit of {self.core.limits.max_volume_bytes}"
                    )
                cached = self.core.cache.peek(vid)
                if cached is not None:
                    # Already prepared from an earlier stream: skip the bytes, reuse the entry.
                    self.volumes[vid] = _SessionVolume(cached, True, upload=_Upload(header.inline.filename, total, wanted=False))
                    future = cached
                    future.add_done_callback(lambda f, vid=vid: self._volume_ready(vid, f))
                else:
                    upload = _Upload(header.inline.filename or "volume.nii.gz", total)
                    self.volumes[vid] = _SessionVolume(Future(), False, upload=upload)
                    if total == 0:
                        self._finish_upload(vid)
            else:
                raise InvalidVolume("volume header names neither a path nor an inline volume")
        except CtbenchError as exc:
            self._fail_volume(vid, exc)

    def _on_chunk(self, chunk: pb.VolumeChunk) -> None:
        entry = self.volumes.get(chunk.volume_id)
        if entry is None or entry.upload is None:
            # Reported and dropped, never recorded: a header that comes later still works, and a
            # by-reference volume's future is the shared cache entry, not ours to fail.
            exc = UnknownVolume(f"chunk for volume {chunk.volume_id!r} without an inline header")
            self._send_volume_status(chunk.volume_id, exc, 0.0, False)
            return
        if entry.failed is not None or entry.future.done():
            return
        upload = entry.upload
        if not upload.wanted:  # cache hit, or already complete: bytes not needed
            return
        try:
            if len(chunk.data) > self.core.limits.max_chunk_bytes:
                raise InvalidVolume(f"chunk of {len(chunk.data)} bytes exceeds {self.core.limits.max_chunk_bytes}")
            if chunk.offset != upload.received:
                raise InvalidVolume(f"chunk at offset {chunk.offset}, expected {upload.received}")
            end = upload.received + len(chunk.data)
            if end > upload.total:
                raise InvalidVolume(f"chunks run past the declared {upload.total} bytes")
            upload.buffer += chunk.data
            upload.hasher.update(chunk.data)
            upload.received = end
        except CtbenchError as exc:
            self._fail_volume(chunk.volume_id, exc)
            return
        if upload.received == upload.total:
            self._finish_upload(chunk.volume_id)

    def _finish_upload(self, vid: str) -> None:
        entry = self.volumes[vid]
        upload = entry.upload
        data = bytes(upload.buffer)
        upload.buffer, upload.wanted = bytearray(), False
        digest = "sha256:" + upload.hasher.hexdigest()
        if digest != vid:
            self._fail_volume(vid, InvalidVolume(f"volume bytes hash to {digest}, not the declared {vid}"))
            return
        filename = entry.upload.filename
        future, hit = self.core.cache.get(vid, lambda: self.core.prepare(lambda: load_volume_bytes(data, filename)))
        placeholder = entry.future
        entry.future, entry.cache_hit = future, hit
        future.add_done_callback(lambda f: _chain(f, placeholder))
        future.add_done_callback(lambda f, vid=vid: self._volume_ready(vid, f))

    def _fail_volume(self, vid: str, exc: BaseException) -> None:
        entry = self.volumes.get(vid)
        if entry is None:
            entry = self.volumes[vid] = _SessionVolume(Future(), False)
        entry.failed = exc
        if not entry.future.done():
            entry.future.set_exception(exc)
        self._send_volume_status(vid, exc, 0.0, False)

    def _volume_ready(self, vid: str, future: Future) -> None:
        entry = self.volumes.get(vid)
        exc = future.exception()
        if exc is None:
            result: PreparedVolume = future.result()
            self._send_volume_status(vid, None, result.load_ms, entry.cache_hit if entry else False)
        elif entry is not None and entry.failed is None:
            entry.failed = exc
            self._send_volume_status(vid, exc, 0.0, False)

    def _send_volume_status(self, vid: str, exc: BaseException | None, load_ms: float, hit: bool) -> None:
        status = OK if exc is None else status_from_exception(exc, f"volume {vid}")
        self.out.put(pb.AnswerResponse(volume=pb.VolumeStatus(volume_id=vid, status=status, load_ms=load_ms, cache_hit=hit)))

    def _on_question(self, question: pb.Question) -> None:
        arrived = time.perf_counter()
        with self._lock:
            self._outstanding += 1
        item = QuestionItem(
            question_id=question.question_id,
            text=question.text,
            options=tuple(question.options),
            question_type=question.question_type,
            metadata=dict(question.metadata),
            volume_id=question.volume_id,
        )
        if not self.core.model.ready:
            self._deliver_error(item, ModelNotReady(self.core.load_error or "model is still loading"))
            return
        entry = self.volumes.get(question.volume_id)
        if entry is None:
            self._deliver_error(item, UnknownVolume(f"question {question.question_id!r} refers to volume {question.volume_id!r}, never sent on this stream"))
            return
        entry.future.add_done_callback(lambda f: self._enqueue(item, f, arrived, entry.cache_hit))

    def _enqueue(self, item: QuestionItem, future: Future, arrived: float, hit: bool) -> None:
        exc = future.exception()
        if exc is not None:
            self._deliver_error(item, exc)
            return
        prepared: PreparedVolume = future.result()
        item.prepared, item.state = prepared.prepared, prepared.state
        self.core.batcher.submit(
            PendingItem(item, arrived, prepared.load_ms, hit, self._deliver, lambda: self.cancelled)
        )

    # --- response side --------------------------------------------------------------------
    def _deliver_error(self, item: QuestionItem, exc: BaseException) -> None:
        self._deliver(PendingItem(item, 0.0, 0.0, False, self._deliver, lambda: self.cancelled), exc, {})

    def _deliver(self, pending: PendingItem, result, timings: dict) -> None:
        item = pending.item
        if isinstance(result, BaseException):
            status, text = status_from_exception(result, f"question {item.question_id}"), ""
        elif isinstance(result, str):
            status, text = OK, result
        else:
            status = status_from_exception(TypeError(f"answer() returned {type(result).__name__}, not str"))
            text = ""
        try:
            answer = pb.Answer(
                question_id=item.question_id,
                text=text,
                status=status,
                timings=pb.Timings(**timings) if timings else None,
                model_version=self.core.model.version,
            )
        except Exception as exc:  # e.g. text that is not valid UTF-8: one bad item, not a dead batcher thread
            answer = pb.Answer(question_id=item.question_id, status=status_from_exception(exc, f"question {item.question_id}"))
        self.out.put(pb.AnswerResponse(answer=answer))
        with self._lock:
            self._outstanding -= 1
            finished = self._input_done and self._outstanding == 0
        if finished:
            self.out.put(_END)

    def responses(self) -> Iterator[pb.AnswerResponse]:
        while True:
            message = self.out.get()
            if message is _END or self.cancelled:
                return
            yield message

    def _on_done(self) -> None:
        self.cancelled = True
        self.out.put(_END)


def _chain(source: Future, target: Future) -> None:
    if target.done():
        return
    if source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


class AnswerVolumeQuestionServicer(pb_grpc.AnswerVolumeQuestionServicer):
    def __init__(self, core: ModelCore):
        self.core = core

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.ModelCard:
        try:
            return card_to_proto(self.core.model.card(), self.core.limits)
        except Exception:  # a bug in the card: generic message out, traceback in the log
            log.exception("Describe failed")
            context.abort(grpc.StatusCode.INTERNAL, "internal error building the model card; the server log has the traceback")

    def Answer(self, request_iterator, context: grpc.ServicerContext):
        session = StreamSession(self.core, context)
        threading.Thread(target=session.read, args=(request_iterator,), name="ctbench-reader", daemon=True).start()
        yield from session.responses()


def card_to_proto(card: dict, limits: ServerLimits) -> pb.ModelCard:
    from ctbench import __version__

    spec = dict(card.get("input") or {})
    windows = [pb.IntensityWindow(lower=lo, upper=hi) for lo, hi in spec.pop("windows", []) or []]
    details = {str(k): str(v) for k, v in (spec.pop("details", {}) or {}).items()}
    known = {f.name for f in pb.InputSpec.DESCRIPTOR.fields}
    spec = {k: v for k, v in spec.items() if k in known and v is not None}
    transports = [t for t in card.get("transports", []) if t in TRANSPORTS]
    if limits.data_root is None and "reference" in transports:
        transports.remove("reference")
    return pb.ModelCard(
        name=card.get("name", ""),
        version=card.get("version", ""),
        description=card.get("description", ""),
        license=card.get("license", ""),
        weights=card.get("weights", ""),
        input=pb.InputSpec(windows=windows, details=details, **spec),
        max_batch_size=card.get("max_batch_size", 1),
        transports=[TRANSPORTS[t] for t in transports],
        max_volume_bytes=limits.max_volume_bytes,
        max_chunk_bytes=limits.max_chunk_bytes,
        generation=card.get("generation", {}),
        gpu_memory_bytes=card.get("gpu_memory_bytes", 0),
        sdk_version=__version__,
    )
