"""Reads and hashes each volume file once per run, for every server.

Servers stream the same volumes in the same order, so a small LRU of raw bytes (bounded in
bytes) lets every server's inline upload reuse one read. `reads` counts file reads, so a test
can check the promise.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import InvalidVolume, VolumeNotFound


@dataclass(frozen=True)
class VolumeBytes:
    volume_id: str  # "sha256:<hex>"
    path: Path
    data: bytes


class VolumeSource:
    def __init__(self, max_bytes: int = 4 << 30):
        self.max_bytes = max_bytes
        self._cache: OrderedDict[Path, VolumeBytes] = OrderedDict()
        self._locks: dict[Path, threading.Lock] = {}
        self._lock = threading.Lock()
        self.reads = 0

    def get(self, path: Path) -> VolumeBytes:
        with self._lock:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:  # one reader per file; the others wait and share its bytes
            with self._lock:
                hit = self._cache.get(path)
                if hit is not None:
                    self._cache.move_to_end(path)
                    return hit
            try:
                if not path.is_file():
                    raise VolumeNotFound(f"{path}: no such volume file")
                data = path.read_bytes()
            except OSError as exc:  # is_file() too raises some (a name too long, a folder we may not enter)
                raise InvalidVolume(f"{path}: cannot read ({exc.strerror})") from None
            entry = VolumeBytes("sha256:" + hashlib.sha256(data).hexdigest(), path, data)
            with self._lock:
                self.reads += 1
                self._cache[path] = entry
                total = sum(len(v.data) for v in self._cache.values())
                while total > self.max_bytes and len(self._cache) > 1:
                    _, evicted = self._cache.popitem(last=False)
                    total -= len(evicted.data)
            return entry
