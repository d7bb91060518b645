"""The server's limits, and the slots that bound its open Answer streams: what the pipeline
(pipeline.py) and every stream of a server share besides the model."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServerLimits:
    data_root: Path | None = None
    max_volume_bytes: int = 2 << 30  # largest inline volume (file bytes)
    max_chunk_bytes: int = 3 << 20
    max_decoded_bytes: int = 4 << 30  # bound on a decoded volume, checked from its header
    max_inline_bytes: int = 4 << 30  # inline bytes all streams together hold at once
    max_streams: int = 64  # Answer streams served at once; more are refused
    trim_heap_after_upload: bool = True  # return freed heap pages once an inline upload is in (malloc_arenas.py)


class StreamSlots:
    """Counts open Answer streams, so that they never take every thread the server has."""

    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.active -= 1
