"""Streams one server's share of a run over one `Answer` call.

Volumes go first (by reference when the server mounts the data, else inline in chunks), then
the questions that refer to them. Inline, to a server whose card declares `inline_hash_follows`,
a volume whose id is not known yet is sent while it is read, its hash on its last chunk (one
pass over the file); to any other server, or when the id is known, the hash leads the header. At most `window` questions are in flight, so the per-item
deadline measures the server, not a queue the client built. Every question ends as exactly one
outcome handed to `on_outcome`: an answer, a per-item error, or a deadline miss. A volume the
runner cannot read fails its own questions; a question too large for one gRPC message fails
alone and is never sent (the server would abort the whole stream). If the stream breaks (the
server died), `stream()` returns the items that never got an outcome.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

from ctbench.datasets.qa_items import QAItem
from ctbench.errors import CtbenchError, QuestionTooLarge
from ctbench.runners.channels import open_channel
from ctbench.runners.item_error import ItemError
from ctbench.runners.ledger import PredictionRecord
from ctbench.runners.volume_source import VolumeBytes, VolumeRead, VolumeSource
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

CHUNK_BYTES = 1 << 20  # well under gRPC's 4 MiB default message limit
MAX_MESSAGE_BYTES = 4 << 20  # gRPC's default receive limit, which the SDK's servers keep


@dataclass
class Outcome:
    item: QAItem
    prediction: str
    error: ItemError | None  # None: answered
    timings: dict = field(default_factory=dict)
    model_version: str = ""

    def to_record(self, server: str, attempt: int) -> PredictionRecord:
        """The ledger record of this outcome (the published fields plus timings and provenance)."""
        item = self.item
        return PredictionRecord(
            question_id=item.question_id,
            prediction=self.prediction if self.error is None else None,
            status="ok" if self.error is None else "error",
            error=self.error,
            extra={
                "case_id": item.case_id, "image_path": item.image_path, "question": item.question,
                "answer": item.answer, "timings": self.timings, "server": server,
                "model_version": self.model_version, "options": list(item.options),
                "question_type": item.question_type, "categories": list(item.categories), "attempt": attempt,
            },
        )


@dataclass
class VolumeGroup:
    path: Path  # absolute path on the runner host
    relative: str | None  # path relative to the data root, when inside it
    items: list[QAItem]


def describe(address: str, timeout_s: float = 10.0) -> dict:
    """The server's card in the dict form the runner records and negotiates on (`card_dict`)."""
    from ctbench.compatibility import card_dict

    with open_channel(address) as channel:
        card = pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=timeout_s)
    return card_dict(card)


class InlinePrefetch:
    """Reads and hashes the next inline volume while the current one is uploaded.

    With the hash in the header the upload waits for the whole file to be read and hashed, so
    without this every volume would wait for its read. One volume ahead at most (memory: the
    volume being sent and the next one), on one background thread; `get(path)` returns the
    volume's bytes (its own read, or the one made ahead) and starts reading the one after it.
    `open(path)` is the one-pass form: the volume's read (its sender reads it as it sends), and
    the next one read here once this one has been.
    """

    def __init__(self, source: VolumeSource, paths: list[Path]):
        self.source = source
        self._order = list(paths)
        self._next = 0
        self._ahead: tuple[Path, Future] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctbench-prefetch")
        self._closed = threading.Event()

    def __enter__(self) -> InlinePrefetch:
        return self

    def __exit__(self, *exc) -> None:
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def get(self, path: Path) -> VolumeBytes:
        ahead, self._ahead = self._ahead, None
        while self._next < len(self._order) and self._order[self._next] != path:
            self._next += 1
        self._next += 1
        if self._next < len(self._order):
            following = self._order[self._next]
            self._ahead = (following, self._pool.submit(self.source.get, following))
        if ahead is not None and ahead[0] == path:
            return ahead[1].result()  # a CtbenchError raised ahead is raised here, for this volume
        return self.source.get(path)

    def open(self, path: Path) -> VolumeRead:
        ahead, self._ahead = self._ahead, None
        while self._next < len(self._order) and self._order[self._next] != path:
            self._next += 1
        self._next += 1
        read = ahead[1].result() if ahead is not None and ahead[0] == path else self.source.open(path)
        if self._next < len(self._order):
            following = self._order[self._next]
            self._ahead = (following, self._pool.submit(self._after, read, following))
        return read

    def _after(self, read: VolumeRead, following: Path) -> VolumeRead:
        """`following`'s read, done once its sender has read `read` (an error is that volume's own)."""
        while not read.wait_read_elsewhere(0.2):
            if self._closed.is_set():  # the stream ended before its sender read it all
                raise CtbenchError(f"{following}: not read, the stream ended")
        ahead = self.source.open(following)
        try:
            ahead.wait()
        except CtbenchError:
            pass  # raised again to the volume's sender
        return ahead


def _chunk_request(volume_id: str, offset: int, piece: memoryview) -> pb.AnswerRequest:
    """A chunk message, its fields set in place: `AnswerRequest(chunk=VolumeChunk(...))` copies
    the submessage, 1 MiB each time (about 2 ms per chunk with protobuf's upb, ten times this)."""
    request = pb.AnswerRequest()
    chunk = request.chunk
    chunk.volume_id, chunk.offset = volume_id, offset
    chunk.data = bytes(piece)  # the one copy, into the message
    return request


def _pieces(data: memoryview) -> Iterator[tuple[int, memoryview]]:
    """(offset, view) of whole bytes in CHUNK_BYTES pieces; nothing for an empty volume."""
    for offset in range(0, len(data), CHUNK_BYTES):
        yield offset, data[offset: offset + CHUNK_BYTES]


def _chained(first: memoryview, rest: Iterator[memoryview]) -> Iterator[tuple[int, memoryview]]:
    """(offset, view) of a read's chunks, the first one already taken."""
    offset = 0
    for piece in itertools.chain((first,), rest):
        yield offset, piece
        offset += len(piece)


class ServerStream:
    def __init__(
        self,
        address: str,
        source: VolumeSource,
        on_outcome: Callable[[Outcome], None],
        use_reference: bool,
        window: int = 16,
        deadline_s: float = 600.0,
        stop: threading.Event | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        hash_follows: bool = False,
    ):
        """`hash_follows`: the server's card declares `inline_hash_follows` (negotiated)."""
        self.address = address
        self.hash_follows = hash_follows
        self.source = source
        self.on_outcome = on_outcome
        self.use_reference = use_reference
        self.window = max(1, window)
        self.deadline_s = deadline_s
        self.max_message_bytes = max_message_bytes
        self.stop = stop or threading.Event()
        self._outstanding: dict[str, tuple[QAItem, float]] = {}
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(self.window)
        self._all_sent = threading.Event()
        self._finished = threading.Event()
        self.bytes_sent = 0
        self.broken = False
        self._call = None

    # --- outcomes ---------------------------------------------------------------------------
    def _settle(self, question_id: str) -> tuple[QAItem, float] | None:
        """Remove a question from the in-flight set; (item, seconds since sent) or None."""
        with self._lock:
            entry = self._outstanding.pop(question_id, None)
            if entry is not None:
                self._slots.release()
            if self._all_sent.is_set() and not self._outstanding:
                self._finished.set()
        return (entry[0], time.monotonic() - entry[1]) if entry else None

    def _fail_now(self, item: QAItem, exc: CtbenchError) -> None:
        self.on_outcome(Outcome(item, "", ItemError.of(exc)))

    def _watch_deadlines(self) -> None:
        while not self._finished.wait(0.2):
            now = time.monotonic()
            with self._lock:
                late = [qid for qid, (_, sent) in self._outstanding.items() if now - sent > self.deadline_s]
            for qid in late:
                settled = self._settle(qid)
                if settled is not None:
                    self.on_outcome(Outcome(settled[0], "", ItemError.deadline(self.deadline_s)))
        # Every question has its outcome: stop waiting for answers that may never come.
        if self._call is not None:
            self._call.cancel()

    # --- requests ---------------------------------------------------------------------------
    def _fail_unsent(self, items: list[QAItem], unsent: list[QAItem], exc: CtbenchError) -> bool:
        """Give items that were never sent their error; False if the stream is already over
        (stream() then hands them back instead)."""
        with self._lock:
            if self._finished.is_set():
                return False
            for item in items:
                unsent.remove(item)
        for item in items:
            self._fail_now(item, exc)
        return True

    def _requests(self, groups: list[VolumeGroup], unsent: list[QAItem]) -> Iterator[pb.AnswerRequest]:
        inline = [g.path for g in groups if not (self.use_reference and g.relative is not None)]
        with InlinePrefetch(self.source, inline) as prefetch:
            yield from self._group_requests(groups, unsent, prefetch)

    def _group_requests(self, groups: list[VolumeGroup], unsent: list[QAItem], prefetch: InlinePrefetch) -> Iterator[pb.AnswerRequest]:
        for number, group in enumerate(groups):
            by_reference = self.use_reference and group.relative is not None
            if by_reference:
                try:  # the server reads the file: the runner needs its id, not its bytes
                    volume_id = self.source.volume_id(group.path)
                except CtbenchError as exc:
                    if not self._fail_unsent(group.items, unsent, exc):
                        return
                    continue
                yield pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=volume_id, path=group.relative))
            else:
                sent: list[str] = []
                try:
                    yield from self._inline_requests(group.path, f"upload-{number}", prefetch, sent)
                except CtbenchError as exc:  # the file could not be read: its questions fail, not sent
                    if not self._fail_unsent(group.items, unsent, exc):
                        return
                    continue
                volume_id = sent[0]
            for item in group.items:
                request = pb.AnswerRequest(question=pb.Question(
                    question_id=item.question_id, volume_id=volume_id, text=item.question,
                    options=list(item.options), question_type=item.question_type,
                ))
                size = request.ByteSize()
                if size > self.max_message_bytes:  # the server would abort the whole stream
                    if not self._fail_unsent([item], unsent, QuestionTooLarge(
                        f"{item.question_id}: the question is {size} bytes as a message, over the "
                        f"{self.max_message_bytes}-byte gRPC message limit; not sent"
                    )):
                        return
                    continue
                while not self._slots.acquire(timeout=0.2):
                    if self.stop.is_set() or self._finished.is_set():
                        return
                if self.stop.is_set():
                    return
                with self._lock:
                    if self._finished.is_set():
                        return  # the stream broke: stream() hands this item back
                    self._outstanding[item.question_id] = (item, time.monotonic())
                    unsent.remove(item)
                yield request
        with self._lock:
            self._all_sent.set()
            if not self._outstanding:
                self._finished.set()
        # Keep the send side open until every answer is in, then half-close.
        while not self._finished.wait(0.2):
            if self.stop.is_set():
                return

    def _inline_requests(self, path: Path, upload_id: str, prefetch: InlinePrefetch, sent: list[str]) -> Iterator[pb.AnswerRequest]:
        """One inline volume's header and chunks; appends its id to `sent` once all are out.

        Nothing is sent before the file's first bytes are read, so a file that cannot be opened
        fails before its header; one that fails later leaves its upload unfinished (a server
        that takes the hash after the bytes drops it at the next header)."""
        read = prefetch.open(path) if self.hash_follows else None
        volume_id: str | None
        if read is None:
            whole = prefetch.get(path)  # read and hashed before the header
            volume_id, size, pieces = whole.volume_id, len(whole.data), _pieces(whole.data)
        else:
            views = read.chunks(CHUNK_BYTES)
            first = next(views)  # an error opening or reading the file is raised here
            pieces = _chained(first, views)
            volume_id, size = read.id_now, read.size
        if volume_id is not None:  # the hash leads the header
            yield pb.AnswerRequest(volume=pb.VolumeHeader(
                volume_id=volume_id, inline=pb.InlineVolume(total_bytes=size, filename=path.name)))
            for offset, piece in pieces:
                if piece:
                    self.bytes_sent += len(piece)
                    yield _chunk_request(volume_id, offset, piece)
            sent.append(volume_id)
            return
        assert read is not None
        yield pb.AnswerRequest(volume=pb.VolumeHeader(
            inline=pb.InlineVolume(total_bytes=size, filename=path.name, upload_id=upload_id)))
        for offset, piece in pieces:
            request = _chunk_request(upload_id, offset, piece)
            if offset + len(piece) == size:  # the last chunk carries the hash of all the bytes
                volume_id = request.chunk.volume_sha256 = read.wait().volume_id
            self.bytes_sent += len(piece)
            yield request
        assert volume_id is not None
        sent.append(volume_id)

    def stream(self, groups: list[VolumeGroup]) -> list[QAItem]:
        """Run the groups; return the items left without an outcome if the stream broke."""
        unsent = [item for group in groups for item in group.items]
        watcher = threading.Thread(target=self._watch_deadlines, daemon=True)
        watcher.start()
        broken = False
        with open_channel(self.address) as channel:
            call = self._call = pb_grpc.AnswerVolumeQuestionStub(channel).Answer(self._requests(groups, unsent))
            try:
                for response in call:
                    if response.WhichOneof("item") != "answer":
                        continue
                    answer = response.answer
                    settled = self._settle(answer.question_id)
                    if settled is None:
                        continue  # already settled (deadline) or unknown: never twice
                    item, elapsed = settled
                    error = ItemError.from_status(answer.status) if answer.status.code != 0 else None
                    timings = MessageToDict(answer.timings, preserving_proto_field_name=True, always_print_fields_with_no_presence=True) if answer.HasField("timings") else {}
                    timings["roundtrip_ms"] = elapsed * 1e3
                    self.on_outcome(Outcome(item, answer.text if error is None else "", error, timings, answer.model_version))
                    if self._finished.is_set():
                        break
            except grpc.RpcError:
                broken = not self._finished.is_set()  # cancelled by us once every question was settled
            finally:
                self._finished.set()
                call.cancel()
        with self._lock:  # _finished is set: the request generator no longer moves items
            left = [item for item, _ in self._outstanding.values()] + list(unsent)
            self._outstanding.clear()
        self.broken = broken
        return left  # empty unless the stream broke or the run was stopped
