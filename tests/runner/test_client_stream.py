"""ServerStream against an in-process SDK server: deadlines and broken streams."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ctbench.datasets.qa_items import QAItem
from ctbench.model_servers.sdk import Model, ModelServer, ServerOptions
from ctbench.preprocess.volume import Volume, save_volume
from ctbench.runners.client import Outcome, ServerStream, VolumeGroup
from ctbench.runners.volume_source import VolumeSource


class HangOnQuestionModel(Model):
    """Answers 'ok' at once, except questions whose text is 'hang': those block until released."""

    name = "hang"
    version = "1"
    max_batch_size = 1
    max_wait_ms = 0.0

    def load(self) -> None:
        self.release = threading.Event()

    def answer(self, batch):
        if any(item.text == "hang" for item in batch):
            self.release.wait()
        return ["ok" for _ in batch]


@pytest.fixture
def hang_server(tmp_path):
    model = HangOnQuestionModel()
    server = ModelServer(model, ServerOptions(port=0, data_root=tmp_path))
    port = server.start()
    assert server.loaded.wait(10)
    yield model, f"127.0.0.1:{port}"
    model.release.set()
    server.stop(0)


def one_group(tmp_path: Path, texts: list[str]) -> list[VolumeGroup]:
    path = tmp_path / "v.nii.gz"
    save_volume(Volume(np.zeros((4, 5, 6), np.int16)), path)
    items = [QAItem(question_id=f"v::{i}", case_id="v", image_path="v.nii.gz", question=text, answer="ok")
             for i, text in enumerate(texts)]
    return [VolumeGroup(path, "v.nii.gz", items)]


def run_in_thread(stream: ServerStream, groups) -> tuple[threading.Thread, dict]:
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("left", stream.stream(groups)), daemon=True)
    thread.start()
    return thread, box


def test_a_question_the_server_never_answers_ends_at_its_deadline_and_the_stream_returns(hang_server, tmp_path):
    _, address = hang_server
    outcomes: list[Outcome] = []
    stream = ServerStream(address, VolumeSource(), outcomes.append, use_reference=True, window=4, deadline_s=0.5)
    thread, box = run_in_thread(stream, one_group(tmp_path, ["a", "b", "hang"]))
    thread.join(30)  # a bound on a hang, not a timing expectation
    assert not thread.is_alive(), "stream() still waits for an answer that will never come"
    assert box["left"] == []
    by_id = {o.item.question_id: o for o in outcomes}
    assert len(outcomes) == 3
    assert by_id["v::2"].error["code"] == "DEADLINE_EXCEEDED"
    assert by_id["v::0"].error is None and by_id["v::1"].error is None
    assert not stream.broken


class WatchedStream(ServerStream):
    """Says when its request generator has finished."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests_done = threading.Event()

    def _requests(self, groups, unsent):
        try:
            yield from super()._requests(groups, unsent)
        finally:
            self.requests_done.set()


def test_a_broken_stream_returns_the_unanswered_questions_and_stops_sending(tmp_path):
    model = HangOnQuestionModel()
    server = ModelServer(model, ServerOptions(port=0, data_root=tmp_path))
    port = server.start()
    assert server.loaded.wait(10)
    try:
        outcomes: list[Outcome] = []
        stream = WatchedStream(f"127.0.0.1:{port}", VolumeSource(), outcomes.append, use_reference=True, window=1)
        thread, box = run_in_thread(stream, one_group(tmp_path, ["hang", "a", "b"]))
        for _ in range(300):  # the first question is in flight, the others wait for a slot
            if stream._outstanding:
                break
            threading.Event().wait(0.05)
        server.server.stop(0).wait()  # the server goes away mid-stream
        thread.join(30)
        assert not thread.is_alive()
        assert stream.broken and outcomes == []
        assert sorted(item.question_id for item in box["left"]) == ["v::0", "v::1", "v::2"]
        # Nothing keeps a thread blocked on a slot that will never be released.
        assert stream.requests_done.wait(30), "the request generator is still waiting to send"
    finally:
        model.release.set()
        server.stop(0)


def test_a_volume_the_runner_cannot_even_stat_fails_its_questions_and_the_stream_goes_on(hang_server, tmp_path):
    _, address = hang_server
    good = one_group(tmp_path, ["a"])
    bad_item = QAItem(question_id="long::0", case_id="long", image_path="x" * 300 + ".nii.gz", question="q", answer="ok")
    bad = VolumeGroup(tmp_path / bad_item.image_path, bad_item.image_path, [bad_item])  # ENAMETOOLONG
    outcomes: list[Outcome] = []
    stream = ServerStream(address, VolumeSource(), outcomes.append, use_reference=True, window=4)
    left = stream.stream([bad, *good])
    assert left == [] and not stream.broken
    by_id = {o.item.question_id: o for o in outcomes}
    assert by_id["long::0"].error["type"] == "InvalidVolume"
    assert by_id["v::0"].error is None


@pytest.mark.parametrize("by_reference", [True, False])
def test_an_oversized_question_fails_alone_before_it_is_sent(hang_server, tmp_path, by_reference):
    _, address = hang_server
    groups = one_group(tmp_path, ["first", "x" * (5 << 20), "last"])
    if not by_reference:
        groups = [VolumeGroup(groups[0].path, None, groups[0].items)]
    outcomes: list[Outcome] = []
    stream = ServerStream(address, VolumeSource(), outcomes.append, use_reference=by_reference, window=4)
    left = stream.stream(groups)
    assert left == [] and not stream.broken
    by_id = {o.item.question_id: o for o in outcomes}
    assert len(outcomes) == 3 and by_id["v::0"].prediction == "ok" and by_id["v::2"].prediction == "ok"
    error = by_id["v::1"].error
    assert (error["code"], error["type"]) == ("RESOURCE_EXHAUSTED", "QuestionTooLarge")
    assert "over the 4194304-byte gRPC message limit; not sent" in error["message"]


def test_volume_paths_that_cannot_be_resolved_fail_their_own_questions_only(hang_server, tmp_path):
    from ctbench.datasets.qa_items import Dataset
    from ctbench.runners.run import _groups

    _, address = hang_server
    save_volume(Volume(np.zeros((4, 5, 6), np.int16)), tmp_path / "v.nii.gz")
    (tmp_path / "loop.nii.gz").symlink_to("loop.nii.gz")
    items = [QAItem(question_id=f"{name}::0", case_id=name, image_path=name, question="q", answer="ok")
             for name in ("loop.nii.gz", "nul\0.nii.gz", "v.nii.gz")]
    groups = _groups(items, Dataset(items, tmp_path))
    outcomes: list[Outcome] = []
    left = ServerStream(address, VolumeSource(), outcomes.append, use_reference=True, window=4).stream(groups)
    assert left == []
    by_id = {o.item.question_id: o for o in outcomes}
    assert by_id["v.nii.gz::0"].prediction == "ok"
    assert by_id["loop.nii.gz::0"].error["type"] == "InvalidVolume" and "symbolic links" in by_id["loop.nii.gz::0"].error["message"]
    assert by_id["nul\0.nii.gz::0"].error["type"] == "InvalidVolume" and "NUL byte" in by_id["nul\0.nii.gz::0"].error["message"]


def test_a_by_reference_volume_is_hashed_by_streaming_and_its_bytes_are_not_kept(tmp_path):
    import hashlib

    path = tmp_path / "v.bin"
    path.write_bytes(b"a" * (3 << 20) + b"b")
    source = VolumeSource()
    assert source.volume_id(path) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert source.volume_id(path) == source.get(path).volume_id
    assert source.reads == 2  # the id was reused; the inline read is the second
    fresh = VolumeSource()
    fresh.volume_id(path)
    assert fresh.cached_bytes == 0
    path.write_bytes(b"changed")
    assert fresh.volume_id(path) == "sha256:" + hashlib.sha256(b"changed").hexdigest()


def test_the_inline_buffer_holds_at_most_its_cap(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"v{i}.bin")
        paths[-1].write_bytes(bytes([i]) * 1000)
    source = VolumeSource(max_bytes=2000)
    for path in paths:
        source.get(path)
    assert source.cached_bytes == 2000
    source.get(paths[0])  # evicted: read again
    assert source.reads == 4
