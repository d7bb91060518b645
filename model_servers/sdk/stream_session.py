"""One `Answer` stream on the server side.

A reader thread consumes the request stream: volume headers and chunks ask the pipeline
(pipeline.py) for the prepared volume (prepared once per content hash), questions wait for their
volume and then go to the pipeline's answer stage. Answers go back in completion order. The
session neither times stages nor keeps its own view of readiness: both are the pipeline's. Any
bad item gets its own error status, an unexpected exception included; the stream goes on.

Memory: a stream holds a prepared volume only while it may still need it, that is while
questions on it are in flight or it is the newest volume the client sent (clients send a
volume, then its questions). Once released, a later question on it finds it again in the
shared cache (or, by reference, reloads it); an inline volume that has left the cache must be
sent again. Inline bytes are reserved from the server-wide budget at their header and given
back once decoded, so uploads in flight are bounded across all streams.

An inline volume's hash comes either in its header or, when the client reads, hashes and sends
the file in one pass (the card's `inline_hash_follows`), on its last chunk: the header then names
the upload (`upload_id`), the chunks follow it, and the volume is known by its id only once the
bytes are in and hash to it. A trailing hash that differs from the bytes, or none, fails that
volume alone; a header or question before the last chunk abandons the upload.
"""
from __future__ import annotations

import hashlib
import logging
import mmap
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import grpc

from ctbench.errors import (
    CtbenchError,
    InvalidVolume,
    UnknownVolume,
    UnsupportedTransport,
    VolumeTooLarge,
)
from ctbench.model_servers.sdk.batcher import PendingItem
from ctbench.model_servers.sdk.inline_budget import Reservation
from ctbench.model_servers.sdk.item_status import OK, status_from_exception
from ctbench.model_servers.sdk.malloc_arenas import give_back_free_heap
from ctbench.model_servers.sdk.model import QuestionItem
from ctbench.model_servers.sdk.pipeline import Pipeline
from ctbench.model_servers.sdk.volume_cache import PreparedVolume
from ctbench.v1 import answer_volume_question_pb2 as pb

log = logging.getLogger("ctbench.server")

_END = object()


class _Upload:
    """An inline volume arriving in chunks, written once into a buffer of its declared size.

    The buffer is an anonymous memory map of its own, allocated but not touched up front (pages
    are committed as chunks land) and given back to the system as soon as its last view is
    dropped; on the malloc heap, freed volume-sized buffers stay pinned in the threads' arenas and
    a long stream's memory grows with its number of volumes. The bytes are hashed as they come.
    `wanted` is False when the bytes are not needed (the volume was already cached, or is
    complete). `upload_id` names an upload whose hash follows its bytes; `failed` is its error
    when it failed before its id was known."""

    def __init__(self, filename: str, total: int, reservation: Reservation | None = None, upload_id: str = ""):
        self.filename = filename
        self.total = total
        self.reservation = reservation
        self.wanted = reservation is not None
        self.upload_id = upload_id
        self.failed: BaseException | None = None
        self.received = 0
        self.hasher = hashlib.sha256()
        self.view: memoryview | None = memoryview(mmap.mmap(-1, max(total, 1)))[:total] if self.wanted else None

    def write(self, data: bytes, offset: int, max_chunk_bytes: int) -> None:
        """Write one chunk at its offset and hash it; InvalidVolume for a chunk over the server's
        limit, out of order, or past the declared size."""
        if len(data) > max_chunk_bytes:
            raise InvalidVolume(f"chunk of {len(data)} bytes exceeds {max_chunk_bytes}")
        if offset != self.received:
            raise InvalidVolume(f"chunk at offset {offset}, expected {self.received}")
        end = self.received + len(data)
        if end > self.total:
            raise InvalidVolume(f"chunks run past the declared {self.total} bytes")
        assert self.view is not None  # held until the upload fails or is complete
        self.view[self.received:end] = data
        self.hasher.update(data)
        self.received = end

    def take(self) -> memoryview:
        """The complete bytes; the upload no longer holds them."""
        view, self.view, self.wanted = self.view, None, False
        return view

    def drop(self) -> None:
        """Forget the bytes and give their reservation back."""
        self.view, self.wanted = None, False
        if self.reservation is not None:
            self.reservation.release()


@dataclass
class _SessionVolume:
    future: Future | None  # None once released: the cache may still have it
    cache_hit: bool
    own: Future | None = None  # the session's placeholder (inline), the only future it may fail
    upload: _Upload | None = None
    path: Path | None = None  # by reference: where to reload it from
    failed: BaseException | None = None
    in_flight: int = 0  # questions on this volume not answered yet


class StreamSession:
    def __init__(self, pipeline: Pipeline, context: grpc.ServicerContext):
        self.pipeline = pipeline
        self.context = context
        self.out: queue.Queue = queue.Queue()
        self.volumes: dict[str, _SessionVolume] = {}
        self._newest: str | None = None  # the volume the client sent last
        self._following: _Upload | None = None  # the upload whose hash follows its bytes, until its last chunk
        self._holding: set[int] = set()  # id() of questions counted in their volume's in_flight
        self._outstanding = 0
        self._input_done = False
        self._lock = threading.RLock()
        self.cancelled = False
        context.add_callback(self._on_done)

    # --- request side ---------------------------------------------------------------------
    def read(self, requests: Iterator[pb.AnswerRequest]) -> None:
        try:
            for request in requests:
                self._handle(request)
        except grpc.RpcError:
            pass  # client went away; _on_done ends the session
        except Exception:  # the request iterator itself failed: nothing more can be read
            log.exception("request stream failed")
        finally:
            self._abandon_following()
            # Chunks that never came will not come now: fail the questions waiting on them.
            for vid, entry in list(self.volumes.items()):
                upload = entry.upload
                if upload is not None and upload.wanted:
                    self._fail_volume(vid, InvalidVolume(
                        f"the stream ended after {upload.received} of {upload.total} bytes of volume {vid}"))
            with self._lock:
                self._input_done = True
                finished = self._outstanding == 0
            if finished:
                self.out.put(_END)

    def _handle(self, request: pb.AnswerRequest) -> None:
        """One request; an unexpected error fails its volume (or question) alone."""
        kind = request.WhichOneof("item")
        handlers: dict[str, Callable] = {"volume": self._on_volume, "chunk": self._on_chunk, "question": self._on_question}
        if kind not in handlers:
            return
        message = getattr(request, kind)
        if kind != "chunk":
            self._abandon_following()  # its chunks stopped before the last one: the client gave it up
        try:
            handlers[kind](message)
        except Exception as exc:  # questions answer their own errors; a volume's bug ends that volume
            if kind == "question":
                log.exception("question %r: unexpected error after it was answered", message.question_id)
                return
            try:
                self._fail_volume(message.volume_id, exc)
            except Exception:
                log.exception("cannot report the failure of volume %r", message.volume_id)

    def _on_volume(self, header: pb.VolumeHeader) -> None:
        vid = header.volume_id
        source = header.WhichOneof("source")
        if source == "inline" and header.inline.upload_id and not vid:
            self._on_following_header(header.inline)
            return
        try:
            if not vid:
                raise InvalidVolume("volume header without a volume_id")
            entry = self.volumes.get(vid)
            if entry is not None and (entry.future is not None or entry.failed is not None):
                return  # sent twice on one stream: the first one stands
            # Newest before it can be ready: a volume prepared at once (tiny, or cached) must not
            # be released as "not the newest" before its questions arrive.
            self._supersede(vid)
            if source == "path":
                if "reference" not in self.pipeline.model.transports:
                    raise UnsupportedTransport("this server accepts volumes inline only")
                path = self.pipeline.resolve(header.path)
                entry = self.volumes[vid] = _SessionVolume(None, False, path=path)
                self._acquire(vid, entry, announce=True)
            elif source == "inline":
                if "inline" not in self.pipeline.model.transports:
                    raise UnsupportedTransport("this server accepts volumes by reference only")
                total = header.inline.total_bytes
                if total > self.pipeline.limits.max_volume_bytes:
                    raise VolumeTooLarge(
                        f"inline volume of {total} bytes exceeds this server's limit of {self.pipeline.limits.max_volume_bytes}"
                    )
                filename = header.inline.filename or "volume.nii.gz"
                cached = self.pipeline.cache.peek(vid)
                if cached is not None:
                    # Already prepared from an earlier stream: skip the bytes, reuse the entry.
                    self.volumes[vid] = _SessionVolume(cached, True, upload=_Upload(filename, total))
                    _when_done(cached, lambda f, vid=vid: self._volume_ready(vid, f))
                else:
                    reservation = self.pipeline.inline_budget.reserve(total, f"inline volume {vid}")
                    placeholder = Future()
                    self.volumes[vid] = _SessionVolume(placeholder, False, upload=_Upload(filename, total, reservation), own=placeholder)
                    if total == 0:
                        self._finish_upload(vid)
            else:
                raise InvalidVolume("volume header names neither a path nor an inline volume")
        except CtbenchError as exc:
            self._fail_volume(vid, exc)
        except Exception as exc:  # a bug here fails this volume, not the stream
            self._fail_volume(vid, exc)
        self._supersede(vid)

    def _on_following_header(self, inline: pb.InlineVolume) -> None:
        """An inline volume whose hash follows its bytes: receive them under the upload's name."""
        filename = inline.filename or "volume.nii.gz"
        upload = None
        try:
            if "inline" not in self.pipeline.model.transports:
                raise UnsupportedTransport("this server accepts volumes by reference only")
            if inline.total_bytes > self.pipeline.limits.max_volume_bytes:
                raise VolumeTooLarge(f"inline volume of {inline.total_bytes} bytes exceeds this server's limit of "
                                     f"{self.pipeline.limits.max_volume_bytes}")
            reservation = self.pipeline.inline_budget.reserve(inline.total_bytes, f"inline upload {inline.upload_id!r}")
            upload = _Upload(filename, inline.total_bytes, reservation, upload_id=inline.upload_id)
        except Exception as exc:  # its id is not known yet: the error waits for the last chunk
            upload = _Upload(filename, inline.total_bytes, upload_id=inline.upload_id)
            upload.failed = exc
        self._following = upload
        self._supersede(None)  # the volume before it may go once its questions are done

    def _on_following_chunk(self, chunk: pb.VolumeChunk, upload: _Upload) -> None:
        data = chunk.data  # read once: each access copies
        if upload.failed is None:
            try:
                upload.write(data, chunk.offset, self.pipeline.limits.max_chunk_bytes)
                if chunk.volume_sha256 and upload.received != upload.total:
                    raise InvalidVolume(f"the volume's hash came with byte {upload.received} of {upload.total}, "
                                        "before its last chunk")
            except CtbenchError as exc:
                upload.failed = exc
                upload.drop()
        if upload.failed is not None:
            if chunk.volume_sha256:  # the id its questions will name
                self._following = None
                self._fail_new(chunk.volume_sha256, upload.failed)
            return
        if upload.received < upload.total:
            return
        self._following = None
        digest = "sha256:" + upload.hasher.hexdigest()
        claimed = chunk.volume_sha256
        if not claimed:
            upload.drop()
            self._fail_new(digest, InvalidVolume(
                f"inline upload {upload.upload_id!r} ended without its hash (volume_sha256 on its last chunk)"))
        elif claimed != digest:
            upload.drop()
            self._fail_new(claimed, InvalidVolume(f"volume bytes hash to {digest}, not the {claimed} sent after them"))
        elif claimed in self.volumes:  # sent twice on one stream: the first one stands
            upload.drop()
        else:
            self.volumes[claimed] = _SessionVolume(None, False, upload=upload)
            self._finish_upload(claimed)
        self._supersede(claimed or digest)

    def _fail_new(self, vid: str, exc: BaseException) -> None:
        """Fail a volume this stream has not sent before (one it has keeps its first outcome)."""
        if vid not in self.volumes:
            self._fail_volume(vid, exc)

    def _abandon_following(self) -> None:
        upload, self._following = self._following, None
        if upload is not None:
            upload.drop()

    def _acquire(self, vid: str, entry: _SessionVolume, announce: bool) -> None:
        """Point a by-reference entry at the cache's future (loading the file on a miss)."""
        path = entry.path
        if path is None:  # only by-reference entries (which have a path) are acquired
            raise UnknownVolume(f"volume {vid!r} was not sent by reference")
        future, hit = self.pipeline.volume_for_file(vid, path)
        entry.future, entry.cache_hit = future, hit
        if announce:
            _when_done(future, lambda f, vid=vid: self._volume_ready(vid, f))

    def _on_chunk(self, chunk: pb.VolumeChunk) -> None:
        following = self._following
        if following is not None and chunk.volume_id == following.upload_id:
            self._on_following_chunk(chunk, following)
            return
        self._abandon_following()
        entry = self.volumes.get(chunk.volume_id)
        if entry is not None and entry.failed is not None:
            return  # its error was reported when it failed
        if entry is None or entry.upload is None:
            # Reported and dropped, never recorded: a header that comes later still works, and a
            # by-reference volume's future is the shared cache entry, not ours to fail.
            exc = UnknownVolume(f"chunk for volume {chunk.volume_id!r} without an inline header")
            self._send_volume_status(chunk.volume_id, exc, 0.0, False)
            return
        upload = entry.upload
        if not upload.wanted:  # cache hit, or already complete: bytes not needed
            return
        data = chunk.data  # read once: each access copies
        try:
            upload.write(data, chunk.offset, self.pipeline.limits.max_chunk_bytes)
        except CtbenchError as exc:
            self._fail_volume(chunk.volume_id, exc)
            return
        if upload.received == upload.total:
            self._finish_upload(chunk.volume_id)

    def _finish_upload(self, vid: str) -> None:
        entry = self.volumes[vid]
        upload = entry.upload
        data = upload.take()
        if self.pipeline.limits.trim_heap_after_upload:
            give_back_free_heap()  # the chunk copies freed during the upload (malloc_arenas.py)
        digest = "sha256:" + upload.hasher.hexdigest()
        if digest != vid:
            self._fail_volume(vid, InvalidVolume(f"volume bytes hash to {digest}, not the declared {vid}"))
            return
        reservation = upload.reservation
        # Once prepared (or failed), the raw bytes are no longer held: give them back.
        future, hit = self.pipeline.volume_for_bytes(vid, data, upload.filename, after=reservation.release)
        if hit:  # another stream finished the same volume first
            reservation.release()
        placeholder = entry.own
        entry.future, entry.cache_hit = future, hit
        _when_done(future, lambda f: _chain(f, placeholder))
        _when_done(future, lambda f, vid=vid: self._volume_ready(vid, f))

    def _fail_volume(self, vid: str, exc: BaseException) -> None:
        entry = self.volumes.get(vid)
        if entry is None:
            entry = self.volumes[vid] = _SessionVolume(None, False)
        entry.failed = exc
        if entry.upload is not None:
            entry.upload.drop()
        if entry.own is not None and not entry.own.done():
            entry.own.set_exception(exc)  # questions already waiting on the upload
        # Never the cache's future: other streams share it.
        entry.future = Future()
        entry.future.set_exception(exc)
        self._send_volume_status(vid, exc, 0.0, False)

    def _volume_ready(self, vid: str, future: Future) -> None:
        entry = self.volumes.get(vid)
        exc = future.exception()
        if exc is None:
            result: PreparedVolume = future.result()
            self._send_volume_status(vid, None, result.load_ms, entry.cache_hit if entry else False)
            with self._lock:
                self._release_if_done(vid)
        elif entry is not None and entry.failed is None:
            entry.failed = exc
            self._send_volume_status(vid, exc, 0.0, False)

    def _send_volume_status(self, vid: str, exc: BaseException | None, load_ms: float, hit: bool) -> None:
        status = OK if exc is None else status_from_exception(exc, f"volume {vid}")
        self.out.put(pb.AnswerResponse(volume=pb.VolumeStatus(volume_id=vid, status=status, load_ms=load_ms, cache_hit=hit)))

    def _on_question(self, question: pb.Question) -> None:
        arrived = self.pipeline.clock()
        with self._lock:
            self._outstanding += 1
        item = QuestionItem(question_id=question.question_id, volume_id=question.volume_id, text="")
        try:
            item = QuestionItem(
                question_id=question.question_id,
                text=question.text,
                options=tuple(question.options),
                question_type=question.question_type,
                metadata=dict(question.metadata),
                volume_id=question.volume_id,
            )
            self.pipeline.readiness.require_loaded()
            future, hit = self._volume_for(question, item)
        except Exception as exc:  # a typed error or a bug: this question alone fails
            self._deliver_error(item, exc)
            return
        _when_done(future, lambda f: self._enqueue(item, f, arrived, hit))

    def _volume_for(self, question: pb.Question, item: QuestionItem) -> tuple[Future, bool]:
        """The future of the question's volume (found again if released); counts it in flight."""
        vid = question.volume_id
        entry = self.volumes.get(vid)
        if entry is None:
            raise UnknownVolume(f"question {question.question_id!r} refers to volume {vid!r}, never sent on this stream")
        with self._lock:
            if entry.future is None:
                if entry.path is not None:
                    self._acquire(vid, entry, announce=False)
                else:
                    cached = self.pipeline.cache.peek(vid)
                    if cached is None:
                        raise UnknownVolume(
                            f"question {question.question_id!r}: inline volume {vid!r} was released after its "
                            "earlier questions and has left the cache; send it again before its questions"
                        )
                    entry.future, entry.cache_hit = cached, True
            entry.in_flight += 1
            self._holding.add(id(item))
            return entry.future, entry.cache_hit

    def _enqueue(self, item: QuestionItem, future: Future, arrived: float, hit: bool) -> None:
        try:
            exc = future.exception()
            if exc is not None:
                raise exc
            self.pipeline.submit(item, future.result(), hit, arrived, self._deliver, lambda: self.cancelled)
        except BaseException as exc:  # the volume's error, or a bug: this question alone fails
            self._deliver_error(item, exc)

    # --- releasing volumes ------------------------------------------------------------------
    def _supersede(self, vid: str | None) -> None:
        """`vid` is now the newest volume (None: an upload whose id is not known yet): the one
        before it may go once its questions are done."""
        with self._lock:
            previous, self._newest = self._newest, vid
            if previous is not None and previous != vid:
                self._release_if_done(previous)

    def _release_if_done(self, vid: str) -> None:
        """Drop the stream's hold on `vid` if nothing here needs it (call with the lock held)."""
        entry = self.volumes.get(vid)
        if entry is None or entry.failed is not None or entry.future is None or vid == self._newest:
            return
        if entry.in_flight == 0 and entry.future.done() and (entry.upload is None or not entry.upload.wanted):
            entry.future = entry.own = None  # the placeholder holds the result too

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
                model_version=self.pipeline.model.version,
            )
        except Exception as exc:  # e.g. text that is not valid UTF-8: one bad item, not a dead batcher thread
            answer = pb.Answer(question_id=item.question_id, status=status_from_exception(exc, f"question {item.question_id}"))
        item.prepared = item.state = None  # the answer is out: this item no longer holds the volume
        with self._lock:
            if id(item) in self._holding:
                self._holding.discard(id(item))
                self.volumes[item.volume_id].in_flight -= 1
                self._release_if_done(item.volume_id)
        self.out.put(pb.AnswerResponse(answer=answer))
        with self._lock:
            self._outstanding -= 1
            finished = self._input_done and self._outstanding == 0
        if finished:
            self.out.put(_END)

    def responses(self) -> Iterator[pb.AnswerResponse]:
        try:
            while True:
                message = self.out.get()
                if message is _END or self.cancelled:
                    return
                yield message
        finally:
            # Callbacks on shared cache futures may keep this session alive: let go of volumes.
            with self._lock:
                for entry in self.volumes.values():
                    entry.future = entry.own = None

    def _on_done(self) -> None:
        self.cancelled = True
        self.out.put(_END)


def _when_done(future: Future, callback: Callable[[Future], None]) -> None:
    """Run `callback` now if `future` is done (not kept on the future), else when it is."""
    if future.done():
        callback(future)
    else:
        future.add_done_callback(callback)


def _chain(source: Future, target: Future | None) -> None:
    if target is None or target.done():  # None: the session has already let go of it
        return
    if source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())
