"""The SDK through its real servicer, in-process, over a real loopback socket."""
from __future__ import annotations

import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
from ctbench_test_models import EchoModel, NeverReadyModel
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sdk_stream import exchange, inline, question, start, vid, write_volume

from ctbench.errors import PortInUse
from ctbench.model_servers.sdk import ModelServer, ServerOptions
from ctbench.preprocess.volume import Volume, save_volume
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]


@pytest.fixture
def data_root(tmp_path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def echo(data_root):
    server, address = start(EchoModel(), data_root)
    yield server, address
    server.stop(0)


def test_describe_reports_a_complete_card(echo):
    _, address = echo
    with grpc.insecure_channel(address) as channel:
        card = pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=5)
    assert card.name == "echo" and card.version == "test-1"
    assert card.max_batch_size == 4
    assert set(card.transports) == {pb.VOLUME_TRANSPORT_REFERENCE, pb.VOLUME_TRANSPORT_INLINE}
    assert card.max_chunk_bytes < 4 << 20
    assert card.input.kind == "volume3d"
    assert card.sdk_version


def test_health_is_not_serving_until_the_model_loads(data_root):
    server, address = start(NeverReadyModel(), data_root)
    try:
        with grpc.insecure_channel(address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        data = b"x"
        answers, _ = exchange(address, inline(vid(data), data) + [question("q0", vid(data))])
        assert answers["q0"].status.error_type == "ModelNotReady"
        assert "bench models fetch" in answers["q0"].status.message
    finally:
        server.stop(0)


def test_health_turns_serving_after_load(echo):
    _, address = echo
    with grpc.insecure_channel(address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="ctbench.v1.AnswerVolumeQuestion"), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_by_reference_volume_serves_many_questions_loaded_once(echo, data_root):
    server, address = echo
    data = write_volume(data_root / "a.nii.gz")
    reqs = [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=vid(data), path="a.nii.gz"))]
    reqs += [question(f"a::{i}", vid(data)) for i in range(10)]
    answers, volumes = exchange(address, reqs)
    assert sorted(answers) == sorted(f"a::{i}" for i in range(10))
    assert all(a.status.code == 0 and a.text.endswith("|(4, 5, 6)|120") for a in answers.values())
    assert server.model.preprocess_calls == 1
    assert [v.status.code for v in volumes] == [0]
    assert max(server.model.batches) > 1, "questions on one volume should be batched"


def test_inline_volume_larger_than_the_grpc_message_limit_arrives_in_chunks(echo, data_root):
    _server, address = echo
    rng = np.random.default_rng(0)
    path = data_root / "big.nii"  # uncompressed: ~6 MiB, over gRPC's 4 MiB default
    save_volume(Volume(rng.integers(-1000, 1000, size=(80, 128, 256), dtype=np.int16)), path)
    data = path.read_bytes()
    assert len(data) > 4 << 20
    answers, _ = exchange(address, inline(vid(data), data, "big.nii") + [question("b::0", vid(data))])
    assert answers["b::0"].status.code == 0, answers["b::0"].status.message
    assert "(80, 128, 256)" in answers["b::0"].text


def test_a_volume_cached_by_one_stream_is_reused_by_the_next(echo, data_root):
    server, address = echo
    data = write_volume(data_root / "a.nii.gz")
    exchange(address, inline(vid(data), data) + [question("a::0", vid(data))])
    answers, _volumes = exchange(address, inline(vid(data), data) + [question("a::1", vid(data))])
    assert answers["a::1"].status.code == 0
    assert answers["a::1"].timings.volume_cache_hit
    assert server.model.preprocess_calls == 1


BAD_ITEMS = [
    # (name, how to build the requests, expected error type)
    ("unknown volume", lambda root: [question("x::0", "sha256:nothing")], "UnknownVolume"),
    ("path outside the data root", lambda root: [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id="sha256:o", path="../../etc/passwd")), question("x::0", "sha256:o")], "VolumeOutsideDataRoot"),
    ("symlink loop", lambda root: [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id="sha256:l", path=_loop(root))), question("x::0", "sha256:l")], "InvalidVolume"),
    ("missing file", lambda root: [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id="sha256:m", path="missing.nii.gz")), question("x::0", "sha256:m")], "VolumeNotFound"),
    ("not NIfTI", lambda root: inline(vid(b"hello"), b"hello", "x.nii.gz") + [question("x::0", vid(b"hello"))], "InvalidVolume"),
    ("hash mismatch", lambda root: inline("sha256:" + "0" * 64, b"hello") + [question("x::0", "sha256:" + "0" * 64)], "InvalidVolume"),
    ("unsupported question", lambda root: inline(vid(_ok(root)), _ok(root)) + [question("x::0", vid(_ok(root)), "raise-unsupported")], "UnsupportedQuestion"),
    ("bug in the model", lambda root: inline(vid(_ok(root)), _ok(root)) + [question("x::0", vid(_ok(root)), "raise-bug")], "InternalError"),
]


def _loop(root: Path) -> str:
    link = root / "loop.nii.gz"
    if not link.is_symlink():
        link.symlink_to(link)
    return link.name


def _ok(root: Path) -> bytes:
    path = root / "ok.nii.gz"
    return path.read_bytes() if path.exists() else write_volume(path)


@pytest.mark.parametrize("name,build,expected", BAD_ITEMS, ids=[b[0] for b in BAD_ITEMS])
def test_a_bad_item_gets_a_typed_error_and_the_stream_goes_on(echo, data_root, name, build, expected):
    _, address = echo
    good = _ok(data_root)
    requests = build(data_root) + inline(vid(good), good) + [question("good::0", vid(good))]
    answers, _ = exchange(address, requests)
    assert answers["x::0"].status.error_type == expected, answers["x::0"].status
    assert answers["x::0"].status.message
    assert answers["good::0"].status.code == 0


def test_internal_errors_do_not_leak_details(echo, data_root):
    _, address = echo
    good = _ok(data_root)
    answers, _ = exchange(address, inline(vid(good), good) + [question("x::0", vid(good), "raise-bug")])
    assert "secret" not in answers["x::0"].status.message
    assert answers["x::0"].status.code == grpc.StatusCode.INTERNAL.value[0]


@pytest.mark.parametrize(
    "name,array,error_type",
    [
        ("2D image", np.zeros((5, 6), np.int16), "NotThreeDimensional"),
        ("NaN voxels", np.full((3, 4, 5), np.nan, np.float32), "NonFiniteVoxels"),
    ],
)
def test_invalid_volumes_are_reported_per_question(echo, data_root, name, array, error_type):
    import SimpleITK as sitk

    _, address = echo
    path = data_root / "bad.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    data = path.read_bytes()
    answers, volumes = exchange(address, inline(vid(data), data) + [question("x::0", vid(data))])
    assert answers["x::0"].status.error_type == error_type
    assert answers["x::0"].status.code == INVALID_ARGUMENT
    assert volumes[0].status.error_type == error_type


def test_truncated_gzip_volume_is_invalid(echo, data_root):
    _, address = echo
    data = write_volume(data_root / "t.nii.gz", shape=(20, 20, 20), fill=3)
    cut = data[: len(data) // 2]
    answers, _ = exchange(address, inline(vid(cut), cut) + [question("x::0", vid(cut))])
    assert answers["x::0"].status.error_type == "InvalidVolume"


def test_cancelling_a_stream_leaves_the_server_healthy(data_root):
    server, address = start(EchoModel(delay_ms="300"), data_root)
    try:
        data = write_volume(data_root / "a.nii.gz")
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.AnswerVolumeQuestionStub(channel)
            call = stub.Answer(iter(inline(vid(data), data) + [question(f"a::{i}", vid(data)) for i in range(8)]))
            next(iter(call))
            call.cancel()
        answers, _ = exchange(address, inline(vid(data), data) + [question("after::0", vid(data))])
        assert answers["after::0"].status.code == 0
    finally:
        server.stop(0)


def test_port_in_use_is_a_typed_error(echo):
    _, address = echo
    port = int(address.rsplit(":", 1)[1])
    with pytest.raises(PortInUse, match=str(port)):
        ModelServer(EchoModel(), ServerOptions(port=port)).start()


def test_concurrent_streams_share_the_batcher(echo, data_root):
    _server, address = echo
    data = write_volume(data_root / "a.nii.gz")
    results = {}

    def client(n):
        results[n] = exchange(address, inline(vid(data), data) + [question(f"c{n}::{i}", vid(data)) for i in range(5)])[0]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(len(results[n]) == 5 and all(a.status.code == 0 for a in results[n].values()) for n in range(4))


def test_an_inline_volume_left_incomplete_at_end_of_stream_fails_its_questions(echo):
    # The client half-closes after half of the declared bytes: the questions must get an error
    # and the stream must end (not wait for chunks that can never come).
    data = b"0123456789" * 10
    reqs = inline(vid(data), data, chunk=50)[:2] + [question("q0", vid(data))]
    answers, volumes = exchange(echo[1], reqs)
    assert answers["q0"].status.error_type == "InvalidVolume"
    assert "50 of 100" in answers["q0"].status.message
    assert [v.status.error_type for v in volumes] == ["InvalidVolume"]


def test_a_stray_chunk_for_a_by_reference_volume_does_not_poison_the_shared_cache(echo, data_root):
    _, address = echo
    data = write_volume(data_root / "a.nii.gz")
    header = pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=vid(data), path="a.nii.gz"))
    stray = pb.AnswerRequest(chunk=pb.VolumeChunk(volume_id=vid(data), offset=0, data=b"x"))
    exchange(address, [header, stray, question("a::0", vid(data))])
    # A well-behaved stream for the same volume afterwards is answered.
    answers, _ = exchange(address, [header, question("a::1", vid(data))])
    assert answers["a::1"].status.code == 0, answers["a::1"].status


def test_a_volume_path_with_a_nul_byte_is_one_bad_item_and_the_stream_goes_on(echo, data_root):
    data = write_volume(data_root / "a.nii.gz")
    reqs = [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id="sha256:bad", path="a\x00b.nii.gz")), question("bad::0", "sha256:bad"),
            pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=vid(data), path="a.nii.gz")), question("a::0", vid(data))]
    answers, _ = exchange(echo[1], reqs)
    assert answers["bad::0"].status.error_type == "InvalidVolume"
    assert answers["a::0"].status.code == 0


class SurrogateModel(EchoModel):
    """Answers with a lone surrogate (not encodable as UTF-8) when asked 'surrogate'."""

    def answer(self, batch):
        return ["\ud800" if item.text == "surrogate" else "fine" for item in batch]


def test_an_answer_protobuf_cannot_carry_is_one_internal_error_and_the_server_keeps_answering(data_root):
    server, address = start(SurrogateModel(), data_root)
    try:
        data = write_volume(data_root / "a.nii.gz")
        header = pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=vid(data), path="a.nii.gz"))
        answers, _ = exchange(address, [header, question("a::0", vid(data), "surrogate")])
        assert answers["a::0"].status.error_type == "InternalError"
        answers, _ = exchange(address, [header, question("a::1", vid(data))])
        assert answers["a::1"].text == "fine"
    finally:
        server.stop(0)


def test_a_by_reference_volume_whose_bytes_do_not_match_its_id_is_refused(echo, data_root):
    """The id keys a cache every stream shares: a wrong one must not cache the wrong voxels."""
    _, address = echo
    data = write_volume(data_root / "a.nii.gz")
    other = write_volume(data_root / "b.nii.gz", fill=2)
    wrong = [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=vid(other), path="a.nii.gz")), question("x::0", vid(other))]
    answers, _ = exchange(address, wrong)
    assert answers["x::0"].status.error_type == "InvalidVolume"
    assert "hash to" in answers["x::0"].status.message
    # the real owner of that id still loads from its own bytes
    answers, _ = exchange(address, inline(vid(other), other) + [question("b::0", vid(other))])
    assert answers["b::0"].status.code == 0 and answers["b::0"].text.endswith("|240")
    assert vid(data) != vid(other)


def test_a_broken_model_card_is_internal_without_details(data_root):
    class BadCard(EchoModel):
        def card(self):
            raise RuntimeError("secret card detail")

    server, address = start(BadCard(), data_root)
    try:
        with grpc.insecure_channel(address) as channel:
            with pytest.raises(grpc.RpcError) as info:
                pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert "secret" not in info.value.details()
    finally:
        server.stop(0)


def test_a_chunk_before_its_header_is_reported_and_does_not_poison_the_volume(echo, data_root):
    _, address = echo
    data = write_volume(data_root / "a.nii.gz")
    stray = pb.AnswerRequest(chunk=pb.VolumeChunk(volume_id=vid(data), offset=0, data=data[:10]))
    answers, volumes = exchange(address, [stray] + inline(vid(data), data) + [question("a::0", vid(data))])
    assert answers["a::0"].status.code == 0, answers["a::0"].status
    assert [v.status.error_type for v in volumes] == ["UnknownVolume", ""]
