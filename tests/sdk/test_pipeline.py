"""The pipeline (model_servers/sdk/pipeline.py) is the one owner of stage order, stage timings and
readiness: health, Describe (its `ctbench-readiness` metadata), the Answer stream and `Model.ready`
all read the same readiness, and
every stage a question goes through is timed there, in order. Real servers on loopback."""
from __future__ import annotations

import queue
import threading

import grpc
import numpy as np
import pytest
from ctbench_test_models import EchoModel, NeverReadyModel
from grpc_health.v1 import health_pb2, health_pb2_grpc
from runner_helpers import wait_for
from sdk_stream import exchange, header, question, start, vid, write_volume

from ctbench.model_servers.sdk import ModelServer, ServerOptions
from ctbench.model_servers.sdk.pipeline import STAGES, Readiness
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GatedModel(EchoModel):
    """EchoModel whose `load()` waits until the test opens the gate."""

    name = "gated"

    def __init__(self, **options):
        super().__init__(**options)
        self.gate = threading.Event()

    def load(self) -> None:
        assert self.gate.wait(30), "the test never opened the gate"
        super().load()


class StagedModel(EchoModel):
    """EchoModel that writes down each stage the pipeline calls, in the order it calls them."""

    name = "staged"

    def __init__(self, **options):
        super().__init__(**options)
        self.calls: list[str] = []

    def load(self) -> None:
        super().load()
        self.calls.append("load")

    def preprocess(self, volume):
        self.calls.append("preprocess")
        return super().preprocess(volume)

    def encode_volume(self, prepared):
        self.calls.append("encode_volume")
        return np.asarray(prepared.array).shape

    def answer(self, batch):
        self.calls.append("answer")
        return super().answer(batch)


def _watch_health(address: str, seen: queue.Queue) -> grpc.Channel:
    """Stream health changes for "" into `seen` (a Watch opened before shutdown keeps hearing)."""
    channel = grpc.insecure_channel(address)

    def run():
        try:
            for reply in health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service="")):
                seen.put(reply.status)
        except grpc.RpcError:
            seen.put(None)

    threading.Thread(target=run, daemon=True).start()
    return channel


def _next(seen: queue.Queue, want) -> list:
    """Statuses from `seen` up to and including `want`."""
    got = []
    while True:
        status = seen.get(timeout=20)
        got.append(status)
        if status == want or status is None:
            return got


def _describe(address: str) -> tuple[pb.ModelCard, str]:
    """The card, and the readiness Describe reports with it (its trailing metadata)."""
    with grpc.insecure_channel(address) as channel:
        card, call = pb_grpc.AnswerVolumeQuestionStub(channel).Describe.with_call(pb.DescribeRequest(), timeout=5)
    return card, dict(call.trailing_metadata())["ctbench-readiness"]


def test_health_describe_and_questions_follow_the_one_readiness_through_load_and_shutdown(tmp_path):
    model = GatedModel()
    server = ModelServer(model, ServerOptions(port=0, data_root=tmp_path, grace_s=2.0))
    states: list[str] = []
    server.pipeline.readiness.subscribe(states.append)
    address = f"127.0.0.1:{server.start()}"
    seen: queue.Queue = queue.Queue()
    watch = _watch_health(address, seen)
    try:
        # Loading: health NOT_SERVING, Describe says "loading" (with the declared card), a
        # question ModelNotReady.
        assert seen.get(timeout=20) == NOT_SERVING
        card, readiness = _describe(address)
        assert (card.name, readiness) == ("gated", "loading")
        answers, _ = exchange(address, [question("q::0", "sha256:none")])
        assert answers["q::0"].status.error_type == "ModelNotReady"
        assert not model.ready and not server.loaded.is_set() and server.pipeline.readiness.state == "loading"

        # Loaded: all of them turn at once.
        model.gate.set()
        assert _next(seen, SERVING)[-1] == SERVING
        assert server.loaded.is_set() and model.ready
        assert _describe(address)[1] == "serving"
        data = write_volume(tmp_path / "a.nii.gz")
        answers, _ = exchange(address, [header(vid(data), "a.nii.gz"), question("a::0", vid(data))])
        assert answers["a::0"].status.code == 0

        # Shutdown: health NOT_SERVING to the watcher that is still open, then the server stops.
        server.stop()
        assert _next(seen, NOT_SERVING)[-1] == NOT_SERVING
        assert not model.ready
    finally:
        server.stop(0)
        watch.close()
    assert states == [Readiness.LOADING, Readiness.SERVING, Readiness.DRAINING, Readiness.STOPPED]


def test_a_failed_load_is_one_reason_read_by_health_describe_and_questions(tmp_path):
    model = NeverReadyModel()
    server = ModelServer(model, ServerOptions(port=0))
    address = f"127.0.0.1:{server.start()}"
    try:
        wait_for(lambda: server.pipeline.load_error is not None, 20, "the load to fail")
        reason = server.pipeline.load_error
        assert "weights missing" in reason
        assert server.pipeline.readiness.state == Readiness.FAILED and not model.ready
        with grpc.insecure_channel(address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        assert status == NOT_SERVING
        card, readiness = _describe(address)
        assert (card.name, readiness) == ("never-ready", "failed")
        answers, _ = exchange(address, [question("q::0", "sha256:none")])
        assert answers["q::0"].status.error_type == "ModelNotReady"
        assert answers["q::0"].status.message == reason
    finally:
        server.stop(0)


def test_the_pipeline_runs_and_times_every_stage_in_order(tmp_path):
    model = StagedModel()
    server, address = start(model, tmp_path)
    try:
        data = write_volume(tmp_path / "a.nii.gz", shape=(3, 4, 5))
        requests = [header(vid(data), "a.nii.gz"), question("a::0", vid(data)), question("a::1", vid(data))]
        answers, volumes = exchange(address, requests)
        assert all(a.status.code == 0 for a in answers.values()), answers
        totals = server.pipeline.stage_times.totals()
    finally:
        server.stop(0)
    assert [t.stage for t in totals] == list(STAGES) == ["load", "decode", "preprocess", "encode_volume", "answer"]
    counts = {t.stage: t.count for t in totals}
    assert counts["load"] == counts["decode"] == counts["preprocess"] == counts["encode_volume"] == 1
    assert counts["answer"] == len(model.batches) >= 1
    assert all(t.total_ms >= 0 for t in totals)
    # The model saw the stages in the pipeline's order, each volume stage once per volume.
    assert model.calls[:3] == ["load", "preprocess", "encode_volume"] and set(model.calls[3:]) == {"answer"}
    # An answer's preprocess_ms is the volume's load as the pipeline timed it (its status says the same).
    (status,) = volumes
    assert status.status.code == 0 and not status.cache_hit
    for answer in answers.values():
        assert answer.timings.preprocess_ms == pytest.approx(status.load_ms)
        assert answer.timings.batch_size >= 1 and answer.timings.inference_ms >= 0


def test_a_volume_served_from_the_cache_is_not_prepared_or_timed_again(tmp_path):
    model = StagedModel()
    server, address = start(model, tmp_path)
    try:
        data = write_volume(tmp_path / "a.nii.gz")
        for n in range(2):  # two streams, the same volume
            answers, volumes = exchange(address, [header(vid(data), "a.nii.gz"), question(f"a::{n}", vid(data))])
            assert answers[f"a::{n}"].status.code == 0
        counts = {t.stage: t.count for t in server.pipeline.stage_times.totals()}
    finally:
        server.stop(0)
    assert counts["decode"] == counts["preprocess"] == counts["encode_volume"] == 1
    assert volumes[0].cache_hit and answers["a::1"].timings.volume_cache_hit
    assert answers["a::1"].timings.preprocess_ms == 0.0
    assert model.calls.count("preprocess") == 1
