"""`bench perf harness`: what the harness itself costs, with a server that answers instantly.

Through a real server process over loopback gRPC and the runner's own client code:
* questions/s — `chance` never reads voxels and answers at once, so the rate measures the
  runner, the protocol and the SDK (batching, per-item bookkeeping, the ledger), not a model;
* inline volume MB/s — one CT-RATE-sized file read and hashed by the runner, streamed in 1 MiB
  chunks, written into the server's upload buffer and hashed there (the server skips decoding
  for a model that never reads voxels), timed from the runner's read to the first answer; as
  negotiated (the server's card declares `inline_hash_follows`: the file is read, hashed and
  sent in one pass, the hash on the last chunk) and, alternating with it, with the hash first
  (the whole file read and hashed before its header, as to a server without it);
* bare gRPC MB/s — the same bytes as 1 MiB messages over a bare bidirectional stream to a
  server process that only counts them (bare_stream.py), measured alternately with the inline
  upload in the same run, so the ratio between the two is what the harness costs;
* inline sequence MB/s — `inline_volumes` distinct files of that size inline over one stream
  (as `bench run` sends a server's share), against a bare stream of all their bytes: from the
  second volume on, the runner reads and hashes the next volume while the current one is sent;
  both ways as well.
"""
from __future__ import annotations

import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

from ctbench.datasets.qa_items import QAItem
from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.local import LocalProcessBackend
from ctbench.runners.bare_stream import bare_stream_server, send
from ctbench.runners.client import Outcome, ServerStream, VolumeGroup, describe
from ctbench.runners.health import wait_until_serving
from ctbench.runners.ledger import Ledger
from ctbench.runners.volume_source import VolumeSource


def _items(volume: str, n: int) -> list[QAItem]:
    return [
        QAItem(f"{volume}::{i}", volume, volume, f"Question {i}: left or right?", "left", ("left", "right"))
        for i in range(n)
    ]


def harness_benchmark(
    questions: int = 5000, volumes: int = 20, volume_mb: int = 150, window: int = 128, repeats: int = 3,
    workdir: Path | None = None, inline_volumes: int = 4,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="ctbench-perf-", dir=workdir) as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        names = [f"v{i:03d}.nii.gz" for i in range(volumes)]
        for name in names:
            (data / name).write_bytes(os.urandom(1024))  # never decoded by `chance`
        bigs = [data / f"ct_rate_sized_{i}.nii" for i in range(max(1, inline_volumes))]
        for path in bigs:
            with path.open("wb") as handle:
                for _ in range(volume_mb):
                    handle.write(os.urandom(1 << 20))
        big = bigs[0]

        backend = LocalProcessBackend()
        spec = ServerSpec(name="chance", model="chance")
        try:
            endpoint = backend.start(spec, data, root / "logs")
            wait_until_serving(endpoint.address, 60, "chance", lambda: backend.is_alive("chance"), lambda: backend.logs("chance"))
            per_volume = max(1, questions // volumes)
            groups = [VolumeGroup(data / n, n, _items(n, per_volume)) for n in names]
            n_questions = per_volume * volumes
            ledger = Ledger(root / "ledger.jsonl")
            count = 0
            lock = threading.Lock()

            def keep(outcome: Outcome) -> None:
                nonlocal count
                ledger.append(outcome.to_record("chance", 1))
                with lock:
                    count += 1

            start = time.perf_counter()
            left = ServerStream(endpoint.address, VolumeSource(), keep, use_reference=True, window=window).stream(groups)
            q_seconds = time.perf_counter() - start
            ledger.close()
            assert not left and count == n_questions, f"{count}/{n_questions} answered"

            size = big.stat().st_size
            follows = bool(describe(endpoint.address).get("inline_hash_follows"))
            inline_s, first_s, bare_s, hash_s, seq_s, seq_first_s, seq_bare_s = [], [], [], [], [], [], []
            with bare_stream_server(root) as bare_address:
                for _ in range(max(1, repeats)):
                    bare_s.append(send(bare_address, size))
                    inline_s.append(_inline_upload(endpoint.address, [big], follows))
                    first_s.append(_inline_upload(endpoint.address, [big], False))
                    start = time.perf_counter()
                    VolumeSource().get(big)  # the runner's part of the upload, on its own
                    hash_s.append(time.perf_counter() - start)
                    seq_bare_s.append(send(bare_address, size * len(bigs)))
                    seq_s.append(_inline_upload(endpoint.address, bigs, follows))
                    seq_first_s.append(_inline_upload(endpoint.address, bigs, False))
        finally:
            backend.stop_all()
    v_seconds, b_seconds = statistics.median(inline_s), statistics.median(bare_s)
    f_seconds = statistics.median(first_s)
    return {
        "questions": n_questions,
        "volumes": volumes,
        "window": window,
        "questions_per_s": n_questions / q_seconds,
        "question_seconds": q_seconds,
        "inline_volume_mb": size / (1 << 20),
        "inline_mb_per_s": size / (1 << 20) / v_seconds,
        "inline_seconds": v_seconds,
        "bare_grpc_mb_per_s": size / (1 << 20) / b_seconds,
        "bare_grpc_seconds": b_seconds,
        "inline_to_bare": b_seconds / v_seconds,
        "inline_hash_follows": follows,
        "inline_hash_first_mb_per_s": size / (1 << 20) / f_seconds,
        "inline_hash_first_seconds": f_seconds,
        "inline_hash_first_to_bare": b_seconds / f_seconds,
        "runner_read_hash_seconds": statistics.median(hash_s),
        "inline_sequence_volumes": len(bigs),
        "inline_sequence_mb_per_s": size * len(bigs) / (1 << 20) / statistics.median(seq_s),
        "inline_sequence_seconds": statistics.median(seq_s),
        "bare_grpc_sequence_seconds": statistics.median(seq_bare_s),
        "inline_sequence_to_bare": statistics.median(seq_bare_s) / statistics.median(seq_s),
        "inline_sequence_hash_first_seconds": statistics.median(seq_first_s),
        "inline_sequence_hash_first_to_bare": statistics.median(seq_bare_s) / statistics.median(seq_first_s),
        "repeats": len(inline_s),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def _inline_upload(address: str, paths: list[Path], hash_follows: bool) -> float:
    """Seconds to read and hash `paths`, stream them inline over one stream and get each one's
    question answered; `hash_follows`: in one pass, the hash after the bytes.

    A fresh `VolumeSource` each time, so the runner's read and SHA-256 are inside the timer (the
    files themselves are in the page cache after the first run); the server hashes them again."""
    start = time.perf_counter()
    stream = ServerStream(address, VolumeSource(), lambda o: None, use_reference=False, window=1, hash_follows=hash_follows)
    left = stream.stream([VolumeGroup(path, None, _items(path.name, 1)) for path in paths])
    seconds = time.perf_counter() - start
    if left:
        raise RuntimeError(f"the inline upload of {', '.join(p.name for p in paths)} left {len(left)} questions unanswered")
    return seconds
