"""The runner's one-pass inline upload: to a server that declares `inline_hash_follows` a volume
whose id is not known yet is read, hashed and sent at once (the header names the upload, the
last chunk carries the hash); a volume whose id is known, or any volume to a server without it,
gets the hash first. Over real gRPC to the SDK's server, in this process."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from ctbench_test_models import EchoModel
from sdk_stream import start

from ctbench.datasets.qa_items import QAItem
from ctbench.errors import InvalidVolume
from ctbench.preprocess.volume import Volume, save_volume
from ctbench.runners.client import CHUNK_BYTES, ServerStream, VolumeGroup
from ctbench.runners.volume_source import VolumeSource


class RecordingStream(ServerStream):
    """Keeps every request it sends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent = []

    def _requests(self, groups, unsent):
        for request in super()._requests(groups, unsent):
            self.sent.append(request)
            yield request


@pytest.fixture
def echo(tmp_path):
    server, address = start(EchoModel(), tmp_path)
    yield server, address
    server.stop(0)


def _volumes(tmp_path, n: int):
    paths = []
    for i in range(n):
        path = tmp_path / f"v{i}.nii"  # uncompressed, ~2.5 MiB: three chunks
        rng = np.random.default_rng(i)
        save_volume(Volume(rng.integers(-1000, 1000, size=(40, 128, 256), dtype=np.int16)), path)
        paths.append(path)
    return paths


def _groups(paths):
    return [VolumeGroup(p, None, [QAItem(f"{p.name}::{k}", p.name, p.name, f"q{k}?", "a") for k in range(2)]) for p in paths]


def _headers(requests):
    return [r.volume for r in requests if r.WhichOneof("item") == "volume"]


def test_a_volume_is_sent_as_it_is_read_with_its_hash_on_the_last_chunk(echo, tmp_path):
    _server, address = echo
    paths = _volumes(tmp_path, 2)
    missing = tmp_path / "gone.nii"
    source = VolumeSource()
    outcomes = []
    stream = RecordingStream(address, source, outcomes.append, use_reference=False, hash_follows=True)
    assert stream.stream(_groups([paths[0], missing, paths[1]])) == []
    by_id = {o.item.question_id: o for o in outcomes}
    assert len(by_id) == 6
    for path in paths:
        assert all(by_id[f"{path.name}::{k}"].error is None for k in range(2)), by_id
    assert by_id["gone.nii::0"].error["type"] == "VolumeNotFound"  # failed before its header: nothing sent
    headers = _headers(stream.sent)
    assert len(headers) == 2 and headers[0].volume_id == "" and headers[0].inline.upload_id
    chunks = [r.chunk for r in stream.sent if r.WhichOneof("item") == "chunk" and r.chunk.volume_id == headers[0].inline.upload_id]
    size = paths[0].stat().st_size
    assert len(chunks) == -(-size // CHUNK_BYTES) > 1
    assert [c.volume_sha256 for c in chunks[:-1]] == [""] * (len(chunks) - 1)
    assert chunks[-1].volume_sha256 == "sha256:" + hashlib.sha256(paths[0].read_bytes()).hexdigest()
    assert source.reads == 2 and source.hashes == 2  # one pass each


def test_a_volume_whose_id_is_known_or_a_server_without_it_gets_the_hash_first(echo, tmp_path):
    _server, address = echo
    paths = _volumes(tmp_path, 2)
    source = VolumeSource()
    first = RecordingStream(address, source, lambda o: None, use_reference=False, hash_follows=True)
    assert first.stream(_groups(paths)) == []
    again = RecordingStream(address, source, lambda o: None, use_reference=False, hash_follows=True)
    assert again.stream(_groups(paths)) == []  # read and hashed already: ids known
    old = RecordingStream(address, VolumeSource(), lambda o: None, use_reference=False, hash_follows=False)
    assert old.stream(_groups(paths)) == []
    for stream in (again, old):
        headers = _headers(stream.sent)
        assert [h.volume_id for h in headers] == ["sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
        assert all(not h.inline.upload_id for h in headers)
        assert all(not r.chunk.volume_sha256 for r in stream.sent if r.WhichOneof("item") == "chunk")


def test_a_file_that_changes_size_while_it_is_read_fails_that_read_and_is_read_again_next_time(tmp_path):
    path = tmp_path / "v.bin"
    path.write_bytes(b"a" * (3 * CHUNK_BYTES))
    source = VolumeSource()
    pieces = source.open(path).chunks(CHUNK_BYTES)
    assert bytes(next(pieces)) == b"a" * CHUNK_BYTES
    path.write_bytes(b"b" * CHUNK_BYTES)  # shorter now, in place
    with pytest.raises(InvalidVolume, match="changed size"):
        list(pieces)
    assert source.cached_bytes == 0  # the failed read left the buffer
    assert source.get(path).data == b"b" * CHUNK_BYTES
