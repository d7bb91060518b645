"""`bench perf harness`: what the harness itself costs, with a server that answers instantly.

Two figures, both through a real server process over loopback gRPC and the runner's own
client code:
* questions/s — `chance` never reads voxels and answers at once, so the rate measures the
  runner, the protocol and the SDK (batching, per-item bookkeeping, the ledger), not a model;
* inline volume MB/s — one CT-RATE-sized file streamed in 1 MiB chunks, hashed on both sides
  (the server skips decoding for a model that never reads voxels), timed to its first answer.
"""
from __future__ import annotations

import os
import platform
import tempfile
import threading
import time
from pathlib import Path

from ctbench.datasets.qa_items import QAItem
from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.local import LocalProcessBackend
from ctbench.runners.client import Outcome, ServerStream, VolumeGroup
from ctbench.runners.health import wait_until_serving
from ctbench.runners.ledger import Ledger
from ctbench.runners.volume_source import VolumeSource


def _items(volume: str, n: int) -> list[QAItem]:
    return [
        QAItem(f"{volume}::{i}", volume, volume, f"Question {i}: left or right?", "left", ("left", "right"))
        for i in range(n)
    ]


def harness_benchmark(questions: int = 5000, volumes: int = 20, volume_mb: int = 150, window: int = 128, workdir: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="ctbench-perf-", dir=workdir) as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        names = [f"v{i:03d}.nii.gz" for i in range(volumes)]
        for name in names:
            (data / name).write_bytes(os.urandom(1024))  # never decoded by `chance`
        big = data / "ct_rate_sized.nii"
        with big.open("wb") as handle:
            for _ in range(volume_mb):
                handle.write(os.urandom(1 << 20))

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
            source = VolumeSource()
            source.get(big)  # read from disk outside the timed part: the network path is measured
            start = time.perf_counter()
            stream = ServerStream(endpoint.address, source, lambda o: None, use_reference=False, window=1)
            stream.stream([VolumeGroup(big, None, _items("ct_rate_sized.nii", 1))])
            v_seconds = time.perf_counter() - start
        finally:
            backend.stop_all()
    return {
        "questions": n_questions,
        "volumes": volumes,
        "window": window,
        "questions_per_s": n_questions / q_seconds,
        "question_seconds": q_seconds,
        "inline_volume_mb": size / (1 << 20),
        "inline_mb_per_s": size / (1 << 20) / v_seconds,
        "inline_seconds": v_seconds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
