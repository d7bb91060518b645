"""A server's memory is bounded by design: its cache limit plus the volumes in flight."""
from __future__ import annotations

import gc
import threading
import weakref

import grpc
import numpy as np
import pytest
from ctbench_test_models import EchoModel
from runner_helpers import wait_for
from sdk_stream import exchange, header, inline, question, start, vid, write_volume

from ctbench.model_servers.sdk import volume_cache
from ctbench.model_servers.sdk.volume_cache import VolumeCache
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc


class TrackedModel(EchoModel):
    """Keeps a weak reference to every volume it prepared, by the volume's fill value."""

    def load(self) -> None:
        super().load()
        self.refs: dict[int, weakref.ref] = {}

    def preprocess(self, volume):
        self.refs[int(volume.array.flat[0])] = weakref.ref(volume)
        return super().preprocess(volume)


@pytest.mark.parametrize("transport", ["reference", "inline"])
def test_a_stream_lets_go_of_a_volume_once_its_questions_are_answered(tmp_path, transport):
    # A cache of one byte keeps only the newest entry: anything else alive is the stream's.
    server, address = start(TrackedModel(), tmp_path, cache_bytes=1)
    done = threading.Event()
    files = [write_volume(tmp_path / f"v{i}.nii.gz", fill=i + 1) for i in range(5)]
    ids = [vid(data) for data in files]

    def requests():
        for i, volume_id in enumerate(ids):
            yield from [header(volume_id, f"v{i}.nii.gz")] if transport == "reference" else inline(volume_id, files[i])
            yield question(f"v{i}::0", volume_id)
        done.wait(20)  # the stream stays open while the test looks

    try:
        with grpc.insecure_channel(address) as channel:
            call = pb_grpc.AnswerVolumeQuestionStub(channel).Answer(requests(), timeout=30)
            answered = 0
            for response in call:
                if response.WhichOneof("item") == "answer":
                    assert response.answer.status.code == 0, response.answer.status
                    answered += 1
                    if answered == len(ids):
                        break
            gc.collect()
            alive = sorted(fill - 1 for fill, ref in server.model.refs.items() if ref() is not None)
            done.set()
            call.cancel()
        assert alive in ([], [4]), f"volumes {alive} still held by an open stream whose questions on them are answered"
    finally:
        done.set()
        server.stop(0)


def test_a_volume_released_between_its_questions_is_found_again(tmp_path):
    # Questions trickle in one at a time: the volume is found again (from the cache or the file).
    server, address = start(EchoModel(), tmp_path, cache_bytes=1)
    try:
        data = write_volume(tmp_path / "a.nii.gz")
        other = write_volume(tmp_path / "b.nii.gz", fill=2)
        reqs = [header(vid(data), "a.nii.gz"), question("a::0", vid(data)), header(vid(other), "b.nii.gz"),
                question("b::0", vid(other)), question("a::1", vid(data))]
        answers, _ = exchange(address, reqs)
        assert all(a.status.code == 0 for a in answers.values()), answers
        assert answers["a::1"].text.endswith("|120")
    finally:
        server.stop(0)


def test_inline_bytes_in_flight_have_a_cap_across_streams(tmp_path):
    server, address = start(EchoModel(), tmp_path, max_inline_bytes=1000)
    first_chunk_sent, release = threading.Event(), threading.Event()
    big = b"x" * 800

    def holding_stream():
        # Declares 800 bytes, sends half, and waits: those 800 bytes are in flight.
        reqs = inline(vid(big), big, chunk=400)
        yield reqs[0]
        yield reqs[1]
        first_chunk_sent.set()
        release.wait(20)

    try:
        with grpc.insecure_channel(address) as channel:
            card = pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=5)
            assert card.max_inline_bytes == 1000
            call = pb_grpc.AnswerVolumeQuestionStub(channel).Answer(holding_stream(), timeout=30)
            assert first_chunk_sent.wait(10)
            wait_for(lambda: server.core.inline_budget.in_use == 800, 10, "the first upload's reservation")
            other = b"y" * 800
            answers, _volumes = exchange(address, inline(vid(other), other) + [question("y::0", vid(other))])
            assert answers["y::0"].status.error_type == "InlineBytesExhausted", answers["y::0"].status
            assert answers["y::0"].status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
            assert "1000" in answers["y::0"].status.message
            release.set()
            call.cancel()
        # The holder's bytes are given back when its stream ends: the same upload now fits.
        wait_for(lambda: server.core.inline_budget.in_use == 0, 10, "the ended stream's reservation to be given back")
        good = write_volume(tmp_path / "g.nii.gz")
        assert len(good) < 1000
        answers, _ = exchange(address, inline(vid(good), good) + [question("g::0", vid(good))])
        assert answers["g::0"].status.code == 0, answers["g::0"].status
        assert server.core.inline_budget.in_use == 0
    finally:
        release.set()
        server.stop(0)


def test_an_inline_volume_larger_than_the_whole_cap_is_refused_at_its_header(tmp_path):
    server, address = start(EchoModel(), tmp_path, max_inline_bytes=50)
    try:
        data = write_volume(tmp_path / "a.nii.gz")
        assert len(data) > 50
        answers, _volumes = exchange(address, inline(vid(data), data) + [question("a::0", vid(data))])
        assert answers["a::0"].status.error_type == "InlineBytesExhausted"
        assert server.core.inline_budget.in_use == 0
    finally:
        server.stop(0)


@pytest.mark.parametrize("transport", ["reference", "inline"])
def test_the_decoded_size_is_bounded_from_the_header(tmp_path, transport):
    # 64^3 int16 is 0.5 MiB on disk uncompressed and ~1 MiB decoded as float32: over a 100 kB bound.
    server, address = start(EchoModel(), tmp_path, max_decoded_bytes=100_000)
    try:
        data = write_volume(tmp_path / "bomb.nii.gz", shape=(64, 64, 64), fill=0)
        sent = [header(vid(data), "bomb.nii.gz")] if transport == "reference" else inline(vid(data), data, "bomb.nii.gz")
        answers, _ = exchange(address, sent + [question("b::0", vid(data))])
        assert answers["b::0"].status.error_type == "VolumeTooLarge", answers["b::0"].status
        assert "100000" in answers["b::0"].status.message
    finally:
        server.stop(0)


class _Immediate:
    """An executor that runs each load at once, in the caller's thread."""

    def submit(self, fn, *args):
        fn(*args)


def test_eviction_reads_each_entry_a_bounded_number_of_times(monkeypatch):
    reads = []

    class Counted(volume_cache.PreparedVolume):
        @property
        def nbytes(self):
            reads.append(1)
            return self._nbytes

        @nbytes.setter
        def nbytes(self, value):
            self._nbytes = value

    monkeypatch.setattr(volume_cache, "PreparedVolume", Counted)
    cache = VolumeCache(max_bytes=50 * 1000, executor=_Immediate())
    n = 300
    for i in range(n):
        cache.get(f"v{i}", lambda: (np.zeros(1000, np.uint8), None))
    assert len(reads) <= 4 * n, f"{len(reads)} reads of entry sizes for {n} loads: eviction re-sums the cache"
    assert cache.total_bytes <= 50 * 1000
