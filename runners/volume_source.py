"""Reads and hashes each volume file once per run, for every server.

A volume's identity is the SHA-256 of its bytes. `volume_id(path)` hashes a file by streaming
it (1 MiB at a time) and keeps only the id, which is all a by-reference volume needs: the server
reads the file itself. `get(path)` returns the bytes for an inline upload; servers stream the
same volumes in the same order, so a small LRU of raw bytes, bounded by `max_bytes`
(`bench run --inline-buffer-mib`), lets every server's inline upload share one read. An id is
reused while the file's (size, mtime_ns, inode, ctime_ns) are unchanged, before and after the
read: bytes read again after an eviction are not hashed again (a server checks every inline
volume's hash anyway, so a file changed behind the stamp is an error there, never another
volume's voxels). `reads` counts file reads and `hashes` whole-file hashes, so a test can check
the promise.

A volume's bytes live in an anonymous memory map of their own (`read_file`), not on the malloc
heap: glibc serves blocks of a CT volume's size from its heaps once it has freed one (its mmap
threshold rises to the largest freed block), and each thread's arena then keeps the freed
volumes of a long inline run pinned by the small blocks around them, so the runner's memory grew
with the number of volumes past its cap. A memory map goes back to the system the moment its
last view is dropped.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import InvalidVolume, VolumeNotFound

READ_BYTES = 1 << 20
DEFAULT_INLINE_BUFFER_BYTES = 1 << 30


@dataclass(frozen=True)
class VolumeBytes:
    volume_id: str  # "sha256:<hex>"
    path: Path
    data: memoryview  # read-only; compares equal to the file's bytes; slices are views, no copies


class VolumeSource:
    def __init__(self, max_bytes: int = DEFAULT_INLINE_BUFFER_BYTES):
        self.max_bytes = max_bytes
        self._cache: OrderedDict[Path, VolumeBytes] = OrderedDict()
        self._cached_bytes = 0
        self._ids: dict[Path, tuple[tuple[int, ...], str]] = {}  # path -> (stamp, id)
        self._locks: dict[Path, threading.Lock] = {}
        self._lock = threading.Lock()
        self.reads = 0
        self.hashes = 0

    @property
    def cached_bytes(self) -> int:
        """Volume bytes held for inline uploads now (at most `max_bytes`, or one volume)."""
        return self._cached_bytes

    def _file_lock(self, path: Path) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(path, threading.Lock())

    def volume_id(self, path: Path) -> str:
        """The file's id, hashed by streaming; its bytes are not kept."""
        with self._file_lock(path):  # one reader per file; the others wait and share its id
            stamp = _stamp(path)
            with self._lock:
                known = self._ids.get(path)
                if known is not None and known[0] == stamp:
                    return known[1]
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as handle:
                    while block := handle.read(READ_BYTES):
                        digest.update(block)
            except OSError as exc:
                raise InvalidVolume(f"{path}: cannot read ({exc.strerror})") from None
            volume_id = "sha256:" + digest.hexdigest()
            with self._lock:
                self.reads += 1
                self.hashes += 1
                self._ids[path] = (stamp, volume_id)
            return volume_id

    def get(self, path: Path) -> VolumeBytes:
        """The file's bytes and id, for an inline upload."""
        with self._file_lock(path):
            with self._lock:
                hit = self._cache.get(path)
                if hit is not None:
                    self._cache.move_to_end(path)
                    return hit
            stamp = _stamp(path)
            data = read_file(path, stamp[0])
            with self._lock:
                known = self._ids.get(path)
            if known is not None and known[0] == stamp and _stamp(path) == stamp:
                volume_id = known[1]
            else:
                volume_id = "sha256:" + hashlib.sha256(data).hexdigest()
                with self._lock:
                    self.hashes += 1
            entry = VolumeBytes(volume_id, path, data)
            with self._lock:
                self.reads += 1
                self._ids[path] = (stamp, entry.volume_id)
                self._cache[path] = entry
                self._cached_bytes += len(data)
                while self._cached_bytes > self.max_bytes and len(self._cache) > 1:
                    _, evicted = self._cache.popitem(last=False)
                    self._cached_bytes -= len(evicted.data)
            return entry


def read_file(path: Path, size: int) -> memoryview:
    """The file's bytes in an anonymous memory map of their own, as a read-only view.

    `size` is the file's size when stamped; a file that is then shorter or longer is an error
    (it changed while it was read)."""
    buffer = mmap.mmap(-1, max(size, 1))
    view = memoryview(buffer)[:size]
    try:
        with open(path, "rb", buffering=0) as handle:
            filled = 0
            while filled < size:
                got = handle.readinto(view[filled:])
                if not got:
                    break
                filled += got
            more = handle.read(1)
    except OSError as exc:
        raise InvalidVolume(f"{path}: cannot read ({exc.strerror})") from None
    if filled != size or more:
        raise InvalidVolume(f"{path}: the file changed size while it was read ({size} bytes when stamped)")
    return view.toreadonly()


def _stamp(path: Path) -> tuple[int, ...]:
    """(size, mtime_ns, inode, ctime_ns) of a regular file; typed errors for anything else."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise VolumeNotFound(f"{path}: no such volume file") from None
    except OSError as exc:  # a symlink loop, a name too long, a folder we may not enter
        raise InvalidVolume(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError:  # an embedded NUL byte
        raise InvalidVolume(f"{path!r}: not a usable path (it contains a NUL byte)") from None
    if not stat.S_ISREG(info.st_mode):
        raise VolumeNotFound(f"{path}: no such volume file")
    return info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns
