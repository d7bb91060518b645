"""The runner reads and hashes the next inline volume while the current one is sent, and does
not hash a file again while its (size, mtime, inode, ctime) stamp is unchanged."""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from ctbench.errors import VolumeNotFound
from ctbench.runners.client import InlinePrefetch
from ctbench.runners.volume_source import VolumeBytes, VolumeSource


class RecordingSource(VolumeSource):
    """Records which thread read which path."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self._record = threading.Lock()

    def get(self, path: Path) -> VolumeBytes:
        with self._record:
            self.calls.append((path.name, threading.current_thread().name))
        return super().get(path)


def _files(tmp_path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        paths.append(tmp_path / f"v{i}.bin")
        paths[-1].write_bytes(bytes([i]) * 4096)
    return paths


def test_the_next_volume_is_read_ahead_on_its_own_thread_once(tmp_path):
    paths = _files(tmp_path, 3)
    source = RecordingSource()
    with InlinePrefetch(source, paths) as prefetch:
        got = [prefetch.get(p) for p in paths]
    assert [g.data for g in got] == [p.read_bytes() for p in paths]
    threads = dict(source.calls)
    assert sorted(threads) == ["v0.bin", "v1.bin", "v2.bin"] and len(source.calls) == 3  # each read once
    assert threads["v0.bin"] == threading.current_thread().name
    assert threads["v1.bin"].startswith("ctbench-prefetch") and threads["v2.bin"].startswith("ctbench-prefetch")
    assert source.reads == 3


def test_an_error_reading_ahead_belongs_to_that_volume_alone(tmp_path):
    paths = _files(tmp_path, 3)
    paths[1].unlink()
    with InlinePrefetch(VolumeSource(), paths) as prefetch:
        assert prefetch.get(paths[0]).data == bytes([0]) * 4096
        with pytest.raises(VolumeNotFound, match="v1.bin"):
            prefetch.get(paths[1])
        assert prefetch.get(paths[2]).data == bytes([2]) * 4096


def test_a_volume_out_of_the_announced_order_is_read_where_it_is_asked(tmp_path):
    paths = _files(tmp_path, 3)
    with InlinePrefetch(VolumeSource(), paths) as prefetch:
        assert prefetch.get(paths[2]).data == bytes([2]) * 4096
        assert prefetch.get(paths[0]).data == bytes([0]) * 4096


def test_bytes_read_again_after_an_eviction_are_not_hashed_again(tmp_path):
    paths = _files(tmp_path, 2)
    source = VolumeSource(max_bytes=4096)
    first = source.get(paths[0])
    source.get(paths[1])  # evicts v0
    again = source.get(paths[0])
    assert again.volume_id == first.volume_id and source.reads == 3 and source.hashes == 2


def test_a_file_replaced_under_the_same_size_and_mtime_is_hashed_again(tmp_path):
    paths = _files(tmp_path, 2)
    source = VolumeSource(max_bytes=4096)
    before = source.get(paths[0])
    source.get(paths[1])
    info = os.stat(paths[0])
    replacement = tmp_path / "new.bin"
    replacement.write_bytes(b"\xff" * 4096)
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(replacement, paths[0])  # same size and mtime, another inode
    after = source.get(paths[0])
    assert after.volume_id == "sha256:" + hashlib.sha256(b"\xff" * 4096).hexdigest() != before.volume_id
    assert source.hashes == 3
