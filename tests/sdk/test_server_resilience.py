"""A server keeps serving whatever one stream, one batch or one request does, and does not
outlive the runner that started it."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import grpc
import pytest
from ctbench_test_models import EchoModel, HangingModel
from grpc_health.v1 import health_pb2, health_pb2_grpc
from runner_helpers import kill9, pid_alive, wait_for
from sdk_stream import exchange, header, inline, question, start, vid, write_volume

from ctbench.model_servers.sdk import stream_session
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


class IdleStreams:
    """`n` open Answer streams that sent one stray chunk (so the server answered them once) and
    then wait."""

    def __init__(self, address: str, n: int):
        self.release = threading.Event()
        self.channel = grpc.insecure_channel(address)
        stub = pb_grpc.AnswerVolumeQuestionStub(self.channel)
        self.calls, self.first = [], []
        self.answered = 0
        self.refused: list[grpc.RpcError] = []
        for _ in range(n):
            call = stub.Answer(self._requests(), timeout=120)
            self.calls.append(call)
            self.first.append(threading.Thread(target=self._first_response, args=(call,), daemon=True))
            self.first[-1].start()

    def _requests(self):
        yield pb.AnswerRequest(chunk=pb.VolumeChunk(volume_id="sha256:idle", offset=0, data=b"x"))
        self.release.wait(120)

    def _first_response(self, call) -> None:
        try:
            next(call)
            self.answered += 1
        except grpc.RpcError as exc:
            self.refused.append(exc)

    def settle(self, timeout: float = 10) -> None:
        """Wait (at most `timeout` in all) for the first responses; some may never come."""
        deadline = time.monotonic() + timeout
        for thread in self.first:
            thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.release.set()
        for call in self.calls:
            call.cancel()
        self.channel.close()


def test_forty_idle_streams_starve_neither_health_nor_a_normal_request(tmp_path):
    server, address = start(EchoModel(), tmp_path)
    idle = IdleStreams(address, 40)
    try:
        idle.settle()
        assert _health(address) == health_pb2.HealthCheckResponse.SERVING
        data = write_volume(tmp_path / "a.nii.gz")
        answers, _ = exchange(address, [header(vid(data), "a.nii.gz"), question("a::0", vid(data))], timeout=10)
        assert answers["a::0"].status.code == 0
    finally:
        idle.close()
        server.stop(0)


def test_streams_beyond_the_limit_are_refused_and_health_still_answers(tmp_path):
    server, address = start(EchoModel(), tmp_path, max_streams=2)
    idle = IdleStreams(address, 2)
    try:
        idle.settle()
        assert idle.answered == 2
        with pytest.raises(grpc.RpcError) as refused:
            exchange(address, [question("x::0", "sha256:x")], timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "2 Answer streams" in refused.value.details()
        assert _health(address) == health_pb2.HealthCheckResponse.SERVING
    finally:
        idle.close()
    # the idle streams' slots are given back when they end
    wait_for(lambda: server.core.streams.active == 0, 10, "the closed streams to give their slots back")
    try:
        data = write_volume(tmp_path / "a.nii.gz")
        answers, _ = exchange(address, [header(vid(data), "a.nii.gz"), question("a::0", vid(data))], timeout=10)
        assert answers["a::0"].status.code == 0
    finally:
        server.stop(0)


def test_a_hung_answer_hits_the_batch_timeout_and_the_batcher_goes_on(tmp_path):
    server, address = start(HangingModel(), tmp_path)
    try:
        data = write_volume(tmp_path / "a.nii.gz")
        reqs = [header(vid(data), "a.nii.gz"), question("a::hang", vid(data), "hang"), question("a::1", vid(data))]
        answers, _ = exchange(address, reqs, timeout=20)
        assert answers["a::hang"].status.error_type == "AnswerTimeout", answers["a::hang"].status
        assert answers["a::hang"].status.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
        assert "2s" in answers["a::hang"].status.message
        assert answers["a::1"].status.code == 0, answers["a::1"].status
        # and later streams are answered too
        answers, _ = exchange(address, [header(vid(data), "a.nii.gz"), question("a::2", vid(data))], timeout=20)
        assert answers["a::2"].status.code == 0
    finally:
        server.model.unblock.set()
        server.stop(0)


def test_an_unexpected_error_reading_a_question_fails_that_question_alone(tmp_path, monkeypatch):
    real = stream_session.QuestionItem

    def buggy(**fields):
        if fields.get("text") == "boom":
            raise RuntimeError("secret detail of a bug")
        return real(**fields)

    monkeypatch.setattr(stream_session, "QuestionItem", buggy)
    server, address = start(EchoModel(), tmp_path)
    try:
        data = write_volume(tmp_path / "a.nii.gz")
        reqs = [header(vid(data), "a.nii.gz"), question("a::0", vid(data), "boom"), question("a::1", vid(data))]
        answers, _ = exchange(address, reqs, timeout=20)
        assert answers["a::0"].status.error_type == "InternalError"
        assert "secret" not in answers["a::0"].status.message
        assert answers["a::1"].status.code == 0
    finally:
        server.stop(0)


def test_an_unexpected_error_reading_a_chunk_fails_that_volume_alone(tmp_path, monkeypatch):
    real = stream_session._Upload.take
    calls = []

    def buggy(self):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("secret detail of a bug")
        return real(self)

    monkeypatch.setattr(stream_session._Upload, "take", buggy)
    server, address = start(EchoModel(), tmp_path)
    try:
        bad = write_volume(tmp_path / "a.nii.gz")
        good = write_volume(tmp_path / "b.nii.gz", fill=2)
        reqs = inline(vid(bad), bad) + [question("a::0", vid(bad))] + inline(vid(good), good) + [question("b::0", vid(good))]
        answers, _ = exchange(address, reqs, timeout=20)
        assert answers["a::0"].status.error_type == "InternalError"
        assert answers["b::0"].status.code == 0, answers["b::0"].status
    finally:
        server.stop(0)


SPAWNER = """
import os, subprocess, sys
server = subprocess.Popen([sys.executable, "-m", "ctbench", "serve", "chance", "--port", "0",
                           "--port-file", sys.argv[1], "--exit-with-parent"],
                          env={**os.environ, "CTBENCH_PARENT_PID": str(os.getpid())}, stdin=subprocess.DEVNULL)
print(server.pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
def test_a_server_exits_when_its_parent_dies_during_start_up(tmp_path):
    port_file = tmp_path / "port"
    spawner = subprocess.Popen([sys.executable, "-c", SPAWNER, str(port_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    server_pid = int(spawner.stdout.readline())
    kill9(spawner.pid)  # the server is still importing: it has not bound its port yet
    spawner.wait()
    try:
        wait_for(lambda: not pid_alive(server_pid), 30, f"server {server_pid} to exit after its parent died")
    finally:
        if pid_alive(server_pid):
            os.kill(server_pid, 9)


class GatedModel(EchoModel):
    """`preprocess` waits until `gate` is set, so a volume's shared cache entry stays pending."""

    def load(self) -> None:
        super().load()
        self.gate = threading.Event()

    def preprocess(self, volume):
        self.gate.wait(30)
        return super().preprocess(volume)


def test_a_bug_in_one_stream_does_not_fail_the_cache_entry_other_streams_wait_on(tmp_path, monkeypatch):
    server, address = start(GatedModel(), tmp_path)
    real = stream_session._when_done
    calls = []

    def buggy(future, callback):
        calls.append(1)
        if len(calls) == 1:  # the first stream's header, while its volume is still loading
            raise RuntimeError("secret detail of a bug")
        return real(future, callback)

    monkeypatch.setattr(stream_session, "_when_done", buggy)
    try:
        data = write_volume(tmp_path / "a.nii.gz")
        answers, _ = exchange(address, [header(vid(data), "a.nii.gz"), question("a::0", vid(data))], timeout=30)
        assert answers["a::0"].status.error_type == "InternalError"
        server.model.gate.set()
        answers, _ = exchange(address, [header(vid(data), "a.nii.gz"), question("a::1", vid(data))], timeout=30)
        assert answers["a::1"].status.code == 0, answers["a::1"].status
    finally:
        server.model.gate.set()
        server.stop(0)
