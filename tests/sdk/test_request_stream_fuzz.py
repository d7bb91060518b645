"""Bounded fuzzing of the Answer request stream against a real server over loopback.

Hypothesis builds request streams from well-formed pieces and deliberate damage (wrong hashes,
offsets, sizes, paths, ids, stray chunks, unknown volumes). Whatever it sends, the stream must
end, every question must get exactly one answer with a typed status, an internal error may come
only from the model's own bug, the server must stay healthy, and every inline byte it reserved
must be given back. The budget is fixed (`max_examples`, derandomized), so CI time is bounded.
"""
from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

hypothesis = pytest.importorskip("hypothesis", reason="needs hypothesis (pip install -e '.[test]')")
from ctbench_test_models import EchoModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runner_helpers import wait_for
from sdk_stream import exchange, start, vid, write_volume

from ctbench.v1 import answer_volume_question_pb2 as pb

MAX_INLINE = 1 << 16


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-data")
    good = write_volume(root / "a.nii.gz")
    (root / "loop.nii.gz").symlink_to(root / "loop.nii.gz")
    server, address = start(EchoModel(), root, max_volume_bytes=MAX_INLINE // 2, max_inline_bytes=MAX_INLINE, max_decoded_bytes=1 << 20)
    yield server, address, good
    server.stop(0)


VOLUME_IDS = st.sampled_from(["", "sha256:unknown", "sha256:" + "0" * 64, "not-a-hash"])
PATHS = st.sampled_from(["a.nii.gz", "missing.nii.gz", "../../etc/passwd", "/etc/passwd", "a\x00b", "loop.nii.gz", "", "."])
TEXTS = st.sampled_from(["left or right?", "raise-unsupported", "raise-bug", "", "\u00e9\u4e2d"])


@st.composite
def upload(draw, good: bytes) -> list[pb.AnswerRequest]:
    """An inline upload, intact or damaged in one way."""
    data = draw(st.sampled_from([good, good[: len(good) // 2], b"", b"not a volume"]))
    damage = draw(st.sampled_from(["none", "wrong id", "wrong offset", "too long", "too short", "huge", "stop early"]))
    volume_id = vid(data) if damage != "wrong id" else draw(VOLUME_IDS)
    total = {"too long": len(data) + 7, "too short": max(0, len(data) - 3), "huge": MAX_INLINE * 4}.get(damage, len(data))
    filename = draw(st.sampled_from(["v.nii.gz", "v.nii", "", "v.mha"]))
    reqs = [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=volume_id, inline=pb.InlineVolume(total_bytes=total, filename=filename)))]
    size = draw(st.integers(1, 64))
    offsets = list(range(0, len(data), size))
    if damage == "stop early":
        offsets = offsets[: len(offsets) // 2]
    for offset in offsets:
        sent = offset + 1 if damage == "wrong offset" else offset
        reqs.append(pb.AnswerRequest(chunk=pb.VolumeChunk(volume_id=volume_id, offset=sent, data=data[offset: offset + size])))
    return reqs


@st.composite
def request_stream(draw, good: bytes) -> list[pb.AnswerRequest]:
    known_ids = [vid(good), "sha256:unknown"]
    reqs: list[pb.AnswerRequest] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["upload", "reference", "stray chunk", "empty", "questions"]))
        if kind == "upload":
            part = draw(upload(good))
            known_ids.append(part[0].volume.volume_id)
            reqs += part
        elif kind == "reference":
            volume_id = draw(st.sampled_from([vid(good)]) | VOLUME_IDS)
            known_ids.append(volume_id)
            reqs.append(pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=volume_id, path=draw(PATHS))))
        elif kind == "stray chunk":
            reqs.append(pb.AnswerRequest(chunk=pb.VolumeChunk(volume_id=draw(VOLUME_IDS), offset=draw(st.integers(0, 10)), data=b"x")))
        elif kind == "empty":
            reqs.append(pb.AnswerRequest())
        for _ in range(draw(st.integers(0, 3))):
            reqs.append(pb.AnswerRequest(question=pb.Question(
                question_id=f"q{len(reqs)}", volume_id=draw(st.sampled_from(known_ids)), text=draw(TEXTS),
                options=draw(st.lists(st.sampled_from(["left", "right", ""]), max_size=3)),
            )))
    return reqs


def test_fuzzed_request_streams_end_with_one_typed_answer_per_question(served):
    server, address, good = served

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request_stream(good))
    def check(requests):
        asked = {r.question.question_id: r.question for r in requests if r.WhichOneof("item") == "question"}
        answers, _ = exchange(address, requests, timeout=30)  # a hang fails here
        assert set(answers) == set(asked)
        for qid, answer in answers.items():
            if answer.status.code != 0:
                assert answer.status.error_type and answer.status.message, answer
                if answer.status.error_type == "InternalError":
                    assert asked[qid].text == "raise-bug", (asked[qid], answer.status)
        wait_for(lambda: server.core.inline_budget.in_use == 0, 10, "every inline reservation to be given back")

    check()
    with grpc.insecure_channel(address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    wait_for(lambda: server.core.streams.active == 0, 10, "every stream to give its slot back")
