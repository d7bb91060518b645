"""Inline uploads whose hash follows their bytes (`InlineVolume.upload_id`, the last chunk's
`volume_sha256`), through the SDK's real servicer over loopback: the card declares it, the
bytes are checked against the trailing hash, and a wrong or missing hash, an upload given up
before its last chunk, or an upload that does not fit fails that volume alone."""
from __future__ import annotations

import grpc
import numpy as np
import pytest
from ctbench_test_models import EchoModel, ReferenceOnlyEchoModel
from runner_helpers import wait_for
from sdk_stream import exchange, inline, question, start, vid, write_volume

from ctbench.preprocess.volume import Volume, save_volume
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc


def following(upload_id: str, data: bytes, sha: str | None, filename="v.nii.gz", chunk=1 << 20) -> list[pb.AnswerRequest]:
    """A header without the hash, the chunks, and `sha` on the last one (None: left out)."""
    reqs = [pb.AnswerRequest(volume=pb.VolumeHeader(inline=pb.InlineVolume(
        total_bytes=len(data), filename=filename, upload_id=upload_id)))]
    offsets = list(range(0, len(data), chunk)) or [0]
    for offset in offsets:
        piece = pb.VolumeChunk(volume_id=upload_id, offset=offset, data=data[offset: offset + chunk])
        if offset == offsets[-1] and sha is not None:
            piece.volume_sha256 = sha
        reqs.append(pb.AnswerRequest(chunk=piece))
    return reqs


@pytest.fixture
def echo(tmp_path):
    server, address = start(EchoModel(), tmp_path)
    yield server, address
    server.stop(0)


def test_the_card_declares_it_when_the_server_takes_inline_volumes(tmp_path):
    for model, declared in ((EchoModel(), True), (ReferenceOnlyEchoModel(), False)):
        server, address = start(model, tmp_path)
        try:
            with grpc.insecure_channel(address) as channel:
                card = pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=5)
            assert card.inline_hash_follows is declared
        finally:
            server.stop(0)


def test_a_volume_whose_hash_follows_its_chunks_is_decoded_and_answered(echo, tmp_path):
    server, address = echo
    path = tmp_path / "big.nii"  # ~6 MiB uncompressed: several chunks
    save_volume(Volume(np.random.default_rng(0).integers(-1000, 1000, size=(80, 128, 256), dtype=np.int16)), path)
    data = path.read_bytes()
    small = write_volume(tmp_path / "s.nii.gz")
    reqs = following("u0", data, vid(data), "big.nii") + [question("b::0", vid(data)), question("b::1", vid(data))]
    reqs += following("u1", small, vid(small)) + [question("s::0", vid(small))]
    answers, volumes = exchange(address, reqs)
    assert all(a.status.code == 0 for a in answers.values()), [a.status for a in answers.values()]
    assert "(80, 128, 256)" in answers["b::0"].text and "(4, 5, 6)" in answers["s::0"].text
    assert sorted(v.volume_id for v in volumes) == sorted([vid(data), vid(small)])
    assert server.core.inline_budget.in_use == 0


def test_a_wrong_or_missing_trailing_hash_fails_that_volume_alone(echo, tmp_path):
    _server, address = echo
    good = write_volume(tmp_path / "g.nii.gz")
    other = write_volume(tmp_path / "o.nii.gz", fill=2)
    third = write_volume(tmp_path / "t.nii.gz", fill=3)
    wrong = "sha256:" + "0" * 64
    reqs = following("u0", other, wrong) + [question("wrong::0", wrong)]
    reqs += following("u1", third, None) + [question("missing::0", vid(third))]
    reqs += following("u2", good, vid(good)) + [question("good::0", vid(good))]
    answers, _ = exchange(address, reqs)
    assert answers["wrong::0"].status.error_type == "InvalidVolume"
    assert vid(other) in answers["wrong::0"].status.message and wrong in answers["wrong::0"].status.message
    assert answers["missing::0"].status.error_type == "InvalidVolume"
    assert "without its hash" in answers["missing::0"].status.message
    assert answers["good::0"].status.code == 0, answers["good::0"].status


def test_an_upload_given_up_before_its_last_chunk_is_dropped_and_its_bytes_given_back(echo, tmp_path):
    server, address = echo
    big = b"x" * 3000
    good = write_volume(tmp_path / "g.nii.gz")
    partial = following("u0", big, vid(big), chunk=1000)[:2]  # the header and one of three chunks
    answers, _ = exchange(address, partial + following("u1", good, vid(good)) + [question("g::0", vid(good))])
    assert answers["g::0"].status.code == 0, answers["g::0"].status
    wait_for(lambda: server.core.inline_budget.in_use == 0, 10, "the dropped upload's reservation to be given back")


def test_a_cached_volume_sent_with_its_hash_after_is_a_cache_hit(echo, tmp_path):
    server, address = echo
    data = write_volume(tmp_path / "a.nii.gz")
    exchange(address, inline(vid(data), data) + [question("a::0", vid(data))])
    answers, _ = exchange(address, following("u0", data, vid(data)) + [question("a::1", vid(data))])
    assert answers["a::1"].status.code == 0 and answers["a::1"].timings.volume_cache_hit
    assert server.model.preprocess_calls == 1
    assert server.core.inline_budget.in_use == 0


def test_an_upload_that_does_not_fit_fails_under_the_id_sent_after_it(tmp_path):
    server, address = start(EchoModel(), tmp_path, max_inline_bytes=50)
    try:
        data = write_volume(tmp_path / "a.nii.gz")
        answers, _ = exchange(address, following("u0", data, vid(data)) + [question("a::0", vid(data))])
        assert answers["a::0"].status.error_type == "InlineBytesExhausted", answers["a::0"].status
        assert server.core.inline_budget.in_use == 0
    finally:
        server.stop(0)


def test_a_hash_before_the_last_chunk_is_an_invalid_volume(echo):
    _server, address = echo
    data = b"y" * 2000
    reqs = following("u0", data, None, chunk=1000)
    reqs[1].chunk.volume_sha256 = vid(data)
    answers, _ = exchange(address, reqs + [question("y::0", vid(data))])
    assert answers["y::0"].status.error_type == "InvalidVolume"
    assert "before its last chunk" in answers["y::0"].status.message
