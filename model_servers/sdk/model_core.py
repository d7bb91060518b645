"""What every stream of a server shares: the model, its limits, the volume cache, the inline
byte budget and the batcher; and how a volume is found and prepared."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctbench.model_servers.sdk.batcher import Batcher
from ctbench.model_servers.sdk.inline_budget import InlineBudget
from ctbench.model_servers.sdk.model import Model
from ctbench.model_servers.sdk.volume_cache import VolumeCache
from ctbench.preprocess.referenced_volumes import load_referenced, resolve_under_root
from ctbench.preprocess.volume import load_volume_bytes


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


class ModelCore:
    def __init__(self, model: Model, limits: ServerLimits, cache: VolumeCache, batcher: Batcher):
        self.model = model
        self.limits = limits
        self.cache = cache
        self.batcher = batcher
        self.inline_budget = InlineBudget(limits.max_inline_bytes)
        self.streams = StreamSlots(limits.max_streams)
        self.load_error: str | None = None

    def prepare(self, load_fn) -> tuple[Any, Any]:
        if not self.model.reads_volume:
            return None, None
        volume = load_fn()
        prepared = self.model.preprocess(volume)
        return prepared, self.model.encode_volume(prepared)

    def prepare_file(self, path: Path, volume_id: str) -> tuple[Any, Any]:
        """A by-reference volume, prepared (what the cache runs on a miss)."""
        return self.prepare(lambda: load_referenced(path, volume_id, self.limits.data_root, self.model.volume_formats,
                                                    max_bytes=self.limits.max_decoded_bytes))

    def prepare_bytes(self, data, filename: str) -> tuple[Any, Any]:
        """An inline volume's bytes (any bytes-like object), prepared."""
        return self.prepare(lambda: load_volume_bytes(data, filename, max_bytes=self.limits.max_decoded_bytes))

    def resolve(self, relative: str) -> Path:
        return resolve_under_root(self.limits.data_root, relative, self.model.volume_formats)
