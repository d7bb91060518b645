"""What every stream of a server shares: the model, its limits, the volume cache, the inline
byte budget and the batcher; and how a volume is found and prepared."""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctbench.errors import InvalidVolume, UnsupportedTransport, VolumeOutsideDataRoot
from ctbench.model_servers.sdk.batcher import Batcher
from ctbench.model_servers.sdk.inline_budget import InlineBudget
from ctbench.model_servers.sdk.model import Model
from ctbench.model_servers.sdk.volume_cache import VolumeCache
from ctbench.preprocess.volume import load_volume, load_volume_bytes


@dataclass
class ServerLimits:
    data_root: Path | None = None
    max_volume_bytes: int = 2 << 30  # largest inline volume (file bytes)
    max_chunk_bytes: int = 3 << 20
    max_decoded_bytes: int = 4 << 30  # bound on a decoded volume, checked from its header
    max_inline_bytes: int = 4 << 30  # inline bytes all streams together hold at once
    max_streams: int = 64  # Answer streams served at once; more are refused


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
        return self.prepare(lambda: _load_verified(path, volume_id, self.limits.max_decoded_bytes))

    def prepare_bytes(self, data, filename: str) -> tuple[Any, Any]:
        """An inline volume's bytes (any bytes-like object), prepared."""
        return self.prepare(lambda: load_volume_bytes(data, filename, max_bytes=self.limits.max_decoded_bytes))

    def resolve(self, relative: str) -> Path:
        root = self.limits.data_root
        if root is None:
            raise UnsupportedTransport("this server has no data root: send volumes inline")
        root = root.resolve()
        try:
            path = (root / relative).resolve()
        except (ValueError, OSError, RuntimeError) as exc:  # a NUL byte, a symlink loop: one bad item, not a dead reader
            raise InvalidVolume(f"{relative!r} is not a usable path: {exc}") from None
        if not path.is_relative_to(root):
            raise VolumeOutsideDataRoot(f"{relative!r} resolves outside the server's data root")
        return path


def _load_verified(path: Path, volume_id: str, max_bytes: int):
    """Load a by-reference volume after checking its bytes hash to the id the client declared:
    the id keys a cache shared by every stream, so a wrong one must not cache the wrong voxels."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    except FileNotFoundError:
        return load_volume(path)  # raises VolumeNotFound with the usual message
    except OSError as exc:
        raise InvalidVolume(f"{path}: cannot read ({exc.strerror})") from None
    if "sha256:" + digest.hexdigest() != volume_id:
        raise InvalidVolume(f"{path.name}: the file's bytes hash to sha256:{digest.hexdigest()}, not the declared {volume_id}")
    return load_volume(path, max_bytes=max_bytes)
