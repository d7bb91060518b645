"""A cap on glibc's malloc arenas for a server process, set before its threads start.

glibc gives threads malloc arenas of their own (up to eight per core by default) and each arena
keeps the blocks it has freed. A server's gRPC threads receive inline volumes as 1 MiB chunk
messages, each parsed and copied on the heap of the thread that reads it; those freed copies
stay cached in every arena a reading thread used, so the server's memory grew with how many
arenas its threads had touched (`chance`, which keeps no volume, went 116 -> 171 -> 249 MiB over
10, 50 and 200 inline volumes; BENCHMARKS.md). With a few arenas the cached blocks are bounded
by those few. Volume-sized buffers do not depend on it: they are memory maps of their own.

`mallopt(M_ARENA_MAX, n)` through ctypes; elsewhere (musl, macOS) there is nothing to cap and
`cap_malloc_arenas` returns False. glibc fixes its arena limit once a process has more arenas
than M_ARENA_TEST (eight on 64-bit), so this is called when the server starts, before its
thread pools run.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

M_ARENA_MAX = -8  # glibc's malloc.h
DEFAULT_ARENAS = 2
log = logging.getLogger("ctbench.server")


def _glibc():
    """glibc through ctypes, or None (another C library)."""
    global _LIBC
    if _LIBC is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.gnu_get_libc_version  # noqa: B018 -- glibc only
            libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):
            libc = False
        _LIBC = libc
    return _LIBC or None


_LIBC = None


def cap_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's malloc arenas at `arenas` (0: leave glibc's default); True if it was set."""
    libc = _glibc()
    if arenas <= 0 or libc is None:
        return False
    mallopt = libc.mallopt
    if mallopt(M_ARENA_MAX, arenas) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused; malloc keeps its default arenas", arenas)
        return False
    return True


def give_back_free_heap() -> None:
    """Return the free pages of every malloc arena to the system (`malloc_trim(0)`; nothing
    outside glibc). Called once an inline upload is complete, so the chunk copies freed during
    it do not stay resident until the next upload."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
