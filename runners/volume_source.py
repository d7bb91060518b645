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

`open(path)` is the one-pass form of `get`: it returns a `VolumeRead` at once, whose bytes its
readers read and hash 1 MiB at a time as they follow it (`chunks()`), learning the id at the
end; an inline upload to a server that takes the hash after the bytes is sent while the file is
being read. Every caller of `get` or `open` for the same file shares one read, finished or in
progress.

A volume's bytes live in an anonymous memory map of their own (`read_file`), not on the malloc
heap: glibc serves blocks of a CT volume's size from its heaps once it has freed one (its mmap
threshold rises to the largest freed block), and each thread's arena then keeps the freed
volumes of a long inline run pinned by the small blocks around them, so the runner's memory grew
with the number of volumes past its cap. A memory map goes back to the system the moment its
last view is dropped.
"""
from __future__ import annotations

import hashlib
import io
import mmap
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import CtbenchError, InvalidVolume, VolumeNotFound

READ_BYTES = 1 << 20
DEFAULT_INLINE_BUFFER_BYTES = 1 << 30


@dataclass(frozen=True)
class VolumeBytes:
    volume_id: str  # "sha256:<hex>"
    path: Path
    data: memoryview  # read-only; compares equal to the file's bytes; slices are views, no copies


class VolumeRead:
    """One volume file read into a memory map of its own and hashed as it lands; any number of
    readers follow it (`chunks`) or wait for the whole (`wait`).

    The read is done by its readers, one piece of READ_BYTES at a time, by whichever reader needs
    bytes not read yet while no other is reading; the others wait for that piece. So a sender
    that follows the read reads, hashes and sends each piece itself, on its own thread (handing
    every piece from one thread to another costs more than it saves on two busy cores), and a read
    left half-done by one reader is carried on by the next. `known_id` is the id when the file's
    stamp says it is already known (the bytes are then not hashed again unless the stamp changed
    during the read)."""

    def __init__(self, source: VolumeSource, path: Path, stamp: tuple[int, ...], known_id: str | None):
        self.source = source
        self.path = path
        self.stamp = stamp
        self.size = stamp[0]
        self._id = known_id
        self._buffer = mmap.mmap(-1, max(self.size, 1))
        self._view = memoryview(self._buffer)[:self.size].toreadonly()
        self._digest = hashlib.sha256() if known_id is None else None
        self._handle: io.FileIO | None = None
        self._filled = 0
        self._reading = False  # a reader is reading the next piece
        self._done = False
        self._error: CtbenchError | None = None
        self._ready = threading.Condition()

    @property
    def id_now(self) -> str | None:
        """The volume's id if it is known without reading on (else None)."""
        with self._ready:
            return self._id if self._error is None else None

    @property
    def done(self) -> bool:
        with self._ready:
            return self._done

    def _fill_to(self, end: int) -> None:
        """Return once bytes [0, end) are read (all of them: once the read is over), reading
        pieces on this thread when no other reader is."""
        def satisfied() -> bool:
            return self._done or (self._filled >= end and end < self.size)

        while True:
            with self._ready:
                self._ready.wait_for(lambda: satisfied() or not self._reading)
                if satisfied():
                    if self._error is not None:
                        raise self._error
                    return
                self._reading = True
            try:
                self._read_piece()
            finally:
                with self._ready:
                    self._reading = False
                    self._ready.notify_all()

    def _read_piece(self) -> None:
        """Read and hash the next piece (only the thread holding `_reading`); at the end of the
        file, check it and settle the id. An error ends the read for every reader."""
        filled = self._filled
        writable = memoryview(self._buffer)[:self.size]
        try:
            handle = self._handle
            if handle is None:
                handle = self._handle = open(self.path, "rb", buffering=0)  # noqa: SIM115 -- closed when the read ends
            got = handle.readinto(writable[filled: filled + READ_BYTES]) if filled < self.size else 0
            if got and self._digest is not None:
                self._digest.update(writable[filled: filled + got])
            filled += got or 0
            if filled < self.size and got:
                with self._ready:
                    self._filled = filled
                return
            more = handle.read(1)
            if filled != self.size or more:
                raise InvalidVolume(f"{self.path}: the file changed size while it was read ({self.size} bytes when stamped)")
            digest = self._digest
            if digest is None and _stamp(self.path) != self.stamp:  # changed behind the known id
                digest = hashlib.sha256(writable)
            volume_id = "sha256:" + digest.hexdigest() if digest is not None else self._id
            assert volume_id is not None
            self.source._finished(self, volume_id, hashed=digest is not None)
            self._close()
            with self._ready:
                self._filled, self._id, self._done = filled, volume_id, True
        except (OSError, CtbenchError) as exc:
            error = exc if isinstance(exc, CtbenchError) else InvalidVolume(f"{self.path}: cannot read ({exc.strerror})")
            self._close()
            self.source._forget(self)
            with self._ready:
                self._error, self._done = error, True
        finally:
            writable.release()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def wait(self) -> VolumeBytes:
        """The whole volume, read (here, if no other reader is at it) and hashed; the read's
        error, if it failed."""
        self._fill_to(self.size)
        assert self._id is not None
        return VolumeBytes(self._id, self.path, self._view)

    def wait_read_elsewhere(self, timeout: float) -> bool:
        """Whether the read is over within `timeout` seconds, without reading here (errors are
        the readers' to raise)."""
        with self._ready:
            return self._ready.wait_for(lambda: self._done, timeout)

    def chunks(self, chunk_bytes: int) -> Iterator[memoryview]:
        """The bytes in read-only views of `chunk_bytes` (the last one shorter; one empty view
        for an empty file), each once it has been read, the last once the read is over and its id
        known; the read's error where it failed."""
        offset = 0
        while True:
            end = min(offset + chunk_bytes, self.size)
            self._fill_to(end)
            yield self._view[offset:end]
            offset = end
            if offset >= self.size:
                return


class VolumeSource:
    def __init__(self, max_bytes: int = DEFAULT_INLINE_BUFFER_BYTES):
        self.max_bytes = max_bytes
        self._cache: OrderedDict[Path, VolumeRead] = OrderedDict()
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
        return self.open(path).wait()

    def open(self, path: Path) -> VolumeRead:
        """The file's read, shared: held in the buffer, under way, or started now (its bytes then
        count against `max_bytes` from the start). A file that is not there, or not a regular
        file, raises here; a read that fails raises from its `wait` and `chunks`."""
        with self._file_lock(path):
            with self._lock:
                hit = self._cache.get(path)
                if hit is not None:
                    self._cache.move_to_end(path)
                    return hit
            stamp = _stamp(path)
            with self._lock:
                known = self._ids.get(path)
                read = VolumeRead(self, path, stamp, known[1] if known is not None and known[0] == stamp else None)
                self._cache[path] = read
                self._cached_bytes += read.size
                while self._cached_bytes > self.max_bytes and len(self._cache) > 1:
                    _, evicted = self._cache.popitem(last=False)
                    self._cached_bytes -= evicted.size
            return read

    def _finished(self, read: VolumeRead, volume_id: str, hashed: bool) -> None:
        with self._lock:
            self.reads += 1
            self.hashes += hashed
            self._ids[read.path] = (read.stamp, volume_id)

    def _forget(self, read: VolumeRead) -> None:
        """A failed read leaves the buffer: the next request reads the file again."""
        with self._lock:
            if self._cache.get(read.path) is read:
                del self._cache[read.path]
                self._cached_bytes -= read.size


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
