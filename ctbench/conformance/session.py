"""A conformance session: the channel and stubs for one server, its model card, probe-volume
staging, and the helpers that build requests and read what came back on a stream."""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2_grpc

from ctbench.conformance import probe_volumes as probes
from ctbench.status_codes import code_name
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

REFERENCE, INLINE = pb.VOLUME_TRANSPORT_REFERENCE, pb.VOLUME_TRANSPORT_INLINE
DEFAULT_CHUNK = 1 << 20
GRPC_MESSAGE_LIMIT = 4 << 20
STAGING = ".ctbench-conformance"
OPTIONS = ("left", "right")
ORIENTATION_QUESTION = "Which lung contains the pulmonary nodule?"


@dataclass
class ConformanceOptions:
    data_root: Path | None = None  # the host folder the server mounts as its data root
    timeout_s: float = 60.0  # bound on each stream
    health_timeout_s: float = 60.0  # bound on waiting for SERVING
    only: tuple[str, ...] = ()  # run these checks only (names from CHECKS)
    slow_s: float = 5.0  # an answer (or InspectInput) slower than this gets a warning


@dataclass
class ServerWatch:
    """How the checker sees the server's process, when it started it (`--serve`, `--image`):
    whether it still runs, its exit code and the last lines of its log."""

    alive: Callable[[], bool]
    logs: Callable[[], str]
    exit_code: Callable[[], int | None] = lambda: None
    what: str = "server"  # "server process" or "container", for messages

    def death_note(self) -> str | None:
        """None while the server runs; else one message with its exit code and log tail."""
        try:
            if self.alive():
                return None
            code = self.exit_code()
            tail = self.logs().strip()
        except Exception as exc:
            return f"the {self.what} is gone (its state could not be read: {exc!r})"
        said = f"exited with code {code}" if code is not None else "is no longer running"
        return f"the {self.what} {said}" + (f"; the last lines of its log:\n{tail}" if tail else "; its log is empty")


@dataclass
class StreamResult:
    answers: dict[str, list[pb.Answer]] = field(default_factory=dict)
    volumes: dict[str, list[pb.VolumeStatus]] = field(default_factory=dict)
    error: grpc.RpcError | None = None
    elapsed_s: dict[str, float] = field(default_factory=dict)  # question id -> seconds from the stream's start
    timeout_s: float = 0.0

    def one(self, question_id: str) -> pb.Answer | None:
        found = self.answers.get(question_id) or []
        return found[0] if found else None

    @property
    def error_text(self) -> str:
        if self.error is None:
            return ""
        return f"{self.error.code().name}: {self.error.details()}" + timeout_hint(self.error, self.timeout_s)


class Context:
    """Everything the checks share for one server."""

    def __init__(self, address: str, options: ConformanceOptions):
        self.address = address
        self.options = options
        self.channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 16 << 20)])
        self.stub = pb_grpc.AnswerVolumeQuestionStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.card: pb.ModelCard | None = None
        self.staged: dict[str, str] = {}  # probe name -> path relative to the data root
        self._counter = 0
        self.slowest: list[tuple[float, str]] = []  # (seconds, what) of the current check's calls
        self.watch: ServerWatch | None = None

    # --- what the server says it supports ------------------------------------------------
    def describe(self) -> pb.ModelCard:
        if self.card is None:
            self.card = self.stub.Describe(pb.DescribeRequest(), timeout=self.options.timeout_s)
        return self.card

    @property
    def transports(self) -> set[int]:
        return set(self.card.transports) if self.card is not None else set()

    @property
    def chunk_bytes(self) -> int:
        declared = self.card.max_chunk_bytes if self.card is not None else 0
        return min(declared or DEFAULT_CHUNK, DEFAULT_CHUNK)

    def probe_transport(self) -> str | None:
        """How checks send their probe volumes: inline if possible, else by reference."""
        if INLINE in self.transports:
            return "inline"
        if REFERENCE in self.transports and self.options.data_root is not None:
            return "reference"
        return None

    # --- building requests -----------------------------------------------------------------
    def qid(self, stem: str) -> str:
        self._counter += 1
        return f"conformance-{stem}::{self._counter}"

    def stage(self, probe: probes.ProbeVolume) -> str:
        """Write `probe` under the data root; return its path relative to the root."""
        if probe.name not in self.staged:
            folder = Path(self.options.data_root) / STAGING
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o755)
            path = folder / probe.filename
            path.write_bytes(probe.data)
            path.chmod(0o644)  # containers read it as a non-root user
            self.staged[probe.name] = f"{STAGING}/{probe.filename}"
        return self.staged[probe.name]

    def unstage(self) -> None:
        if self.staged and self.options.data_root is not None:
            shutil.rmtree(Path(self.options.data_root) / STAGING, ignore_errors=True)
        self.staged.clear()

    def volume_requests(self, probe: probes.ProbeVolume, transport: str) -> list[pb.AnswerRequest]:
        if transport == "reference":
            return [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=probe.volume_id, path=self.stage(probe)))]
        return inline_requests(probe.volume_id, probe.data, probe.filename, self.chunk_bytes)

    def exchange(self, requests: Iterable[pb.AnswerRequest]) -> StreamResult:
        result = StreamResult(timeout_s=self.options.timeout_s)
        start = time.monotonic()
        try:
            for response in self.stub.Answer(iter(list(requests)), timeout=self.options.timeout_s):
                kind = response.WhichOneof("item")
                if kind == "answer":
                    qid = response.answer.question_id
                    result.elapsed_s.setdefault(qid, time.monotonic() - start)
                    result.answers.setdefault(qid, []).append(response.answer)
                elif kind == "volume":
                    result.volumes.setdefault(response.volume.volume_id, []).append(response.volume)
        except grpc.RpcError as exc:
            result.error = exc
        if result.elapsed_s:
            qid, seconds = max(result.elapsed_s.items(), key=lambda kv: kv[1])
            self.timed(seconds, f"answer to {qid}")
        return result

    def timed(self, seconds: float, what: str) -> None:
        """Record one call's time for the check's timing line and slow-answer warning."""
        self.slowest.append((seconds, what))

    def close(self) -> None:
        self.unstage()
        self.channel.close()


def inline_requests(volume_id: str, data: bytes, filename: str, chunk: int) -> list[pb.AnswerRequest]:
    requests = [pb.AnswerRequest(volume=pb.VolumeHeader(
        volume_id=volume_id, inline=pb.InlineVolume(total_bytes=len(data), filename=filename)))]
    for offset in range(0, len(data), chunk):
        requests.append(pb.AnswerRequest(chunk=pb.VolumeChunk(
            volume_id=volume_id, offset=offset, data=data[offset:offset + chunk])))
    return requests


def question(qid: str, volume_id: str, text: str = ORIENTATION_QUESTION,
             options: tuple[str, ...] = OPTIONS, question_type: str = "laterality") -> pb.AnswerRequest:
    return pb.AnswerRequest(question=pb.Question(
        question_id=qid, volume_id=volume_id, text=text, options=list(options), question_type=question_type))


def timeout_hint(error: grpc.RpcError, timeout_s: float) -> str:
    """A hint when the checker's own deadline (`--timeout`) is what ended the call."""
    if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
        return ""
    return (f" (the call ran past --timeout {timeout_s:g}s: a model that is slow but working needs a larger "
            "--timeout; one that never answers is hung)")


def status_name(status: pb.ItemStatus) -> str:
    return code_name(status.code)


def describe_answer(answer: pb.Answer | None) -> str:
    if answer is None:
        return "no answer"
    if answer.status.code == 0:
        return f"OK {answer.text!r}"
    return f"{status_name(answer.status)} {answer.status.error_type}: {answer.status.message}"


def declined(answer: pb.Answer | None) -> bool:
    """The model received the item and deliberately declined the question (a typed
    UnsupportedQuestion): the transport worked, the model just does not answer that question."""
    return answer is not None and answer.status.code != 0 and answer.status.error_type == "UnsupportedQuestion"


@dataclass
class AnswerVerdict:
    """How a stream answered the questions it was asked."""

    problems: list[str] = field(default_factory=list)
    declined: int = 0  # typed UnsupportedQuestion
    answered: list[pb.Answer] = field(default_factory=list)  # answered once, OK


def judge_answers(result: StreamResult, qids: Iterable[str], label: str = "") -> AnswerVerdict:
    """Each question answered exactly once, with OK or a typed UnsupportedQuestion; a problem
    names its question by id, after `label` when one is given ("an open question (q1)")."""
    verdict = AnswerVerdict()
    for qid in qids:
        name = f"{label} ({qid})" if label else qid
        got = result.answers.get(qid, [])
        if not got:
            verdict.problems.append(f"{name}: no answer")
        elif len(got) > 1:
            verdict.problems.append(f"{name}: answered {len(got)} times")
        elif declined(got[0]):
            verdict.declined += 1
        elif got[0].status.code != 0:
            verdict.problems.append(f"{name}: {describe_answer(got[0])}")
        else:
            verdict.answered.append(got[0])
    return verdict


def expect_ok(result: StreamResult, qids: Iterable[str], problems: list[str]) -> int:
    """`judge_answers`, and the stream itself and every volume status ended OK. Returns how many
    the model declined."""
    if result.error is not None:
        problems.append(f"the stream ended with {result.error_text}")
    verdict = judge_answers(result, qids)
    problems += verdict.problems
    for statuses in result.volumes.values():
        for status in statuses:
            if status.status.code != 0:
                problems.append(f"volume {status.volume_id[:19]}...: {status_name(status.status)} {status.status.message}")
    return verdict.declined
