"""`bench score`'s side of the AlignScore worker: start it in its venv, batch, cache, resume.

Scores are cached per (checkpoint, reference, prediction) in sqlite ($CTBENCH_CACHE/alignscore.sqlite)
after every batch, so a worker that dies mid-batch loses only that batch: the client starts a new
worker (up to `restarts` times) and sends it again; a later `bench score` resumes from the cache.
A run that is all cached starts no worker. Identical pairs are scored once.
"""
from __future__ import annotations

import hashlib
import io
import json
import selectors
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ctbench.errors import CtbenchError
from ctbench.evaluation import progress
from ctbench.evaluation.alignscore import environment
from ctbench.evaluation.alignscore import weights as weights_mod
from ctbench.evaluation.alignscore.worker import MODE, PROTOCOL_VERSION

WORKER = Path(__file__).resolve().with_name("worker.py")


class AlignScoreWorkerError(CtbenchError):
    """The worker answered with a typed error (its code is kept in `worker_code`)."""

    code = "FAILED_PRECONDITION"

    def __init__(self, worker_code: str, message: str):
        super().__init__(f"AlignScore worker {worker_code}: {message}")
        self.worker_code = worker_code


class AlignScoreWorkerDied(CtbenchError):
    code = "UNAVAILABLE"


class ScoreCache:
    """sqlite: (model, sha256(reference, prediction)) -> score (NULL: none). Thread-safe."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS score (model TEXT, key TEXT, value REAL, PRIMARY KEY (model, key))")

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                out.update(self._db.execute(f"SELECT key, value FROM score WHERE model=? AND key IN ({marks})",
                                            [model, *chunk]).fetchall())
        return out

    def put_many(self, model: str, items: dict[str, float | None]) -> None:
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO score VALUES (?, ?, ?)",
                                 [(model, k, v) for k, v in items.items()])
            self._db.commit()


def pair_key(reference: str, prediction: str) -> str:
    return hashlib.sha256(json.dumps([reference, prediction]).encode("utf-8")).hexdigest()


class WorkerProcess:
    """One worker subprocess: hello on start, then one request and one reply per batch."""

    def __init__(self, python: Path, weights: Path, model: str, device: str = "cpu", batch_size: int = 32,
                 timeout_s: float = 900.0, env: dict | None = None):
        self.timeout_s = timeout_s
        self.log = tempfile.NamedTemporaryFile(prefix="ctbench-alignscore-", suffix=".log", delete=False)  # noqa: SIM115 - the worker's stderr for its lifetime
        self.proc = subprocess.Popen(
            [str(python), str(WORKER), "--weights", str(weights), "--model", model, "--device", device,
             "--batch-size", str(batch_size), "--protocol", str(PROTOCOL_VERSION)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env)
        # Both are pipes, buffered (Popen's default bufsize), so stdout has read1.
        if not isinstance(self.proc.stdin, io.BufferedWriter) or not isinstance(self.proc.stdout, io.BufferedReader):
            raise TypeError(f"expected buffered pipes to the worker, got {self.proc.stdin!r} and {self.proc.stdout!r}")
        self._stdin: io.BufferedWriter = self.proc.stdin
        self._stdout: io.BufferedReader = self.proc.stdout
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout, selectors.EVENT_READ)
        self._buffer = b""
        hello = self._read("start-up")
        if hello.get("type") == "error":
            self.close()
            raise AlignScoreWorkerError(hello.get("code", "?"), hello.get("message", ""))
        if hello.get("type") != "hello" or hello.get("protocol") != PROTOCOL_VERSION:
            self.close()
            raise AlignScoreWorkerError("PROTOCOL_MISMATCH", f"expected a protocol {PROTOCOL_VERSION} hello, got {hello}")
        self.hello = hello

    def score(self, batch: int, items: list[dict]) -> dict[str, float | None]:
        try:
            self._stdin.write((json.dumps({"type": "score", "batch": batch, "items": items}) + "\n").encode())
            self._stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._died(f"batch {batch}") from exc
        reply = self._read(f"batch {batch}")
        if reply.get("type") == "error":
            raise AlignScoreWorkerError(reply.get("code", "?"), reply.get("message", ""))
        if reply.get("type") != "scores" or reply.get("batch") != batch:
            raise AlignScoreWorkerError("PROTOCOL_MISMATCH", f"expected scores for batch {batch}, got {str(reply)[:200]}")
        got = {s["id"]: s["score"] for s in reply["scores"]}
        if set(got) != {i["id"] for i in items}:
            raise AlignScoreWorkerError("PROTOCOL_MISMATCH", f"batch {batch}: the reply's ids differ from the request's")
        return got

    def _read(self, what: str) -> dict:
        deadline = time.monotonic() + self.timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise AlignScoreWorkerDied(f"AlignScore worker gave no reply in {self.timeout_s:.0f} s ({what}); "
                                           f"its log: {self.log.name}")
            if not self._selector.select(timeout=left):
                continue
            chunk = self._stdout.read1(1 << 16)
            if not chunk:
                raise self._died(what)
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as exc:
            raise AlignScoreWorkerError("PROTOCOL_MISMATCH", f"not a JSON line ({what}): {line[:200]!r}") from exc

    def _died(self, what: str) -> AlignScoreWorkerDied:
        code = self.proc.wait(timeout=30)
        tail = Path(self.log.name).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        return AlignScoreWorkerDied(f"AlignScore worker exited {code} during {what}; last log lines: "
                                    + (" | ".join(tail) or "(none)") + f" (log: {self.log.name})")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._stdin.write(b'{"type": "bye"}\n')
                self._stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._selector.close()
        self._stdout.close()
        self.log.close()


class AlignScoreScorer:
    """Scores (reference, prediction) pairs with AlignScore in its venv; cached, batched, resumable."""

    def __init__(self, weights: str | Path | None = None, model: str | None = None, venv: str | Path | None = None,
                 device: str = "cpu", batch_size: int = 32, cache: ScoreCache | bool | None = True,
                 restarts: int = 2, timeout_s: float = 900.0, env: dict | None = None):
        self.weights = weights_mod.weights_dir(weights)
        self.model_arg = model
        self.venv = Path(venv) if venv else environment.default_venv()
        self.device, self.batch_size, self.restarts, self.timeout_s, self.env = device, batch_size, restarts, timeout_s, env
        if cache is True:
            from ctbench.evaluation.embeddings import default_cache_dir

            cache = ScoreCache(default_cache_dir() / "alignscore.sqlite")
        self.cache = cache if isinstance(cache, ScoreCache) else None
        self.scored = 0  # pairs the worker actually scored (for tests and measurements)
        self.starts = 0  # workers started

    def unavailable(self) -> str | None:
        return environment.installed_problem(self.venv) or weights_mod.problem(self.weights, self.model_arg)

    def score(self, references: Sequence[str], predictions: Sequence[str]) -> np.ndarray:
        reason = self.unavailable()
        if reason:
            raise (environment.AlignScoreNotInstalled if "bench metrics setup" in reason
                   else weights_mod.AlignScoreWeightsMissing)(reason)
        weights = self.weights
        assert weights is not None  # unavailable() names a missing weights folder
        size = weights_mod.pick_model(weights, self.model_arg)
        model_id = f"{weights_mod.fingerprint(weights, size)}/{MODE}"
        pairs = list(zip(references, predictions))
        keys = [pair_key(r, p) for r, p in pairs]
        unique = dict(zip(keys, pairs))
        found = self.cache.get_many(model_id, list(unique)) if self.cache is not None else {}
        todo = [k for k in unique if k not in found]
        worker = None
        restarts_left = self.restarts
        try:
            for start in range(0, len(todo), self.batch_size):
                part = todo[start:start + self.batch_size]
                items = [{"id": k, "context": unique[k][0], "claim": unique[k][1]} for k in part]
                while True:
                    if worker is None:
                        worker = self._start(weights, size)
                    try:
                        got = worker.score(start // self.batch_size + 1, items)
                        break
                    except AlignScoreWorkerDied:
                        worker = None
                        if restarts_left <= 0:
                            raise
                        restarts_left -= 1
                self.scored += len(got)
                found.update(got)
                if self.cache is not None:
                    self.cache.put_many(model_id, got)
                progress.report("alignscore", start + len(part), len(todo))
        finally:
            if worker is not None:
                worker.close()
        return np.array([np.nan if found[k] is None else found[k] for k in keys], dtype=float)

    def _start(self, weights: Path, size: str) -> WorkerProcess:
        self.starts += 1
        return WorkerProcess(environment.venv_python(self.venv), weights, size, self.device, self.batch_size,
                             self.timeout_s, self.env)
